"""The benchmark pipeline on distil_dagster: a counting generator and 3 trivial ``@step``s.

    .venv/bin/python benchmarks/workloads/distil_dagster_workload.py --rows 100000 --batch 1000 \
        --input-batch-size 1000 --executor processes --cache-dir DIR

Mirrors ``distilabel_workload.py`` line for line (same steps, rows, batch sizes, leaf written to
the cache, ``use_cache=False``). Prints one line ``BENCH_RESULT {json}`` with the timing of
``pipeline.run()`` measured inside the process.
"""

# No `from __future__ import annotations`: distilabel reads the `StepInput` hint at runtime.
import time

T_START = time.perf_counter()

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import resource  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

from distil_dagster.pipeline import Pipeline  # noqa: E402
from distil_dagster.steps import GeneratorStep, StepInput, step  # noqa: E402
from distil_dagster.steps.typing import GeneratorStepOutput, StepOutput  # noqa: E402

T_IMPORTED = time.perf_counter()


class CountingGenerator(GeneratorStep):
    """Yields ``{"id": i}`` rows, ``batch_size`` at a time, up to ``total`` (never holds them all)."""

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


def build(cache_dir: Path, rows: int, batch: int, input_batch_size: int | None) -> Pipeline:
    kwargs = {} if input_batch_size is None else {"input_batch_size": input_batch_size}
    with Pipeline(name="bench", cache_dir=cache_dir) as pipeline:
        gen = CountingGenerator(name="gen", total=rows, batch_size=batch)
        a = AddA(name="a", **kwargs)
        b = AddB(name="b", **kwargs)
        c = AddC(name="c", **kwargs)
        gen >> a >> b >> c
    return pipeline


def main() -> None:
    parser = argparse.ArgumentParser(description="distil_dagster benchmark pipeline")
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=1000, help="generator batch_size")
    parser.add_argument("--input-batch-size", type=int, default=None, help="steps' input_batch_size (default: 50)")
    parser.add_argument("--executor", default="processes", choices=["processes", "inline"])
    parser.add_argument("--cache-dir", type=Path, required=True)
    parser.add_argument("--use-cache", action="store_true", help="run(use_cache=True) (resume benchmark)")
    args = parser.parse_args()

    pipeline = build(args.cache_dir, args.rows, args.batch, args.input_batch_size)
    t_built = time.perf_counter()
    distiset = pipeline.run(executor=args.executor, use_cache=args.use_cache)
    t_run = time.perf_counter()
    train = distiset["default"]["train"]
    assert train.num_rows == args.rows, f"{train.num_rows} rows, expected {args.rows}"
    assert train.column_names == ["id", "a", "b", "c"], train.column_names
    last = train[args.rows - 1]
    assert last["c"] == str(2 * last["id"] + 1), last
    result = {
        "framework": "distil_dagster",
        "executor": args.executor,
        "rows": args.rows,
        "batch": args.batch,
        "input_batch_size": args.input_batch_size or 50,
        "import_seconds": T_IMPORTED - T_START,
        "build_seconds": t_built - T_IMPORTED,
        "run_seconds": t_run - t_built,
        "in_process_seconds": time.perf_counter() - T_START,
        "ru_maxrss_self_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        "ru_maxrss_children_kb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
        "leaf_rows": train.num_rows,
        "pid": os.getpid(),
    }
    sys.stdout.write("BENCH_RESULT " + json.dumps(result) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
