"""The resume benchmark's child: the benchmark pipeline with traced steps, optionally killed.

    .venv/bin/python benchmarks/workloads/resume_target.py --rows 100000 --batch 1000 \
        --executor inline --cache-dir DIR [--kill-after SECONDS] [--fresh]

Same shape as ``distil_dagster_workload.py`` (a counting generator and 3 trivial ``@step``s,
generator ``batch_size`` = steps' ``input_batch_size`` = ``--batch``), ``use_cache=True`` unless
``--fresh``. With ``BENCH_TRACE=<file>`` in the environment, every step appends
``<step> <first row id>`` to that file when it starts a batch (one ``O_APPEND`` write per line,
in whichever process runs the step), so the harness can tell which batches a killed run had
started and which a resume computed again.

With ``--kill-after`` a timer thread SIGKILLs the whole process group after that many seconds,
as ``tests/e2e/kill_target.py`` does. Prints ``BENCH_RESULT {json}``: the seconds of ``run()``,
split at the call of ``create_distiset`` (engine: lock, journal, checks; load: the Distiset).
"""

# No `from __future__ import annotations`: steps are read at runtime like in the other workloads.
import time

T_START = time.perf_counter()

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import signal  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402
from pathlib import Path  # noqa: E402

import distil_dagster.distiset as distiset_module  # noqa: E402  # run() imports its create_distiset when called
from distil_dagster.pipeline import Pipeline  # noqa: E402
from distil_dagster.steps import GeneratorStep, StepInput, step  # noqa: E402
from distil_dagster.steps.typing import GeneratorStepOutput, StepOutput  # noqa: E402

T_IMPORTED = time.perf_counter()


def trace(step_name: str, first_id: int) -> None:
    path = os.environ.get("BENCH_TRACE")
    if not path:
        return
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        os.write(fd, f"{step_name} {first_id}\n".encode())
    finally:
        os.close(fd)


class TracedGenerator(GeneratorStep):
    """Yields ``{"id": i}`` rows, ``batch_size`` at a time, up to ``total``."""

    total: int

    @property
    def outputs(self) -> list[str]:
        return ["id"]

    def process(self, offset: int = 0) -> GeneratorStepOutput:
        size = self.batch_size or 50
        for start in range(offset, self.total, size):
            end = min(start + size, self.total)
            trace(self.name or "gen", start)
            yield [{"id": i} for i in range(start, end)], end >= self.total


@step(inputs=["id"], outputs=["a"])
def TracedA(inputs: StepInput) -> StepOutput:
    trace("a", inputs[0]["id"])
    for row in inputs:
        row["a"] = row["id"] * 2
    yield inputs


@step(inputs=["a"], outputs=["b"])
def TracedB(inputs: StepInput) -> StepOutput:
    trace("b", inputs[0]["id"])
    for row in inputs:
        row["b"] = row["a"] + 1
    yield inputs


@step(inputs=["b"], outputs=["c"])
def TracedC(inputs: StepInput) -> StepOutput:
    trace("c", inputs[0]["id"])
    for row in inputs:
        row["c"] = str(row["b"])
    yield inputs


def build(cache_dir: Path, rows: int, batch: int) -> Pipeline:
    with Pipeline(name="bench-resume", cache_dir=cache_dir) as pipeline:
        gen = TracedGenerator(name="gen", total=rows, batch_size=batch)
        a = TracedA(name="a", input_batch_size=batch)
        b = TracedB(name="b", input_batch_size=batch)
        c = TracedC(name="c", input_batch_size=batch)
        gen >> a >> b >> c
    return pipeline


def main() -> None:
    parser = argparse.ArgumentParser(description="resume benchmark child")
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--executor", default="inline", choices=["processes", "inline"])
    parser.add_argument("--cache-dir", type=Path, required=True)
    parser.add_argument("--kill-after", type=float, default=0.0)
    parser.add_argument("--fresh", action="store_true", help="run(use_cache=False)")
    args = parser.parse_args()
    if args.kill_after > 0:
        timer = threading.Timer(args.kill_after, lambda: os.killpg(os.getpgid(0), signal.SIGKILL))
        timer.daemon = True
        timer.start()

    marks: dict[str, float] = {}
    original = getattr(distiset_module, "create_distiset", None)
    if original is not None:  # split run() where the engine hands over to the Distiset loader

        def timed_create_distiset(*a, **k):  # type: ignore[no-untyped-def]
            marks["distiset_start"] = time.perf_counter()
            try:
                return original(*a, **k)
            finally:
                marks["distiset_end"] = time.perf_counter()

        distiset_module.create_distiset = timed_create_distiset  # type: ignore[assignment]

    pipeline = build(args.cache_dir, args.rows, args.batch)
    t_built = time.perf_counter()
    distiset = pipeline.run(executor=args.executor, use_cache=not args.fresh)
    t_run = time.perf_counter()
    train = distiset["default"]["train"]
    ids = train["id"]
    result = {
        "executor": args.executor,
        "rows": args.rows,
        "leaf_rows": train.num_rows,
        "unique_ids": len(set(ids)),
        "import_seconds": T_IMPORTED - T_START,
        "build_seconds": t_built - T_IMPORTED,
        "run_seconds": t_run - t_built,
        "engine_seconds": marks["distiset_start"] - t_built if "distiset_start" in marks else None,
        "distiset_seconds": marks["distiset_end"] - marks["distiset_start"] if "distiset_end" in marks else None,
        "in_process_seconds": time.perf_counter() - T_START,
        "signature_folder": str(distiset.pipeline_path.parent) if distiset.pipeline_path else None,
    }
    sys.stdout.write("BENCH_RESULT " + json.dumps(result) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
