"""Inline engine throughput: 100,000 rows through a generator and 3 trivial ``@step``s (batch 1000).

Prints rows/s end to end (validation, signature, leaf Parquet and intermediate batches on disk,
Distiset loading included) next to the same work as a plain Python loop. Median of 3 runs.

    .venv/bin/python benchmarks/inline_throughput.py [--rows 100000] [--batch 1000]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from distil_dagster.engine.config import EngineConfig

sys.path.insert(0, str(Path(__file__).parent / "workloads"))
from distil_dagster_workload import build  # the pipeline compare.py measures


def plain_loop(rows: int, batch: int) -> float:
    start = time.perf_counter()
    out = []
    for s in range(0, rows, batch):
        chunk = [{"id": i} for i in range(s, min(s + batch, rows))]
        for row in chunk:
            row["a"] = row["id"] * 2
        for row in chunk:
            row["b"] = row["a"] + 1
        for row in chunk:
            row["c"] = str(row["b"])
        out.extend(chunk)
    assert len(out) == rows
    return time.perf_counter() - start


def engine_run(rows: int, batch: int, ibs: int, fsync: bool) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        pipeline = build(Path(tmp), rows, batch, ibs)
        start = time.perf_counter()
        distiset = pipeline.run(use_cache=False, executor="inline", config=EngineConfig(fsync=fsync))
        elapsed = time.perf_counter() - start
        assert distiset["default"]["train"].num_rows == rows
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    import logging

    logging.getLogger("distil_dagster").setLevel(logging.WARNING)
    engine_run(1000, 100, 100, True)  # warm-up: imports and first-call costs
    loop = statistics.median(plain_loop(args.rows, args.batch) for _ in range(args.repeat))
    print(f"{'work':<44} {'seconds':>8} {'rows/s':>12}")
    print(f"{'plain Python loop':<44} {loop:>8.3f} {args.rows / loop:>12,.0f}")
    for fsync in (True, False):
        t = statistics.median(engine_run(args.rows, args.batch, args.batch, fsync) for _ in range(args.repeat))
        label = f"distil_dagster inline, fsync={'on' if fsync else 'off'}"
        print(f"{label:<44} {t:>8.3f} {args.rows / t:>12,.0f}")


if __name__ == "__main__":
    main()
