"""Runs ``LoadDataFromDicts >> KeepColumns >> PushToHub`` twice against the Hub at ``HF_ENDPOINT`` (a ``FakeHub``).

    python -m tests.hub.push_step_target CACHE_DIR REPO_ID EXECUTOR SOURCE [TOKEN]

``SOURCE`` says how ``PushToHub`` gets ``TOKEN``: ``argument`` (the constructor), ``runtime_parameter``
(``run(parameters=...)``) or ``ambient`` (not given: ``HF_TOKEN`` or a saved login, as the caller set
them up). The repository is made private through a runtime parameter. Prints one JSON line: the
rows of the leaf of both runs (the second is served from the cache) and the signature folder; or,
when a run fails with a ``DistilDagsterError``, the error's class, message and traceback, exiting 1.
"""

from __future__ import annotations

import json
import sys
import traceback
from pathlib import Path
from typing import Any

from distil_dagster.errors import DistilDagsterError
from distil_dagster.pipeline import Pipeline
from distil_dagster.steps import KeepColumns, LoadDataFromDicts
from distil_dagster.steps.hub import PushToHub

ROWS = [{"id": i, "text": f"row {i}", "tags": [f"t{j}" for j in range(i % 3)], "drop": i} for i in range(7)]
KEPT = ["id", "text", "tags"]


def build(cache_dir: Path, repo_id: str, source: str, token: str | None) -> Pipeline:
    with Pipeline(name="push-step", cache_dir=cache_dir) as pipeline:
        push = PushToHub(name="push", repo_id=repo_id, token=token if source == "argument" else None)
        LoadDataFromDicts(name="load", data=ROWS, batch_size=3) >> KeepColumns(name="keep", columns=KEPT) >> push
    return pipeline


def main() -> int:
    cache_dir, repo_id, executor, source = Path(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
    token = sys.argv[5] if len(sys.argv) > 5 else None
    parameters: dict[str, Any] = {"private": True}
    if source == "runtime_parameter":
        parameters["token"] = token
    runs = []
    try:
        for _ in range(2):
            pipeline = build(cache_dir, repo_id, source, token)
            distiset = pipeline.run(parameters={"push": parameters}, executor=executor)  # type: ignore[arg-type]
            runs.append(distiset["default"]["train"].to_list())
    except DistilDagsterError as error:
        text = "".join(traceback.format_exception(error))
        print(json.dumps({"error": type(error).__name__, "message": str(error), "traceback": text}), flush=True)
        return 1
    folder = cache_dir / pipeline.name / pipeline.signature
    print(json.dumps({"rows": runs[0], "again": runs[1], "folder": str(folder)}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
