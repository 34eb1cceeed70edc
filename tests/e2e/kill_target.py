"""A pipeline run in a child process by the kill-and-resume tests.

    python kill_target.py --shape linear --cache-dir DIR [--kill-after SECONDS]

With ``--kill-after`` a timer thread SIGKILLs the whole process group after that many seconds:
a fault injected at an arbitrary instant (inside a step, a write, a rename or a journal append).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import signal
import threading
import time
from pathlib import Path

from distil_dagster.engine.config import EngineConfig
from distil_dagster.pipeline import Pipeline, sample_n_steps
from distil_dagster.steps import GlobalStep, GroupColumns, LoadDataFromDicts, Step, StepInput
from distil_dagster.steps.typing import StepOutput

ROWS = 600


def _work(value: int, rounds: int) -> str:
    digest = str(value).encode()
    for _ in range(rounds):
        digest = hashlib.sha256(digest).digest()
    return digest.hex()[:8]


class Hash(Step):
    """Adds ``<column>``: a hash of ``id`` (CPU work standing in for a model call)."""

    column: str
    rounds: int = 300

    @property
    def inputs(self) -> list[str]:
        return ["id"]

    @property
    def outputs(self) -> list[str]:
        return [self.column]

    def process(self, *inputs: StepInput) -> StepOutput:
        rows = [dict(r) for rows in inputs for r in rows]
        for row in rows:
            row[self.column] = _work(row["id"] * 7 + len(self.name or ""), self.rounds)
        yield rows


class Count(GlobalStep):
    """Adds the total number of rows to every row."""

    @property
    def outputs(self) -> list[str]:
        return ["total"]

    def process(self, *inputs: StepInput) -> StepOutput:
        rows = [r for rows in inputs for r in rows]
        for row in rows:
            row["total"] = len(rows)
        yield rows


def build(shape: str, cache_dir: Path | None, rows: int = ROWS) -> Pipeline:
    """One of the pipeline shapes of the kill tests, over ``rows`` ids (``fast``: 40 times as many)."""
    fast = shape == "fast"
    with Pipeline(name=f"kill-{shape}", cache_dir=cache_dir) as pipeline:
        data = [{"id": i} for i in range(rows * 40 if fast else rows)]
        load = LoadDataFromDicts(name="load", data=data, batch_size=500 if fast else 8)
        if fast:  # many small batches of cheap steps: batches go to workers in groups, leaf files are shared
            a = Hash(name="a", column="ha", rounds=1, input_batch_size=50)
            b = Hash(name="b", column="hb", rounds=1, input_batch_size=50)
            load >> a >> b
        elif shape == "linear":
            a = Hash(name="a", column="ha", input_batch_size=5)
            b = Hash(name="b", column="hb", input_batch_size=13)
            load >> a >> b
        elif shape == "fanin":
            a = Hash(name="a", column="ha", input_batch_size=6)
            b = Hash(name="b", column="hb", input_batch_size=10)
            count = Count(name="count")
            tail = Hash(name="tail", column="ht", input_batch_size=9)
            load >> [a, b]
            a >> count
            b >> tail
        elif shape == "routing":
            branches = [Hash(name=f"r{i}", column="gen", input_batch_size=4) for i in range(3)]
            group = GroupColumns(name="group", columns=["gen"], output_columns=["gens"], input_batch_size=2)
            load >> sample_n_steps(2) >> branches >> group
        else:
            raise SystemExit(f"unknown shape {shape}")
    return pipeline


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--shape", required=True)
    parser.add_argument("--cache-dir", required=True, type=Path)
    parser.add_argument("--kill-after", type=float, default=0.0)
    parser.add_argument("--no-fsync", action="store_true")
    parser.add_argument("--executor", default="inline")
    args = parser.parse_args()
    if args.kill_after > 0:
        timer = threading.Timer(args.kill_after, lambda: os.killpg(os.getpgid(0), signal.SIGKILL))
        timer.daemon = True
        timer.start()
    pipeline = build(args.shape, args.cache_dir)
    start = time.perf_counter()
    pipeline.run(executor=args.executor, config=EngineConfig(fsync=not args.no_fsync, step_retries=0))
    print(f"run_seconds={time.perf_counter() - start:.3f}")


if __name__ == "__main__":
    main()
