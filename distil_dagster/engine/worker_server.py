"""The worker server (multiprocessing's forkserver), and starting it before the engine is imported.

This module imports nothing heavy: ``Pipeline.run`` calls ``prestart`` before importing the engine
(~0.13 s), so the server's own imports (``worker_preload``, ~0.4 s: pyarrow, pandas, the engine)
run on another core meanwhile instead of after them. A run whose cache already holds every batch
needs no worker and starts no server.
"""

from __future__ import annotations

import multiprocessing as mp
from multiprocessing import forkserver
from pathlib import Path
from typing import TYPE_CHECKING, Any

from distil_dagster.cache.journal import CommitJournal, is_complete
from distil_dagster.cache.layout import CacheLayout
from distil_dagster.engine.main_module import start_method_for

if TYPE_CHECKING:
    from distil_dagster.engine.config import EngineConfig
    from distil_dagster.pipeline.base import Pipeline

__all__ = ["prestart", "process_context"]

_PRELOAD = ["distil_dagster.engine.worker_preload"]


def process_context(start_method: str, start_server: bool = False) -> Any:
    """The multiprocessing context for ``start_method`` (typeshed's base context lacks ``Process``).

    With ``forkserver`` the server imports the engine once (``worker_preload``) and every worker
    forks from it instead of importing it (the user's script is imported by each worker itself:
    Python 3.11's forkserver does not preload ``__main__``). ``start_server=True`` launches the
    server now without waiting for it, so it imports the engine while the caller does other work;
    the first worker's start then waits only for what is left.
    """
    context: Any = mp.get_context(start_method)
    if start_method == "forkserver":
        context.set_forkserver_preload(_PRELOAD)
        if start_server:
            forkserver.ensure_running()
    return context


def prestart(pipeline: Pipeline, use_cache: bool, config: EngineConfig | None) -> None:
    """Launch the worker server now unless the cache already holds the whole pipeline.

    A hint read without the run's lock: the run decides again (and starts the server itself if
    this did not and it needs workers).
    """
    steps = (pipeline.dag.step(name) for name in pipeline.dag.names)
    start_method = start_method_for(config.start_method if config is not None else None, steps)
    if start_method != "forkserver":
        return
    if use_cache:
        journal = CacheLayout.for_pipeline(Path(pipeline.cache_dir), pipeline.name, pipeline.signature).journal
        try:
            committed = CommitJournal(journal).read() if journal.exists() else {}
        except (OSError, ValueError):
            committed = {}
        if committed and all(is_complete(committed.get(name, {})) for name in pipeline.dag.names):
            return
    process_context(start_method, start_server=True)
