"""Group durability: one ``syncfs`` per committed group against an fsync per batch file and folder.

    .venv/bin/python benchmarks/group_durability.py [--rows 20000] [--batch 50] [--repeat 3]

Each measurement is a fresh process running ``LoadDataFromDicts >> add >> add`` with ``fsync=True``
on a new cache folder; ``--fallback`` in the child disables ``syncfs`` (as on a system without it),
so every batch file and its folder are fsynced one by one. Prints medians per executor and mode.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time

from distil_dagster.cache import committer
from distil_dagster.pipeline import Pipeline
from distil_dagster.steps import LoadDataFromDicts, StepInput, step
from distil_dagster.steps.typing import StepOutput


@step(inputs=["id"], outputs=["x"])
def Add(inputs: StepInput) -> StepOutput:
    """Adds ``x = id + 1``."""
    for row in inputs:
        row["x"] = row["id"] + 1
    yield inputs


def child(rows: int, batch: int, executor: str, fallback: bool) -> float:
    """One run; returns the seconds of ``pipeline.run()``."""
    if fallback:
        committer.sync_filesystem = lambda path: False  # type: ignore[assignment]  # force the per-file path
    with Pipeline(name="durability", cache_dir=tempfile.mkdtemp(prefix="durability-")) as pipeline:
        load = LoadDataFromDicts(name="load", data=[{"id": i} for i in range(rows)], batch_size=batch)
        load >> Add(name="a", input_batch_size=batch) >> Add(name="b", input_batch_size=batch)
    start = time.perf_counter()
    pipeline.run(executor=executor)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=20000)
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--child", choices=["inline", "processes"])
    parser.add_argument("--fallback", action="store_true")
    args = parser.parse_args()
    if args.child:
        print(f"{child(args.rows, args.batch, args.child, args.fallback):.4f}")
        return
    print(f"{args.rows} rows, {args.batch}-row batches, fsync=True, medians of {args.repeat} fresh processes")
    print(f"{'executor':10} {'syncfs per group':>18} {'fsync per file':>16}")
    for executor in ["inline", "processes"]:
        times: dict[bool, list[float]] = {False: [], True: []}
        for _ in range(args.repeat):
            for fallback in (False, True):  # interleaved, so load changes hit both alike
                cmd = [sys.executable, __file__, "--child", executor, "--rows", str(args.rows)]
                cmd += ["--batch", str(args.batch)] + (["--fallback"] if fallback else [])
                out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
                times[fallback].append(float(out.strip().splitlines()[-1]))
        print(f"{executor:10} {statistics.median(times[False]):17.3f}s {statistics.median(times[True]):15.3f}s")


if __name__ == "__main__":
    main()
