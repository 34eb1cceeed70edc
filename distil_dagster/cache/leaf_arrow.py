"""A leaf's committed batches as one Arrow stream file that ``datasets`` and ``pyarrow`` memory-map.

``<signature folder>/arrow/<leaf>.<fingerprint>.arrow`` holds every row of a leaf, written a few
batches at a time (memory stays bounded however large the leaf), in the first batch's schema
when every batch has it, else in the batches' unified schema (``None`` in one batch, ``str`` in
the next gives ``str``). The fingerprint covers the committed files (names, sizes, inodes,
mtimes) and whether ``distilabel_metadata`` is kept, so a recomputed leaf never reuses an old
file; the file is written atomically and fsynced, so an existing one is whole. The Distiset and
the Dagster IO manager both open these files; the engine never reads them.
"""

from __future__ import annotations

import hashlib
import re
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from distil_dagster.cache.atomic import atomic_write, make_private_dirs
from distil_dagster.cache.batch_store import LeafPart, LeafRun, leaf_runs, read_leaf_run
from distil_dagster.cache.layout import CacheLayout
from distil_dagster.errors import CacheCorruptedError, StepOutputError

__all__ = [
    "METADATA_COLUMN",
    "LeafSchemas",
    "arrow_path",
    "conform",
    "leaf_arrow_file",
    "leaf_schema",
    "remove_stale",
    "visible_schema",
]

METADATA_COLUMN = "distilabel_metadata"
_READ_AHEAD = 4

Files = list[LeafPart]


def _parquet_schema(path: Path) -> pa.Schema:
    try:
        return pq.read_metadata(path).schema.to_arrow_schema()
    except (OSError, pa.ArrowException) as exc:
        raise CacheCorruptedError(
            f"Cache file {path} is unreadable ({exc}); run again with use_cache=False to recompute it."
        ) from exc


def visible_schema(schema: pa.Schema, enable_metadata: bool) -> pa.Schema:
    """``schema`` without ``distilabel_metadata`` unless it is kept."""
    if enable_metadata or METADATA_COLUMN not in schema.names:
        return schema
    return schema.remove(schema.get_field_index(METADATA_COLUMN))


