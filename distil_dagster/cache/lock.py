"""The run lock of a signature folder: one run writes a folder at a time.

An OS file lock (``flock``): the kernel releases it when its holder dies, so a lock left by a
killed run is taken over by the next one without any stale-lock logic.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager

from filelock import FileLock, Timeout

from distil_dagster.cache.layout import CacheLayout
from distil_dagster.errors import CacheLockedError

__all__ = ["run_lock"]


@contextmanager
def run_lock(layout: CacheLayout, timeout: float, logger: logging.Logger) -> Iterator[None]:
    """Hold the folder's lock; wait up to ``timeout`` seconds (logged), then fail clearly."""
    layout.create()
    lock = FileLock(str(layout.lock_file), mode=0o600)
    owner_file = layout.root / ".lock.owner"
    try:
        lock.acquire(timeout=0)
    except Timeout:
        try:
            owner = owner_file.read_text().strip()
        except OSError:
            owner = "unknown"
        logger.warning(
            "Another run (pid %s) is using the cache folder %s; waiting up to %.0f s for it to finish.",
            owner,
            layout.root,
            timeout,
        )
        try:
            lock.acquire(timeout=timeout)
        except Timeout as exc:
            raise CacheLockedError(
                f"The cache folder {layout.root} is locked by another run (pid {owner}) for more than "
                f"{timeout:.0f} s; wait for it, or raise EngineConfig.lock_timeout."
            ) from exc
    try:
        fd = os.open(owner_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(str(os.getpid()))
        yield
    finally:
        lock.release()
