"""Atomic file writes: write a temp name, (optionally) fsync, rename into place."""

from __future__ import annotations

import ctypes
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

__all__ = ["atomic_write", "atomic_write_bytes", "fsync_dir", "make_private_dirs", "sync_filesystem", "temp_path"]


def make_private_dirs(path: Path) -> None:
    """Create ``path`` and its missing parents user-only (0o700), whatever the umask.

    ``Path.mkdir(parents=True, mode=...)`` applies ``mode`` to the last folder only.
    """
    if path.is_dir():
        return
    missing = [p for p in (path, *path.parents) if not p.exists()]
    for folder in reversed(missing):
        folder.mkdir(mode=0o700, exist_ok=True)
        os.chmod(folder, 0o700)


def temp_path(path: Path) -> Path:
    """A hidden temp name next to ``path`` (never matched by ``*.parquet`` globs)."""
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def atomic_write(path: Path, write: Callable[[BinaryIO], None], fsync: bool) -> int:
    """Write ``path`` through ``write(file)`` so readers see the old file or the whole new one.

    Returns the size of the written file.
    """
    make_private_dirs(path.parent)
    tmp = temp_path(path)
    try:
        # user-only (0o600) like the cache folder: batches may hold private data
        with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as handle:
            write(handle)
            handle.flush()
            if fsync:
                os.fsync(handle.fileno())
            size = handle.tell()
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return size


def atomic_write_bytes(path: Path, data: bytes, fsync: bool) -> int:
    """Atomically replace ``path`` with ``data``."""

    def write(handle: BinaryIO) -> None:
        handle.write(data)

    return atomic_write(path, write, fsync)


def fsync_dir(path: Path) -> None:
    """Make renames inside ``path`` durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def sync_filesystem(path: Path) -> bool:
    """``syncfs(2)`` the filesystem holding ``path``: every file written and renamed on it so far
    is durable, as if each had been fsynced with its folder. ``False`` where unavailable (not
    Linux) or failed; the caller then fsyncs file by file.

    One call makes a whole group of batch files durable: on small batches that costs a fraction
    of one fsync per file plus one per folder. ``syncfs`` is looked up in the symbols the
    interpreter already has loaded (``dlopen(NULL)``, libc among them): ``ctypes.util.find_library``
    would run ``ldconfig`` in a subprocess on every call.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        syncfs = ctypes.CDLL(None, use_errno=True).syncfs
        fd = os.open(path, os.O_RDONLY)
    except (OSError, AttributeError):
        return False
    try:
        return bool(syncfs(fd) == 0)
    finally:
        os.close(fd)
