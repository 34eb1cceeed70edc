"""Atomic file writes: write a temp name, (optionally) fsync, rename into place."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

__all__ = ["atomic_write", "atomic_write_bytes", "fsync_dir", "temp_path"]


def temp_path(path: Path) -> Path:
    """A hidden temp name next to ``path`` (never matched by ``*.parquet`` globs)."""
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def atomic_write(path: Path, write: Callable[[BinaryIO], None], fsync: bool) -> int:
    """Write ``path`` through ``write(file)`` so readers see the old file or the whole new one.

    Returns the size of the written file.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(path)
    try:
        with open(tmp, "wb") as handle:
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
