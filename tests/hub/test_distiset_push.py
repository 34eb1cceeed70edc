"""``Distiset.push_to_hub`` against a real HTTP server speaking the Hub API (``FakeHub``)."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from tests.hub.fake_hub import FakeHub

TOKEN = "hf_distiset_push_secret_token"
REPO = "someone/pushed"


@pytest.mark.slow
def test_push_to_hub_sends_each_config_then_card_and_pipeline_files_in_one_commit(
    fake_hub: FakeHub, tmp_path: Path
) -> None:
    env = {name: value for name, value in os.environ.items() if name not in ("HF_HUB_OFFLINE", "HF_TOKEN")}
    env |= fake_hub.client_env()
    env |= {"HF_HOME": str(tmp_path / "hf-home"), "HF_DATASETS_CACHE": str(tmp_path / "datasets-cache")}
    cache = tmp_path / "cache"

    done = subprocess.run(
        [sys.executable, "-m", "tests.hub.distiset_push_target", str(cache), REPO, TOKEN],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )

    assert done.returncode == 0, done.stderr[-3000:]
    assert f"NO TOKEN: Cannot push the Distiset to '{REPO}': no Hugging Face token" in done.stdout
    assert done.stdout.rstrip().endswith("PUSHED")
    assert fake_hub.repos() == {REPO: True}
    assert fake_hub.unhandled == []
    files = fake_hub.files(REPO)
    parquet = {path: pq.read_table(io.BytesIO(data)).to_pylist() for path, data in files.items() if ".parquet" in path}
    by_config = {path.split("/")[0]: rows for path, rows in parquet.items()}
    assert by_config["square"] == [{"id": i, "square": i * i} for i in range(5)]
    assert [row["words"][:2] for row in by_config["words"]] == [[f"w{i}-0", f"w{i}-1"] for i in range(5)]

    signature_folder = next(p.parent for p in cache.rglob("pipeline.yaml"))
    assert files["pipeline.yaml"] == (signature_folder / "pipeline.yaml").read_bytes()
    assert files["pipeline.log"] == (signature_folder / "pipeline.log").read_bytes()
    assert files["distiset_push_target.py"] == Path(__file__).with_name("distiset_push_target.py").read_bytes()
    assert files["artifacts/square/squares/last.txt"] == b"16"  # one batch of the 5 rows: its last square
    assert (
        files["artifacts/square/squares/metadata.json"]
        == (signature_folder / "artifacts" / "square" / "squares" / "metadata.json").read_bytes()
    )

    card = files["README.md"].decode()
    header = yaml.safe_load(card.split("---")[1])
    assert sorted(c["config_name"] for c in header["configs"]) == ["square", "words"]  # kept from datasets
    assert header["size_categories"] == "n<1K" and "synthetic" in header["tags"]
    assert "`gen` (LoadDataFromDicts)" in card and f'load_dataset("{REPO}", "words")' in card
    assert "... (12 items, 10 shown)" in card and "distiset_push_target.py" in card
    assert '- `artifacts/square/squares` (step `square`): `{"rows": 5}`' in card
    config_url = f"{fake_hub.endpoint}/datasets/{REPO}/resolve/main/pipeline.yaml"
    assert f"distil-dagster pipeline run --config {config_url}" in card
    assert fake_hub.commits(REPO)[-1] == "Add the dataset card and the pipeline files"

    assert f"Bearer {TOKEN}" in fake_hub.authorizations
    for path, data in files.items():
        assert TOKEN.encode() not in data, f"the token reached {path}"
