"""Ray backend throughput on the 100,000-row benchmark, next to the local backends, and where Ray's
overhead goes.

Runs the pipeline of ``compare.py`` (a counting generator and 3 trivial ``@step``s, batch and
input batch 1000, ``use_cache=False``) in this process with ``executor="ray"``, ``"processes"``
and ``"inline"``, interleaved, ``--repeat`` times; prints the medians. Ray is started once
(``ray.init`` on this machine, ``--num-cpus``), so the ray figures exclude ``ray.init``, which is
printed separately with the other fixed costs: an actor's start-up (create + first call), the
engine's start-up of the 4 step actors, an empty task's round trip, and one 1000-row batch handed
over through the object store (rows in the call, rows back, then the driver writes the batch file
the commit protocol needs) against through cache files (what the backend does: the actor reads a
committed pickle and writes its output file; the driver only sends paths): wall milliseconds, and
the driver's CPU milliseconds per batch (the driver is the one process every batch goes through).

    .venv/bin/python benchmarks/ray_throughput.py [--rows 100000] [--batch 1000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import logging
import pickle
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import ray

from distil_dagster.engine.ray_backend import RayBackend

sys.path.insert(0, str(Path(__file__).parent / "workloads"))
from distil_dagster_workload import build  # the pipeline compare.py measures

EXECUTORS = ("ray", "processes", "inline")


class Echo:
    """A bare actor: the floor of Ray's costs."""

    def ping(self) -> None:
        return None

    def echo(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return rows

    def via_files(self, source: str, target: str) -> int:
        with open(source, "rb") as handle:
            rows = pickle.load(handle)
        data = pickle.dumps(rows, protocol=pickle.HIGHEST_PROTOCOL)
        with open(target, "wb") as handle:
            handle.write(data)
        return len(rows)


def engine_run(executor: str, rows: int, batch: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        pipeline = build(Path(tmp), rows, batch, batch)
        start = time.perf_counter()
        distiset = pipeline.run(use_cache=False, executor=executor)  # type: ignore[arg-type]
        elapsed = time.perf_counter() - start
        assert distiset["default"]["train"].num_rows == rows
    return elapsed


def _median_ms(call: Any, times: int) -> tuple[float, float]:
    """Median wall milliseconds of ``call``, and this process's (the driver's) CPU milliseconds per call."""
    samples = []
    cpu = time.process_time()
    for _ in range(times):
        start = time.perf_counter()
        call()
        samples.append(time.perf_counter() - start)
    return 1000 * statistics.median(samples), 1000 * (time.process_time() - cpu) / times


def _via_object_store(actor: Any, rows: list[dict[str, Any]], target: str) -> None:
    """Rows to the actor and back in the call; the driver then writes the batch file the commit needs."""
    result = ray.get(actor.echo.remote(rows))
    Path(target).write_bytes(pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL))


def overheads(batch: int) -> list[tuple[Any, ...]]:
    """Ray's fixed and per-task costs on this machine: (label, value[, driver CPU ms])."""
    remote = ray.remote(Echo)
    start = time.perf_counter()
    actor = remote.remote()
    ray.get(actor.ping.remote())
    figures: list[tuple[Any, ...]] = [("actor start-up (create + first call), s", time.perf_counter() - start)]
    rows = [{"id": i, "a": 2 * i, "b": 2 * i + 1} for i in range(batch)]
    with tempfile.TemporaryDirectory() as tmp:
        source, target = str(Path(tmp) / "in.pkl"), str(Path(tmp) / "out.pkl")
        Path(source).write_bytes(pickle.dumps(rows, protocol=pickle.HIGHEST_PROTOCOL))
        figures += [
            ("empty task round trip, ms", *_median_ms(lambda: ray.get(actor.ping.remote()), 500)),
            (
                f"{batch}-row batch, object store + driver writes, ms",
                *_median_ms(lambda: _via_object_store(actor, rows, target), 200),
            ),
            (
                f"{batch}-row batch, cache files (actor reads, writes), ms",
                *_median_ms(lambda: ray.get(actor.via_files.remote(source, target)), 200),
            ),
        ]
    ray.kill(actor)
    with tempfile.TemporaryDirectory() as tmp:
        pipeline = build(Path(tmp), 10, 10, 10)
        backend = RayBackend(0, False, logging.getLogger("bench"))
        start = time.perf_counter()
        backend.start({n: pipeline.dag.step(n) for n in pipeline.dag.names})
        figures.append(("engine start of the 4 step actors (load handshake), s", time.perf_counter() - start))
        backend.stop()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--num-cpus", type=int, default=None, help="CPUs of the local Ray instance (default: all)")
    args = parser.parse_args()
    logging.getLogger("distil_dagster").setLevel(logging.WARNING)
    start = time.perf_counter()
    ray.init(num_cpus=args.num_cpus, include_dashboard=False, logging_level=logging.WARNING)
    init = time.perf_counter() - start
    try:
        for executor in EXECUTORS:
            engine_run(executor, 1000, 100)  # warm-up: imports and first-call costs
        times: dict[str, list[float]] = {e: [] for e in EXECUTORS}
        for _ in range(args.repeat):
            for executor in EXECUTORS:
                times[executor].append(engine_run(executor, args.rows, args.batch))
        print(f"{args.rows:,} rows, generator + 3 @steps, batch {args.batch}, input_batch_size {args.batch}")
        print(f"    {'executor':<12} {'runs':>4} {'run() s':>9} {'rows/s':>10}   all runs (s)")
        for executor, samples in times.items():
            median = statistics.median(samples)
            runs = " ".join(f"{s:.3f}" for s in samples)
            print(f"    {executor:<12} {len(samples):>4} {median:>9.3f} {args.rows / median:>10,.0f}   {runs}")
        print("Ray's costs on this machine (ray.init is not in the ray figures above)")
        print(f"    {'ray.init (local instance, no dashboard), s':<58} {init:>8.3f}")
        print(f"    {'':<58} {'value':>8} {'driver CPU ms':>14}")
        for label, *values in overheads(args.batch):
            print(
                f"    {label:<58} " + " ".join(f"{v:>8.3f}" if i == 0 else f"{v:>14.3f}" for i, v in enumerate(values))
            )
    finally:
        ray.shutdown()


if __name__ == "__main__":
    main()
