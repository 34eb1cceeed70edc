"""How batch files become durable: one ``syncfs`` per committed group, or an fsync per file where unavailable."""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path

import pytest

from distil_dagster.cache import committer as committer_module
from distil_dagster.cache.committer import BatchCommitter
from distil_dagster.cache.journal import BatchRecord, CommitJournal
from distil_dagster.cache.layout import CacheLayout


def _layout(tmp_path: Path) -> CacheLayout:
    layout = CacheLayout(tmp_path / "p" / "sig")
    layout.root.mkdir(parents=True)
    return layout


def _record_fsyncs(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The file descriptors ``os.fsync`` is called on from now (the calls still happen)."""
    fsynced: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (fsynced.append(fd), real_fsync(fd)))
    return fsynced


def _commit_three(layout: CacheLayout, committer: BatchCommitter) -> None:
    for seq in range(3):
        rows = [{"id": seq}]
        committer.submit(BatchRecord("step", seq, 1, seq == 2), rows, None)  # appended to the step's segment
    committer.close()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="syncfs is Linux-only")
def test_a_group_is_made_durable_by_one_filesystem_sync(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fsynced = _record_fsyncs(monkeypatch)
    layout = _layout(tmp_path)
    committer = BatchCommitter(layout, fsync=True)
    assert committer.group_sync and not committer.file_fsync
    _commit_three(layout, committer)
    assert sorted(CommitJournal(layout.journal).read()["step"]) == [0, 1, 2]
    assert len(fsynced) <= 3  # the journal's appends only, never a segment or folder


def test_without_syncfs_every_file_and_folder_is_fsynced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(committer_module, "sync_filesystem", lambda path: False)
    fsynced = _record_fsyncs(monkeypatch)
    layout = _layout(tmp_path)
    committer = BatchCommitter(layout, fsync=True)
    assert committer.file_fsync and not committer.group_sync
    _commit_three(layout, committer)
    assert sorted(CommitJournal(layout.journal).read()["step"]) == [0, 1, 2]
    assert len(fsynced) >= 4  # three appends to the segment, its folder, the journal


def test_fsync_off_syncs_nothing(tmp_path: Path) -> None:
    layout = _layout(tmp_path)
    committer = BatchCommitter(layout, fsync=False)
    assert not committer.group_sync and not committer.file_fsync
    committer.close()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="syncfs is Linux-only")
def test_journal_lines_become_durable_before_any_later_line_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With syncfs, a group's journal lines ride on the next group's sync; close syncs the last."""
    events: list[str] = []
    real_sync = committer_module.sync_filesystem
    monkeypatch.setattr(committer_module, "sync_filesystem", lambda path: (events.append("syncfs"), real_sync(path))[1])
    real_append, real_journal_sync = CommitJournal.append, CommitJournal.sync
    monkeypatch.setattr(
        CommitJournal,
        "append",
        lambda self, records, fsync: (events.append(f"append fsync={fsync}"), real_append(self, records, fsync))[1],
    )
    monkeypatch.setattr(
        CommitJournal, "sync", lambda self: (events.append("journal fsync"), real_journal_sync(self))[1]
    )
    layout = _layout(tmp_path)
    committer = BatchCommitter(layout, fsync=True)
    events.clear()  # the constructor's probe
    for seq in range(3):
        committer.submit(BatchRecord("step", seq, 1, seq == 2), [{"id": seq}], None)
        committer.flush()  # one group per batch
    committer.close()
    assert events == ["syncfs", "append fsync=False"] * 3 + ["journal fsync"]
    assert sorted(CommitJournal(layout.journal).read()["step"]) == [0, 1, 2]


def test_submit_blocks_while_the_pending_rows_exceed_the_bound(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    writing, release = threading.Event(), threading.Event()
    real_write = committer_module.write_batch

    def slow_write(path: Path, rows: list, step: str, fsync: bool) -> tuple:
        writing.set()
        assert release.wait(30)
        return real_write(path, rows, step, fsync)

    monkeypatch.setattr(committer_module, "write_batch", slow_write)
    layout = _layout(tmp_path)
    committer = BatchCommitter(layout, fsync=False, max_pending_rows=2)

    def submit(seq: int) -> None:
        committer.submit(BatchRecord("step", seq, 1, seq == 3), [{"id": seq}], layout.leaf_file("step", seq))

    submit(0)
    assert writing.wait(30)  # the writer holds batch 0
    submit(1)
    submit(2)  # two rows wait: the bound
    blocked = threading.Thread(target=submit, args=(3,))
    blocked.start()
    blocked.join(0.5)
    assert blocked.is_alive(), "a third waiting row was accepted over max_pending_rows=2"
    release.set()
    blocked.join(30)
    assert not blocked.is_alive()
    committer.close()
    assert sorted(CommitJournal(layout.journal).read()["step"]) == [0, 1, 2, 3]
