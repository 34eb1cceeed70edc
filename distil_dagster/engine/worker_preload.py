"""Imported once by the forkserver: everything a worker needs, warmed before any worker forks.

Parquet's first write in a process initialises pyarrow's writer machinery (~0.2 s here); doing
it once in the server spares every worker that cost on its first batch.

The server ignores SIGTERM, as it already ignores SIGINT: a SIGTERM to the run's process group
(``kill -TERM -<pgid>``, a batch scheduler) must reach the run, which stops gracefully, and not
kill the server, whose death makes every worker look dead (exit code 255). Workers forked from
it inherit the disposition, so none dies of the signal before ``worker_main`` ignores it too.
"""

from __future__ import annotations

import io
import signal

import pyarrow as pa
import pyarrow.parquet as pq

import distil_dagster.engine.worker  # the worker loop and its imports
import distil_dagster.pipeline  # user scripts, re-run in each worker, build their Pipeline
import distil_dagster.steps  # noqa: F401  # built-in steps unpickled in workers


def _warm_parquet() -> None:
    pq.write_table(pa.table({"warm": [1]}), io.BytesIO())


_warm_parquet()
signal.signal(signal.SIGTERM, signal.SIG_IGN)
