"""A Ray driver that receives a signal from one of its own actors mid-run (first run only).

    python signal_target.py CACHE_DIR SIGNUM

Exit code 130 and ``interrupted: ...`` on stdout when the run stopped with ``RunInterrupted``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from distil_dagster.errors import RunInterrupted
from distil_dagster.pipeline import Pipeline
from distil_dagster.steps import LoadDataFromDicts
from tests.engine.faulty_steps import Crash


def main() -> int:
    cache, signum = Path(sys.argv[1]), int(sys.argv[2])
    with Pipeline(name="ray-signal", cache_dir=cache) as pipeline:
        load = LoadDataFromDicts(name="load", data=[{"id": i} for i in range(200)], batch_size=10)
        marker = str(cache / "signalled-once")
        load >> Crash(
            name="sig",
            fault="signal",
            input_batch_size=5,
            fault_id=57,
            signal_pid=os.getpid(),
            signum=signum,
            heal_marker=marker,
        )
    try:
        distiset = pipeline.run(executor="ray")
    except RunInterrupted as exc:
        print(f"interrupted: {exc}")
        return 130
    print(f"rows={distiset['default']['train'].num_rows}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
