"""Push two configs of a dataset, a pipeline.yaml and the card to a Hub, then load a config back.

Run by ``test_fake_hub.py`` as ``python push_script.py <repo_id>`` with ``HF_ENDPOINT`` pointing at a
``FakeHub``. Prints one JSON line: the repo's files as listed by the Hub and the rows loaded back.
"""

from __future__ import annotations

import json
import sys

from datasets import Dataset, DatasetDict, load_dataset
from huggingface_hub import DatasetCard, HfApi, upload_file

TOKEN = "hf_fake_token_for_tests"


def main(repo_id: str) -> None:
    first = DatasetDict({"train": Dataset.from_dict({"a": [1, 2, 3], "b": ["x", "y", "z"]})})
    first.push_to_hub(repo_id, config_name="first", private=True, token=TOKEN)
    second = DatasetDict({"train": Dataset.from_dict({"c": [1.5]})})
    second.push_to_hub(repo_id, config_name="second", token=TOKEN)
    upload_file(
        path_or_fileobj=b"name: x\n",
        path_in_repo="pipeline.yaml",
        repo_id=repo_id,
        repo_type="dataset",
        token=TOKEN,
        commit_message="Upload the pipeline",
    )
    card = DatasetCard.load(repo_id, repo_type="dataset", token=TOKEN)  # the README.md datasets wrote
    configs = [config["config_name"] for config in card.data.to_dict().get("configs", [])]
    card.text += "\nPushed by the fake Hub test.\n"
    card.push_to_hub(repo_id, repo_type="dataset", token=TOKEN, commit_message="Update the card")
    files = HfApi(token=TOKEN).list_repo_files(repo_id, repo_type="dataset")
    rows = load_dataset(repo_id, "first", split="train", token=TOKEN).to_list()
    print(json.dumps({"configs": configs, "files": files, "rows": rows}))


if __name__ == "__main__":
    main(sys.argv[1])
