"""Inline engine throughput: 100,000 rows through a generator and 3 trivial ``@step``s (batch 1000).

Prints rows/s end to end (validation, signature, leaf Parquet and intermediate batches on disk,
Distiset loading included) next to the same work as a plain Python loop. Median of 3 runs.

    .venv/bin/python benchmarks/inline_throughput.py [--rows 100000] [--batch 1000]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from distil_dagster.engine.config import EngineConfig
from distil_dagster.pipeline import Pipeline
from distil_dagster.steps import GeneratorStep, StepInput, step
from distil_dagster.steps.typing import GeneratorStepOutput, StepOutput


class CountingGenerator(GeneratorStep):
    """Yields ``{"id": i}`` rows up to ``total``."""

    total: int

    @property
    def outputs(self) -> list[str]:
        return ["id"]

    def process(self, offset: int = 0) -> GeneratorStepOutput:
        size = self.batch_size or 50
        for start in range(offset, self.total, size):
            end = min(start + size, self.total)
            yield [{"id": i} for i in range(start, end)], end >= self.total


@step(inputs=["id"], outputs=["a"])
def AddA(inputs: StepInput) -> StepOutput:
    for row in inputs:
        row["a"] = row["id"] * 2
    yield inputs


@step(inputs=["a"], outputs=["b"])
def AddB(inputs: StepInput) -> StepOutput:
    for row in inputs:
        row["b"] = row["a"] + 1
    yield inputs


@step(inputs=["b"], outputs=["c"])
def AddC(inputs: StepInput) -> StepOutput:
    for row in inputs:
        row["c"] = str(row["b"])
    yield inputs


def build(cache_dir: Path, rows: int, batch: int, input_batch_size: int) -> Pipeline:
    with Pipeline(name="bench-inline", cache_dir=cache_dir) as pipeline:
        gen = CountingGenerator(name="gen", total=rows, batch_size=batch)
        a = AddA(name="a", input_batch_size=input_batch_size)
        b = AddB(name="b", input_batch_size=input_batch_size)
        c = AddC(name="c", input_batch_size=input_batch_size)
        gen >> a >> b >> c
    return pipeline


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
        distiset = pipeline.run(use_cache=False, config=EngineConfig(fsync=fsync))
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
