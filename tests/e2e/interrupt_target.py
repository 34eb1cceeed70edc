"""A run that receives SIGINT from one of its own workers mid-run (first run only).

python interrupt_target.py CACHE_DIR EXECUTOR
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "engine"))

from faulty_steps import Tag

from distil_dagster.errors import RunInterrupted
from distil_dagster.pipeline import Pipeline
from distil_dagster.steps import LoadDataFromDicts


def main() -> int:
    cache, executor = Path(sys.argv[1]), sys.argv[2]
    with Pipeline(name="interrupt", cache_dir=cache) as pipeline:
        load = LoadDataFromDicts(name="load", data=[{"id": i} for i in range(200)], batch_size=10)
        tag = Tag(
            name="tag",
            input_batch_size=5,
            fault="sigint",
            fault_id=57,
            signal_pid=os.getpid(),
            once_marker=str(cache / "interrupted-once"),
        )
        load >> tag
    try:
        distiset = pipeline.run(executor=executor)
    except RunInterrupted as exc:
        print(f"interrupted: {exc}")
        return 130
    print(f"rows={distiset['default']['train'].num_rows}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
