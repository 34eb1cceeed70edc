"""SIGINT/SIGTERM handling, installed and restored in one place.

First signal: set the run's stop event (no new batches; in-flight ones finish and are committed).
Second signal: exit at once, killing the worker processes first (they ignore SIGINT and SIGTERM,
and would otherwise finish their batch as orphans). Either leaves a consistent cache: the journal
only counts batches whose files are complete.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

__all__ = ["WaitInterrupted", "interrupt_handlers", "interruptible_wait", "kill_workers"]


@contextmanager
def interrupt_handlers(stop: threading.Event, logger: logging.Logger) -> Iterator[None]:
    """Map SIGINT/SIGTERM to a graceful stop while the block runs (main thread only)."""

    def handle(signum: int, frame: FrameType | None) -> None:
        if stop.is_set():
            logger.warning("Second %s: exiting now; committed batches are kept.", signal.Signals(signum).name)
            kill_workers()
            os._exit(128 + signum)
        stop.set()
        logger.warning(
            "%s received: finishing the batches in flight, then stopping. Press Ctrl+C again to exit at once.",
            signal.Signals(signum).name,
        )

    with _handling(handle):
        yield


def kill_workers() -> None:
    """SIGKILL this process's worker processes (they ignore SIGINT and SIGTERM, which are the run's)."""
    for child in multiprocessing.active_children():
        child.kill()


class WaitInterrupted(Exception):
    """A SIGINT or SIGTERM arrived during an ``interruptible_wait`` block."""


@contextmanager
def interruptible_wait() -> Iterator[None]:
    """Within the block (main thread only), SIGINT or SIGTERM raises ``WaitInterrupted``, so a
    blocking wait (``Thread.join``) ends at once instead of running to its timeout. For a host that
    already took the first signal (Dagster) and now waits for the engine's batches in flight."""

    def handle(signum: int, frame: FrameType | None) -> None:
        raise WaitInterrupted(signal.Signals(signum).name)

    with _handling(handle):
        yield


@contextmanager
def _handling(handle: Callable[[int, FrameType | None], None]) -> Iterator[None]:
    """``handle`` SIGINT and SIGTERM within the block, then restore the previous handlers (only the
    main thread may install handlers; elsewhere the block runs with them unchanged)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, handle) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
