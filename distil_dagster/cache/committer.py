"""The commit protocol, run on a background thread so encoding and fsync overlap step work.

Data flow: the scheduler submits ``(record, rows, path)``; the writer thread writes a leaf's batch
file atomically (temp name, rename; the leaf's batches of one group share the first one's file,
each counted by its first row there) or appends an intermediate batch to its segment for the
step (``segments.py``), makes the drained group's files durable with one
``syncfs`` of the cache's filesystem (or, where that is unavailable, an fsync per file and
folder), then appends the group's records to the journal. With ``syncfs`` the journal lines need
no fsync of their own: the next group's ``syncfs`` (or ``close``) makes them durable before any
later line is written, so a power loss can only cut the journal's tail, never open a hole in it.
Without it the journal is fsynced per group. Jobs are committed strictly in submission order,
and the scheduler submits a batch only after the batches it was built from, so the journal never
counts a batch whose inputs are not counted. The first error stops the writer and is raised to
the scheduler.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from distil_dagster.cache.atomic import fsync_dir, sync_filesystem
from distil_dagster.cache.batch_store import LeafPart, append_batch, arrow_table, write_batch
from distil_dagster.cache.journal import BatchRecord, CommitJournal
from distil_dagster.cache.layout import CacheLayout
from distil_dagster.cache.leaf_arrow import LeafSchemas
from distil_dagster.cache.leaf_arrow_builder import LeafArrowBuilder
from distil_dagster.cache.segments import SegmentWriter
from distil_dagster.errors import StepOutputError

__all__ = ["BatchCommitter"]


@dataclass(slots=True)
class _Job:
    record: BatchRecord
    rows: list[dict[str, Any]] | None
    path: Path | None
    schema: Any = None
    table: Any = None  # the leaf batch as written (here, or by a worker that sent it), for the Arrow file
    arrow: bytes | None = None  # the batch as a worker sent it (Arrow IPC)


class BatchCommitter:
    """Writes batch files and journals them, in order, on one writer thread.

    Args:
        layout: the signature folder.
        fsync: fsync files, folders and the journal (survives power loss, not only kills).
        max_pending_rows: rows of submitted-but-unwritten batches before ``submit`` blocks (bounds
            memory; a batch whose file a worker already wrote counts as one row).
        on_commit: called on the writer thread with each group of records once they are committed
            (durable against kills; against power loss at the next group's sync).
        committed_leaf_files: per leaf, the files committed by earlier runs, whose schemas new
            batches must join (read when the leaf's first new batch comes).
        leaf_arrows: per leaf, a builder fed each committed batch, so the leaf's Arrow file is
            written while the run goes on (finished by ``close(finish_leaf_arrows=True)``).
    """

    def __init__(
        self,
        layout: CacheLayout,
        fsync: bool = True,
        max_pending_rows: int = 20_000,
        on_commit: Callable[[list[BatchRecord]], None] | None = None,
        committed_leaf_files: dict[str, list[Path]] | None = None,
        leaf_arrows: dict[str, LeafArrowBuilder] | None = None,
    ) -> None:
        self.layout = layout
        self.on_commit = on_commit
        self.fsync = fsync
        self.max_pending_rows = max_pending_rows
        self.journal = CommitJournal(layout.journal)
        #: One syncfs per group covers the files (also those workers wrote) and their renames.
        self.group_sync = fsync and sync_filesystem(layout.root)
        #: Whether whoever writes a batch file must fsync it itself.
        self.file_fsync = fsync and not self.group_sync
        self._jobs: deque[_Job] = deque()
        self._pending_rows = 0
        self.leaf_schemas = LeafSchemas(committed_leaf_files)
        self.leaf_arrows = leaf_arrows or {}
        self._segments: dict[str, SegmentWriter] = {}
        #: Records appended to the journal by this committer, in commit order.
        self.committed: list[BatchRecord] = []
        self._cond = threading.Condition()
        self._error: BaseException | None = None
        self._closing = False
        self._busy = False
        self._thread = threading.Thread(target=self._run, name="distil-dagster-committer", daemon=True)
        self._thread.start()

    def submit(
        self,
        record: BatchRecord,
        rows: list[dict[str, Any]] | None,
        path: Path | None,
        schema: Any = None,
        arrow: bytes | None = None,
    ) -> None:
        """Queue a batch for commit; ``rows`` are written first: to ``path`` (a leaf's Parquet
        file), or, without a ``path``, appended to this committer's segment for the step.

        ``rows=None`` with a ``path``: a worker already wrote the batch there (``record.size``,
        and ``record.offset`` for a segment, set; ``schema``: a leaf file's schema, as the worker
        reported it, else read from the file; ``arrow``: a small leaf batch's rows as the worker
        sent them, so the leaf's Arrow file need not read the file back). ``rows=None`` without a
        path, or no rows: the batch is empty and has no file.
        """
        if path is not None:
            record.file = self.layout.relative(path)
        weight = max(1, len(rows)) if rows is not None else 1
        with self._cond:
            while self._jobs and self._pending_rows + weight > self.max_pending_rows and self._error is None:
                self._cond.wait(timeout=1.0)
            self._raise_error()
            self._jobs.append(_Job(record, rows, path, schema, arrow=arrow))
            self._pending_rows += weight
            self._cond.notify_all()

    def flush(self) -> None:
        """Block until every submitted batch is committed; raise the writer's error if any."""
        with self._cond:
            while (self._jobs or self._busy) and self._error is None:
                self._cond.wait(timeout=1.0)
            self._raise_error()

    def close(self, finish_leaf_arrows: bool = False) -> None:
        """Commit what was submitted (unless the writer failed), then stop the thread.

        ``finish_leaf_arrows``: the run finished; move the leaves' Arrow files into place
        (otherwise their temp files are removed).
        """
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        self._thread.join()
        for writer in self._segments.values():
            writer.close()
        try:
            if self.group_sync:
                self.journal.sync()  # the last group's lines (earlier ones: each next syncfs)
        finally:
            self.journal.close()
            for builder in self.leaf_arrows.values():
                try:
                    if finish_leaf_arrows and self._error is None:
                        builder.finish()
                    else:
                        builder.give_up()
                except Exception:  # an optimization only: the Distiset writes (and reports) the file
                    builder.give_up()
        with self._cond:
            self._raise_error()

    def _raise_error(self) -> None:
        if self._error is not None:
            raise self._error

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._jobs and not self._closing:
                    self._cond.wait()
                if not self._jobs:
                    return
                group = list(self._jobs)
                self._jobs.clear()
                self._pending_rows = 0
                self._busy = True
                self._cond.notify_all()
            try:
                self._commit(group)
            except BaseException as exc:  # handed to the scheduler thread, which re-raises it
                with self._cond:
                    self._error = exc
                    self._busy = False
                    self._cond.notify_all()
                return
            with self._cond:
                self._busy = False
                self._cond.notify_all()

    def _segment(self, step: str) -> SegmentWriter:
        writer = self._segments.get(step)
        if writer is None:
            writer = self._segments[step] = SegmentWriter(self.layout.segment_dir(step), self.file_fsync)
        return writer

    def _write_shared(self, group: list[_Job]) -> set[int]:
        """Write each leaf's batches of ``group`` (two or more) into one file, the first's; returns
        the ``id``s of the jobs written. Batches that cannot be stored together are left to be
        written one by one, so the error names the batch and the others are kept."""
        by_leaf: dict[tuple[str, Path], list[_Job]] = {}
        for job in group:
            if job.rows and job.path is not None and job.path.suffix == ".parquet":
                jobs = by_leaf.setdefault((job.record.step, job.path.parent), [])
                jobs.append(job)
        done: set[int] = set()
        for (step, _), jobs in by_leaf.items():
            path = jobs[0].path
            if len(jobs) < 2 or path is None:
                continue
            try:
                size, table = write_batch(path, [row for job in jobs for row in job.rows or ()], step, self.file_fsync)
            except StepOutputError:
                continue
            assert table is not None
            first = 0
            for job in jobs:
                count = len(job.rows or ())
                job.path, job.record.size, job.record.first_row = path, size, first
                job.record.file = self.layout.relative(path)
                job.table, job.schema = table.slice(first, count), table.schema
                first += count
                done.add(id(job))
        return done

    def _commit(self, group: list[_Job]) -> None:
        dirs: set[Path] = set()
        appended = False
        written: list[BatchRecord] = []
        try:
            shared = self._write_shared(group)
            for job in group:
                if id(job) in shared:
                    pass  # its rows are in the file it shares with the leaf's other batches
                elif job.rows and job.path is None:
                    path, job.record.offset, job.record.size = append_batch(self._segment(job.record.step), job.rows)
                    job.record.file = self.layout.relative(path)
                    appended = True  # the writer fsyncs its own folder and file when asked to
                elif job.path is not None and job.rows is not None:
                    job.record.size, job.table = write_batch(job.path, job.rows, job.record.step, self.file_fsync)
                    job.schema = None if job.table is None else job.table.schema
                elif job.arrow is not None:
                    job.table, job.arrow = arrow_table(job.arrow), None
                if job.path is not None:
                    if job.path.suffix == ".parquet":  # a leaf's batch: not committed if it cannot join
                        self.leaf_schemas.add(job.record.step, job.record.seq_no, job.path, job.schema)
                    dirs.add(job.path.parent)
                written.append(job.record)
        finally:
            # Whatever was written before a failure is still committed, in order.
            if self.group_sync and (dirs or appended):
                if not sync_filesystem(self.layout.root):
                    raise OSError(f"syncfs failed on the cache folder {self.layout.root}")
            elif self.fsync:
                for directory in dirs:
                    fsync_dir(directory)
            self.journal.append(written, self.fsync and not self.group_sync)
            self.committed.extend(written)
            if self.on_commit is not None and written:
                self.on_commit(written)
            for job in group[: len(written)]:
                builder = self.leaf_arrows.get(job.record.step)
                if builder is not None:
                    record = job.record
                    part = (
                        None if job.path is None else LeafPart(job.path, record.size, record.first_row, record.num_rows)
                    )
                    builder.add(record.seq_no, part, job.table)
                job.table = None
