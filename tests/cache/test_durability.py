"""How batch files become durable: one ``syncfs`` per committed group, or an fsync per file where unavailable."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from distil_dagster.cache import committer as committer_module
from distil_dagster.cache.committer import BatchCommitter
from distil_dagster.cache.journal import BatchRecord, CommitJournal
from distil_dagster.cache.layout import CacheLayout


def _commit_three(layout: CacheLayout, committer: BatchCommitter) -> None:
    for seq in range(3):
        rows = [{"id": seq}]
        committer.submit(BatchRecord("step", seq, 1, seq == 2), rows, layout.batch_file("step", seq, False))
    committer.close()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="syncfs is Linux-only")
def test_a_group_is_made_durable_by_one_filesystem_sync(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fsynced: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (fsynced.append(fd), real_fsync(fd)))
    layout = CacheLayout(tmp_path / "p" / "sig")
    layout.root.mkdir(parents=True)
    committer = BatchCommitter(layout, fsync=True)
    assert committer.group_sync and not committer.file_fsync
    _commit_three(layout, committer)
    assert sorted(CommitJournal(layout.journal).read()["step"]) == [0, 1, 2]
    assert len(fsynced) <= 3  # the journal's appends only, never a batch file or folder


def test_without_syncfs_every_file_and_folder_is_fsynced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(committer_module, "sync_filesystem", lambda path: False)
    fsynced: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (fsynced.append(fd), real_fsync(fd)))
    layout = CacheLayout(tmp_path / "p" / "sig")
    layout.root.mkdir(parents=True)
    committer = BatchCommitter(layout, fsync=True)
    assert committer.file_fsync and not committer.group_sync
    _commit_three(layout, committer)
    assert sorted(CommitJournal(layout.journal).read()["step"]) == [0, 1, 2]
    assert len(fsynced) >= 4  # three files, their folder, the journal


def test_fsync_off_syncs_nothing(tmp_path: Path) -> None:
    layout = CacheLayout(tmp_path / "p" / "sig")
    layout.root.mkdir(parents=True)
    committer = BatchCommitter(layout, fsync=False)
    assert not committer.group_sync and not committer.file_fsync
    committer.close()
