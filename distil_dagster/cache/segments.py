"""Segment files: intermediate batches appended to one file per writer instead of one file each.

Creating a file costs a directory entry and an inode, which on some filesystems (here: ext4
with ``discard``, in a fresh folder) takes up to ~1 ms of kernel time, while appending a batch
takes microseconds. A pipeline with small batches writes thousands of intermediate batches, so
each writer (a worker process's step replica, or the committer for the inline executor) appends
its batches of one step to ``steps/<step>/<pid>-<random>-<n>.seg``. No two writers share a
file: names are unique per writer and a writer only ever appends to files it created.

A batch is the framed pickle of ``batch_store`` (magic, CRC-32, payload) at a byte range. The
journal counts a batch by ``(file, offset, size)`` only after the bytes are durable (the
committer's ``syncfs``, or ``fsync`` here), so exactly-once rests on the same rule as before:
written, then made durable, then counted. Bytes that are never counted — the tail of a batch
cut by a kill, a batch whose commit never came — are dead space: no record points at them, and
the next run truncates a segment back to its last counted byte (``trim``) or removes a segment
nothing counts.
"""

from __future__ import annotations

import os
import secrets
import threading
from pathlib import Path

from distil_dagster.cache.atomic import fsync_dir, make_private_dirs

__all__ = ["SEGMENT_SUFFIX", "SegmentWriter", "trim"]

SEGMENT_SUFFIX = ".seg"
#: A writer starts a new segment once its current one holds this many bytes.
MAX_SEGMENT_BYTES = 64 * 1024 * 1024


class SegmentWriter:
    """Appends framed batches to this writer's segments in ``folder``; thread-safe.

    Args:
        folder: the step's folder (``steps/<step>``), created when the first batch comes.
        fsync: fsync each append (and the folder when a segment is created); ``False`` when the
            committer makes the whole filesystem durable per group, or durability is off.
        max_bytes: size after which the next append starts a new segment.
    """

    def __init__(self, folder: Path, fsync: bool, max_bytes: int = MAX_SEGMENT_BYTES) -> None:
        self.folder = folder
        self.fsync = fsync
        self.max_bytes = max_bytes
        self._token = f"{os.getpid()}-{secrets.token_hex(4)}"
        self._number = 0
        self._fd: int | None = None
        self._path: Path | None = None
        self._end = 0
        self._lock = threading.Lock()

    def append(self, data: bytes) -> tuple[Path, int]:
        """Write ``data`` at the end of the current segment; returns ``(segment, offset)``.

        A failed write leaves at most a partial tail that no record counts; the next append goes
        after it (or to a new segment when the file could not be extended at all).
        """
        with self._lock:
            if self._fd is None or self._end >= self.max_bytes:
                self._open_next()
            assert self._fd is not None and self._path is not None
            offset = self._end
            try:
                view = memoryview(data)
                while view:
                    written = os.write(self._fd, view)
                    view = view[written:]
                if self.fsync:
                    os.fsync(self._fd)
            finally:
                self._end = os.fstat(self._fd).st_size
            return self._path, offset

    def close(self) -> None:
        """Close the current segment (its appended batches stay valid)."""
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None

    def _open_next(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        make_private_dirs(self.folder)
        self._number += 1
        while True:
            path = self.folder / f"{self._token}-{self._number:03d}{SEGMENT_SUFFIX}"
            try:
                # O_EXCL: a name is never reused, so no writer ever appends to bytes another counted.
                self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o600)
                break
            except FileExistsError:  # the same pid and random part elsewhere (another node): new name
                self._token = f"{os.getpid()}-{secrets.token_hex(4)}"
        self._path = path
        self._end = 0
        if self.fsync:
            fsync_dir(self.folder)


def trim(path: Path, end: int) -> bool:
    """Cut ``path`` back to ``end`` bytes (its last counted byte) when it is longer; returns whether it did.

    Never extends a file: a segment shorter than its records is reported when they are read.
    """
    if path.stat().st_size <= end:
        return False
    os.truncate(path, end)
    return True
