"""A leaf's Arrow file written while its batches commit, so the Distiset of a finished run is ready.

``leaf_arrow_file`` reads every committed Parquet batch of a leaf once the run is over; on a
leaf of thousands of small batches that is the largest part of what follows the last commit.
The committer feeds this builder each leaf batch right after committing it, on the writer
thread, while the steps still run. Batches are written in ``seq_no`` order (a replica's early
batch waits for the ones before it), in the first batch's visible schema.

The result is the very file ``leaf_arrow_file`` would write, under the same name: the name is
derived from the committed files when the run finishes, so the Distiset finds it and reads
nothing. Batches a worker wrote are read back; batches the committer wrote itself (inline)
are taken from memory, once the first of their schema read back equal. Anything unusual — a batch in another schema, a leaf with batches from earlier runs, an
unreadable batch, a run that does not finish — and the builder gives up: its temp file is
removed and the Distiset writes the file the usual way. It can cost time, never correctness.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

import pyarrow as pa

from distil_dagster.cache.atomic import make_private_dirs, temp_path
from distil_dagster.cache.batch_store import LeafPart, read_leaf_part, read_leaf_table
from distil_dagster.cache.layout import CacheLayout
from distil_dagster.cache.leaf_arrow import arrow_path, remove_stale, visible_schema

__all__ = ["LeafArrowBuilder"]


class LeafArrowBuilder:
    """Streams the committed batches of one leaf into its Arrow file.

    Args:
        root: the signature folder.
        step: the leaf step.
        enable_metadata: whether ``distilabel_metadata`` is kept (as for the Distiset).
    """

    def __init__(self, root: Path, step: str, enable_metadata: bool) -> None:
        self.root = root
        self.step = step
        self.enable_metadata = enable_metadata
        self._next = 0
        self._waiting: dict[int, tuple[LeafPart | None, pa.Table | None]] = {}
        self._trusted: pa.Schema | None = None  # in-memory tables in this schema read back equal
        self._files: list[LeafPart] = []
        self._read: tuple[Path, pa.Table] | None = None  # the file read last (batches may share one)
        self._tmp = temp_path(CacheLayout(root).arrow_dir / f"{step}.building.arrow")
        self._handle: Any = None
        self._writer: pa.ipc.RecordBatchStreamWriter | None = None
        self._schema: pa.Schema | None = None
        self.gave_up = False

    def add(self, seq_no: int, part: LeafPart | None, table: pa.Table | None = None) -> None:
        """A committed batch of the leaf (``part=None``: an empty batch, which has no file).

        ``table``: the batch's rows as they were written (else they are read back from the file).
        """
        if self.gave_up:
            return
        self._waiting[seq_no] = (part, table)
        while self._next in self._waiting:
            part, table = self._waiting.pop(self._next)
            self._next += 1
            if part is None:
                continue
            try:
                if not self._write(part, self._as_read(part, table)):
                    self.give_up()
                    return
            except Exception:  # the Distiset writes the file itself and reports the problem
                self.give_up()
                return

    def _as_read(self, part: LeafPart, table: pa.Table | None) -> pa.Table:
        """The batch as reading its file gives it. A table written from memory is taken as it is
        once the first one in its schema was read back equal (Parquet's round trip of a schema is
        a function of the schema), so the file holds what the Distiset would read."""
        if table is not None and self._trusted is not None and table.schema.equals(self._trusted):
            return table
        if self._read is None or self._read[0] != part.path:
            self._read = (part.path, read_leaf_table(part.path, part.size))
        read = read_leaf_part(part, self._read[1])
        if table is not None and self._trusted is None and read.equals(table):
            self._trusted = table.schema
        return read

    def _write(self, part: LeafPart, table: pa.Table) -> bool:
        table = table.select(visible_schema(table.schema, self.enable_metadata).names)
        if self._writer is None:
            make_private_dirs(self._tmp.parent)
            self._handle = os.fdopen(os.open(self._tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb")
            self._schema = table.schema
            self._writer = pa.ipc.new_stream(self._handle, table.schema)
        elif not table.schema.equals(self._schema):
            return False
        self._writer.write_table(table)
        self._files.append(part)
        return True

    def finish(self) -> Path | None:
        """Close the stream and move it to the leaf's Arrow file name (every batch committed);
        ``None`` when it gave up or has no batch (the Distiset then writes the file)."""
        if self.gave_up or self._writer is None or self._waiting:
            self.give_up()
            return None
        self._writer.close()
        self._handle.flush()
        os.fsync(self._handle.fileno())
        self._handle.close()
        self._writer = self._handle = None
        path = arrow_path(self.root, self.step, self._files, self.enable_metadata)
        os.replace(self._tmp, path)
        remove_stale(path, self.step)
        return path

    def give_up(self) -> None:
        """Stop and remove the temp file."""
        self.gave_up = True
        self._waiting.clear()
        with contextlib.suppress(Exception):
            if self._writer is not None:
                self._writer.close()
        with contextlib.suppress(OSError):
            if self._handle is not None:
                self._handle.close()
        self._writer = self._handle = None
        self._read = None
        with contextlib.suppress(OSError):
            self._tmp.unlink(missing_ok=True)