def leaf_schema(step: str, files: Files, enable_metadata: bool) -> pa.Schema:
    """The unified schema of a leaf's batch files, from their footers (no data read)."""
    schemas = [_parquet_schema(path).remove_metadata() for path in dict.fromkeys(part.path for part in files)]
    if not schemas:
        return pa.schema([])
    try:
        schema = pa.unify_schemas(schemas, promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as exc:
        raise StepOutputError(
            f"Leaf step '{step}' wrote batches (in {files[0].path.parent}) whose column types cannot be unified "
            f"({exc}); make each column's values one type across batches (None is fine)."
        ) from exc
    return visible_schema(schema, enable_metadata)


class LeafSchemas:
    """The unified schema of each leaf's committed batches, so that a batch whose column types
    cannot join the earlier ones fails the run when it is written (naming step, batch and
    column), not hours later when the Distiset is built.

    ``committed``: per leaf, the files earlier runs committed (their footers are read when the
    leaf's first new batch comes, so a resumed run checks against them too).
    """

    def __init__(self, committed: dict[str, list[Path]] | None = None) -> None:
        self._schemas: dict[str, pa.Schema] = {}
        self._committed = {step: files for step, files in (committed or {}).items() if files}
        self._last: dict[str, Path] = {}  # per leaf, the file last joined (a shared file is read once)

    def add(self, step: str, seq_no: int, path: Path, schema: pa.Schema | None = None) -> None:
        """Join batch ``seq_no``'s schema (read from the file's footer when not given)."""
        if schema is None and self._last.get(step) == path:
            return  # a file shared with the batch before: already joined
        self._last[step] = path
        schema = (schema if schema is not None else _parquet_schema(path)).remove_metadata()
        earlier = self._committed.pop(step, None)
        if earlier:
            self._schemas[step] = leaf_schema(step, [LeafPart(p) for p in earlier], enable_metadata=True)
        known = self._schemas.get(step)
        if known is None or known.equals(schema):
            self._schemas[step] = schema
            return
        try:
            self._schemas[step] = pa.unify_schemas([known, schema], promote_options="permissive")
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as exc:
            raise StepOutputError(
                f"Leaf step '{step}' wrote batch {seq_no} ({path}) whose column types cannot be unified with "
                f"its earlier batches ({exc}); make each column's values one type across batches (None is fine)."
            ) from exc


def conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """``table`` with ``schema``'s columns, in its order and types (missing columns are nulls)."""
    columns = []
    for column in schema:
        if column.name in table.column_names:
            columns.append(table.column(column.name).cast(column.type))
        else:
            columns.append(pa.nulls(table.num_rows, column.type))
    return pa.Table.from_arrays(columns, schema=schema)


class _SchemaChanged(Exception):
    """A batch's schema differs from the first batch's."""


def _read_run(run: LeafRun) -> list[pa.Table]:
    return list(read_leaf_run(run))


def _write_stream(handle: Any, files: Files, unified: pa.Schema | None, enable_metadata: bool) -> None:
    """Every batch into one stream, reading a few files ahead on threads (Parquet decoding
    releases the GIL). ``unified=None``: the first batch's schema, and any other raises
    ``_SchemaChanged``; else every batch is conformed to ``unified``."""
    schema, writer = unified, None
    upcoming = iter(leaf_runs(files))
    with ThreadPoolExecutor(max_workers=_READ_AHEAD) as pool:
        ahead: deque[Future[list[pa.Table]]] = deque()

        def fill() -> None:
            while len(ahead) < _READ_AHEAD and (run := next(upcoming, None)) is not None:
                ahead.append(pool.submit(_read_run, run))

        fill()
        while ahead:
            tables = ahead.popleft().result()
            fill()
            for table in tables:
                table = table.select(visible_schema(table.schema, enable_metadata).names)
                schema = schema or table.schema
                if not table.schema.equals(schema):
                    if unified is None:
                        raise _SchemaChanged
                    table = conform(table, schema)
                writer = writer or pa.ipc.new_stream(handle, schema)
                writer.write_table(table)
    writer = writer or pa.ipc.new_stream(handle, schema or pa.schema([]))
    writer.close()


def _identity(path: Path) -> tuple[int, int] | None:
    """Which write of ``path`` this is: a batch recomputed under the same name and size (a rerun of
    failed rows, ``use_cache=False``) is a new inode with a new mtime."""
    try:
        stat = path.stat()
    except OSError:
        return None  # reading it names the problem
    return stat.st_ino, stat.st_mtime_ns


def arrow_path(root: Path, step: str, files: Files, enable_metadata: bool) -> Path:
    """Where the Arrow file of a leaf's committed ``files`` lives (``root``: the signature folder)."""
    identities = {path: _identity(path) for path in dict.fromkeys(part.path for part in files)}
    parts = [
        (p.path.name, p.size, identities[p.path]) + (() if p.first_row is None else (p.first_row, p.num_rows))
        for p in files
    ]
    key = repr((parts, enable_metadata))
    fingerprint = hashlib.sha1(key.encode()).hexdigest()[:16]
    return CacheLayout(root).arrow_dir / f"{step}.{fingerprint}.arrow"


def remove_stale(path: Path, step: str) -> None:
    """Remove the leaf's other Arrow files (a reader that mapped one keeps its pages)."""
    stale = re.compile(re.escape(step) + r"\.[0-9a-f]{16}\.arrow")
    for old in path.parent.iterdir():
        if old != path and stale.fullmatch(old.name):
            old.unlink(missing_ok=True)


def leaf_arrow_file(root: Path, step: str, files: Files, enable_metadata: bool) -> Path:
    """The Arrow stream file of a leaf's committed ``files`` (written unless it already exists)."""
    path = arrow_path(root, step, files, enable_metadata)
    if path.exists():
        return path
    make_private_dirs(path.parent)
    try:  # most leaves have one schema: take the first batch's, checked batch by batch
        atomic_write(path, lambda handle: _write_stream(handle, files, None, enable_metadata), True)
    except _SchemaChanged:  # unify the footers' schemas first, then write again
        schema = leaf_schema(step, files, enable_metadata)
        atomic_write(path, lambda handle: _write_stream(handle, files, schema, enable_metadata), True)
    remove_stale(path, step)
    return path
