"""What a cache root holds, and removing parts of it (``distil-dagster cache list / clean``).

A cache root holds ``<pipeline name>/<signature>/`` folders. Their status comes from the
snapshot (``batch_manager.json``) when present, their rows from the commit journal (read-only).
Cleaning never touches a folder whose lock is held by a running run.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock, Timeout

from distil_dagster.cache.journal import CommitJournal, is_complete
from distil_dagster.cache.layout import CacheLayout
from distil_dagster.errors import CacheCorruptedError

__all__ = ["CacheEntry", "clean_entries", "list_entries"]


@dataclass(frozen=True)
class CacheEntry:
    """One signature folder."""

    pipeline: str
    signature: str
    path: Path
    status: str
    leaf_rows: int
    batches: int
    size_bytes: int
    last_run: float

    @property
    def age_days(self) -> float:
        return (time.time() - self.last_run) / 86400


def _folder_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _entry(folder: Path) -> CacheEntry:
    layout = CacheLayout(folder)
    status = "unknown"
    try:
        snapshot = json.loads(layout.snapshot.read_text(encoding="utf-8"))
        status = str(snapshot.get("status", "unknown"))
    except (OSError, ValueError):
        pass
    try:
        committed = CommitJournal(layout.journal).read()
    except CacheCorruptedError:
        committed, status = {}, "corrupted"
    leaf_rows = sum(
        r.num_rows for records in committed.values() for r in records.values() if r.file and r.file.endswith(".parquet")
    )
    if status == "unknown" and committed:
        status = "finished" if all(is_complete(records) for records in committed.values()) else "partial"
    stamps = [p.stat().st_mtime for p in (layout.journal, layout.snapshot, layout.log_file) if p.exists()]
    return CacheEntry(
        pipeline=folder.parent.name,
        signature=folder.name,
        path=folder,
        status=status,
        leaf_rows=leaf_rows,
        batches=sum(len(records) for records in committed.values()),
        size_bytes=_folder_size(folder),
        last_run=max(stamps, default=folder.stat().st_mtime),
    )


def list_entries(root: Path, pipeline: str | None = None, signature: str | None = None) -> list[CacheEntry]:
    """Every signature folder under ``root`` (optionally of one pipeline / signature), newest first."""
    entries = []
    for folder in _folders(root):
        if pipeline is not None and folder.parent.name != pipeline:
            continue
        if signature is not None and not folder.name.startswith(signature):
            continue
        entries.append(_entry(folder))
    return sorted(entries, key=lambda e: e.last_run, reverse=True)


def _folders(root: Path) -> Iterator[Path]:
    if not root.is_dir():
        return
    for pipeline_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        for folder in sorted(p for p in pipeline_dir.iterdir() if p.is_dir()):
            if (folder / "pipeline.yaml").exists() or (folder / "commits.jsonl").exists():
                yield folder


def clean_entries(entries: list[CacheEntry], dry_run: bool = True) -> tuple[list[CacheEntry], list[CacheEntry]]:
    """Remove ``entries`` (unless ``dry_run``); returns (removed or to remove, skipped as in use)."""
    removed, busy = [], []
    for entry in entries:
        lock = FileLock(str(CacheLayout(entry.path).lock_file))
        try:
            lock.acquire(timeout=0)
        except Timeout:
            busy.append(entry)
            continue
        try:
            if not dry_run:
                shutil.rmtree(entry.path)
            removed.append(entry)
        finally:
            lock.release()
    return removed, busy
