"""Runs a two-leaf pipeline and pushes its Distiset to the Hub at ``HF_ENDPOINT`` (a ``FakeHub``).

    python -m tests.hub.distiset_push_target CACHE_DIR REPO_ID TOKEN

First without a token (``HF_TOKEN`` unset, ``HF_HOME`` empty): that must fail before any request
with a ``DistisetError``; then with ``TOKEN``, ``include_script=True``. Prints ``PUSHED`` at the end.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from distil_dagster.errors import DistisetError
from distil_dagster.pipeline import Pipeline
from distil_dagster.steps import LoadDataFromDicts, Step, StepInput, step
from distil_dagster.steps.typing import StepOutput


class Square(Step):
    """``square = id * id``; saves the artifact ``squares`` (``last.txt``: the last square)."""

    @property
    def inputs(self) -> list[str]:
        return ["id"]

    @property
    def outputs(self) -> list[str]:
        return ["square"]

    def process(self, inputs: StepInput) -> StepOutput:
        rows = [{**row, "square": row["id"] ** 2} for row in inputs]
        last = str(rows[-1]["square"])
        self.save_artifact("squares", lambda folder: (folder / "last.txt").write_text(last), {"rows": len(rows)})
        yield rows


@step(inputs=["id"], outputs=["words"])
def Words(inputs: StepInput) -> StepOutput:
    """``words``: a list of 12 strings (the card shows 10 of them)."""
    yield [{**row, "words": [f"w{row['id']}-{i}" for i in range(12)]} for row in inputs]


def main() -> None:
    cache_dir, repo_id, token = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
    with Pipeline(name="push", cache_dir=cache_dir) as pipeline:
        gen = LoadDataFromDicts(name="gen", data=[{"id": i} for i in range(5)], batch_size=2)
        gen >> [Square(name="square"), Words(name="words")]
    distiset = pipeline.run(executor="inline")

    os.environ.pop("HF_TOKEN", None)
    try:
        distiset.push_to_hub(repo_id)
    except DistisetError as error:
        print(f"NO TOKEN: {error}", flush=True)
    distiset.push_to_hub(repo_id, private=True, token=token, include_script=True)
    print("PUSHED", flush=True)


if __name__ == "__main__":
    main()
