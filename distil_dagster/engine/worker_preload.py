"""Imported once by the forkserver: everything a worker needs, warmed before any worker forks.

Parquet's first write in a process initialises pyarrow's writer machinery (~0.2 s here); doing
it once in the server spares every worker that cost on its first batch.

The server ignores SIGTERM, as it already ignores SIGINT: a SIGTERM to the run's process group
(``kill -TERM -<pgid>``, a batch scheduler) must reach the run, which stops gracefully, and not
kill the server, whose death makes every worker look dead (exit code 255). Workers forked from
it inherit the disposition, so none dies of the signal before ``worker_main`` ignores it too.

The imports run with the cyclic garbage collector paused (they create no garbage worth a pass,
and each full pass over a growing heap costs tens of ms on the server's start, which the first
worker waits for), and what they leave is frozen (``gc.freeze``): full passes in the workers then
skip the engine's and the libraries' objects (``distil_dagster.engine.heap``).
"""

from __future__ import annotations

import gc
import io
import signal

gc.disable()
try:
    import pyarrow as pa
    import pyarrow.parquet as pq

    import distil_dagster.engine.worker  # the worker loop and its imports
    import distil_dagster.pipeline  # user scripts, re-run in each worker, build their Pipeline
    import distil_dagster.steps  # noqa: F401  # built-in steps unpickled in workers

    # Parquet's first write initialises pyarrow's writer machinery
    pq.write_table(pa.table({"warm": [1]}), io.BytesIO())
finally:
    gc.freeze()
    gc.enable()
signal.signal(signal.SIGTERM, signal.SIG_IGN)
