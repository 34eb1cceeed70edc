"""Intermediate batch storage: one file per batch (the old layout) vs appends to a segment (the engine's).

    .venv/bin/python benchmarks/intermediate_storage.py [--batches 2000] [--rows 50] [--repeat 3]

Each round writes ``--batches`` batches of ``--rows`` rows (the benchmark pipeline's columns) into
a fresh folder under the cache's temp location, both ways, interleaved: as whole framed pickle
files (temp name + rename, ``write_rows``) and appended to one segment (``append_batch``), then
makes them durable the way the committer does (one ``syncfs``). Prints wall and kernel (system)
seconds per way and round, then medians. No durability shortcut on either side: neither fsyncs
per batch (the committer's ``syncfs`` covers both).
"""

from __future__ import annotations

import argparse
import resource
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from distil_dagster.cache.atomic import sync_filesystem
from distil_dagster.cache.batch_store import append_batch, write_rows
from distil_dagster.cache.segments import SegmentWriter


def _system_seconds() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_stime


def _files(folder: Path, batches: list[list[dict]]) -> None:
    for seq, rows in enumerate(batches):
        write_rows(folder / f"{seq + 1:05d}.pkl", rows, "bench", fsync=False)


def _segment(folder: Path, batches: list[list[dict]]) -> None:
    writer = SegmentWriter(folder, fsync=False)
    for rows in batches:
        append_batch(writer, rows)
    writer.close()


def _measure(
    write: Callable[[Path, list[list[dict]]], None], base: Path, batches: list[list[dict]]
) -> tuple[float, float]:
    folder = Path(tempfile.mkdtemp(prefix="storage-", dir=base))
    started, system = time.perf_counter(), _system_seconds()
    write(folder, batches)
    sync_filesystem(folder)
    elapsed, kernel = time.perf_counter() - started, _system_seconds() - system
    shutil.rmtree(folder)
    return elapsed, kernel


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=2000)
    parser.add_argument("--rows", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--dir", type=Path, default=None, help="where to write (default: the temp folder)")
    args = parser.parse_args()
    batches = [
        [{"id": i, "a": 2 * i, "b": 2 * i + 1, "c": str(2 * i + 1)} for i in range(s * args.rows, (s + 1) * args.rows)]
        for s in range(args.batches)
    ]
    base = Path(tempfile.mkdtemp(prefix="intermediate-storage-", dir=args.dir))
    ways = {"file per batch": _files, "segment appends": _segment}
    figures: dict[str, list[tuple[float, float]]] = {name: [] for name in ways}
    try:
        for round_no in range(args.repeat):
            for name, write in ways.items():
                elapsed, kernel = _measure(write, base, batches)
                figures[name].append((elapsed, kernel))
                print(f"round {round_no + 1}  {name:<16} {elapsed:7.3f} s wall  {kernel:7.3f} s system", flush=True)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    print(f"\n{args.batches} batches of {args.rows} rows, medians of {args.repeat}:")
    for name, runs in figures.items():
        wall = statistics.median(r[0] for r in runs)
        kernel = statistics.median(r[1] for r in runs)
        print(f"  {name:<16} {wall:7.3f} s wall  {kernel:7.3f} s system  {wall / args.batches * 1e3:6.3f} ms per batch")


if __name__ == "__main__":
    main()
