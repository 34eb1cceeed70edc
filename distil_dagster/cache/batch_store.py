"""Reading and writing batches: Parquet files for leaf steps, pickles in segments for intermediate steps.

Intermediate batches are pickled: they round-trip Python rows exactly (mixed types, tuples,
structs with varying keys) so a resumed run feeds downstream steps the very rows the first run
did; they are appended to segment files (``segments.py``) by this process or its workers, in a
user-only folder, and read back by byte range. Leaf batches are Parquet files, the contract
``create_distiset`` reads, each written atomically (temp name + rename); consecutive batches
written at once share a file, each counted by its first row there (``LeafPart``). Whole pickled batch
files (``.pkl``, one per batch) are what earlier versions wrote; they are still read.

Both carry checksums, so a damaged file is reported rather than read as other rows: a pickled
batch is framed as ``DDB1`` + CRC-32 of the pickle + the pickle; Parquet pages carry their CRC-32
(``write_page_checksum``), verified on every read, and the footer's column names and row count
are checked against a CRC-32 kept in the file's key-value metadata.
"""

from __future__ import annotations

import os
import pickle
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pyarrow as pa
import pyarrow.parquet as pq

from distil_dagster.cache.atomic import atomic_write, atomic_write_bytes
from distil_dagster.cache.journal import BatchRecord
from distil_dagster.cache.segments import SegmentWriter
from distil_dagster.errors import CacheCorruptedError, StepOutputError

__all__ = [
    "LeafPart",
    "append_batch",
    "arrow_bytes",
    "arrow_table",
    "leaf_parts",
    "leaf_runs",
    "read_leaf_part",
    "read_leaf_run",
    "read_leaf_table",
    "read_rows",
    "rows_to_table",
    "write_batch",
    "write_rows",
]

Rows = list[dict[str, Any]]

_WAY_OUT = "run again with use_cache=False, or delete the file to recompute that batch"
_FRAME = b"DDB1"
_CRC_BYTES = 4
_TABLE_CHECK = b"distil_dagster.check"


def _storage_problem(values: list[Any], kind: pa.DataType) -> str | None:
    """What Arrow would store wrongly or Parquet cannot store (``None``: nothing), by walking type and values.

    Arrow turns ``str`` and ``bytes`` into each other in a column holding both, and ``bool`` into
    ``float`` in a column that also holds floats; Parquet has no struct without fields (``{}``).
    """
    if pa.types.is_binary(kind) or pa.types.is_large_binary(kind):
        if any(isinstance(v, str) for v in values):
            return "mixes str and bytes values (str would be stored as bytes)"
    elif pa.types.is_string(kind) or pa.types.is_large_string(kind):
        if any(isinstance(v, bytes) for v in values):
            return "mixes str and bytes values (bytes would be stored as str)"
    elif pa.types.is_floating(kind):
        if any(isinstance(v, bool) for v in values):
            return "mixes bool and float values (bools would be stored as floats)"
    elif pa.types.is_struct(kind):
        if kind.num_fields == 0:
            return "holds empty dicts ({}), which Parquet cannot store"
        for field in kind:
            found = _storage_problem([v.get(field.name) for v in values if isinstance(v, dict)], field.type)
            if found:
                return f"field '{field.name}' {found}"
    elif pa.types.is_list(kind) or pa.types.is_large_list(kind):
        return _storage_problem([x for v in values if isinstance(v, (list, tuple)) for x in v], kind.value_type)
    return None


def _has_checked_types(kind: pa.DataType) -> bool:
    if pa.types.is_binary(kind) or pa.types.is_large_binary(kind) or pa.types.is_struct(kind):
        return True
    if pa.types.is_floating(kind) or pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return True
    if pa.types.is_list(kind) or pa.types.is_large_list(kind):
        return _has_checked_types(kind.value_type)
    return False


def rows_to_table(rows: Rows, step: str) -> pa.Table:
    """Rows as an Arrow table (columns in first-seen order); names the column that cannot be stored as it is."""
    first = rows[0].keys()
    columns: dict[str, None] = dict.fromkeys(first)
    for row in rows:
        if row.keys() != first:
            columns.update(dict.fromkeys(row))
    if not columns:
        raise StepOutputError(
            f"Step '{step}' produced {len(rows)} row(s) without any column; Parquet cannot store rows "
            "without columns. Keep at least one column."
        )
    arrays = {}
    for column in columns:
        if not isinstance(column, str) or "\x00" in column:
            raise StepOutputError(
                f"Step '{step}' produced a column named {column!r}; column names must be strings without NUL characters."
            )
        values = [row.get(column) for row in rows]
        try:
            arrays[column] = pa.array(values)
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, OverflowError) as exc:
            raise StepOutputError(
                f"Step '{step}' produced column '{column}' with values that cannot be stored together "
                f"in Parquet ({exc}); make the column's values one type (None is fine)."
            ) from exc
        problem = _storage_problem(values, arrays[column].type) if _has_checked_types(arrays[column].type) else None
        if problem:
            raise StepOutputError(f"Step '{step}' produced column '{column}' that {problem}; change its values.")
    return pa.table(arrays)


def _table_check(table: pa.Table) -> bytes:
    """A CRC-32 of the columns' names and types and the row count (what a damaged footer can silently change)."""
    shape = [(field.name, _type_key(field.type)) for field in table.schema], table.num_rows
    return str(zlib.crc32(repr(shape).encode("utf-8"))).encode()


def _type_key(kind: pa.DataType) -> str:
    """A type as text, without what Parquet does not keep (the name of a list's item field)."""
    if pa.types.is_list(kind) or pa.types.is_large_list(kind):
        return f"{'large_' if pa.types.is_large_list(kind) else ''}list<{_type_key(kind.value_type)}>"
    if pa.types.is_struct(kind):
        return "struct<" + ", ".join(f"{field.name}: {_type_key(field.type)}" for field in kind) + ">"
    return str(kind)


def _checked(table: pa.Table, path: Path) -> pa.Table:
    """``table`` without its check, which must match (files of older caches have none)."""
    metadata = dict(table.schema.metadata or {})
    stored = metadata.pop(_TABLE_CHECK, None)
    table = table.replace_schema_metadata(metadata or None)
    if stored is not None and stored != _table_check(table):
        raise CacheCorruptedError(f"Cache file {path} fails its checksum (damaged footer); {_WAY_OUT}.")
    return table


def write_rows(path: Path, rows: Rows, step: str, fsync: bool) -> int:
    """Write a batch atomically (Parquet if ``path`` ends in .parquet); returns the file size."""
    return write_batch(path, rows, step, fsync)[0]


def write_batch(path: Path, rows: Rows, step: str, fsync: bool) -> tuple[int, pa.Table | None]:
    """``write_rows``, also returning the Arrow table written to Parquet (``None`` for a pickled batch)."""
    if path.suffix == ".parquet":
        table = rows_to_table(rows, step)
        checked = table.replace_schema_metadata({_TABLE_CHECK: _table_check(table)})
        try:
            size = atomic_write(
                path, lambda f: pq.write_table(checked, f, compression="snappy", write_page_checksum=True), fsync
            )
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as exc:
            raise StepOutputError(f"Step '{step}' produced rows that Parquet cannot store ({exc}).") from exc
        return size, table
    return atomic_write_bytes(path, _framed(rows), fsync), None


#: Leaf batches up to this size travel to the parent as Arrow IPC too (``arrow_bytes``).
_ARROW_BYTES = 1 << 20


def arrow_bytes(table: pa.Table | None) -> bytes | None:
    """A small leaf batch as an Arrow IPC stream (``None`` when larger than 1 MiB), so the process
    that builds the leaf's Arrow file need not read the Parquet file back."""
    if table is None or table.nbytes > _ARROW_BYTES:
        return None
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return bytes(sink.getvalue())


def arrow_table(data: bytes) -> pa.Table:
    """The table ``arrow_bytes`` gave."""
    return pa.ipc.open_stream(data).read_all()


def append_batch(writer: SegmentWriter, rows: Rows) -> tuple[Path, int, int]:
    """Append an intermediate batch to ``writer``'s segment; returns ``(segment, offset, size)``."""
    data = _framed(rows)
    path, offset = writer.append(data)
    return path, offset, len(data)


def _framed(rows: Rows) -> bytes:
    payload = pickle.dumps(rows, protocol=pickle.HIGHEST_PROTOCOL)
    return _FRAME + zlib.crc32(payload).to_bytes(_CRC_BYTES, "big") + payload


def _unframe(data: bytes, path: Path, whole_file: bool = True) -> bytes:
    """The pickle inside a framed batch, its checksum verified (unframed whole files are older caches)."""
    if not data.startswith(_FRAME):
        if whole_file and data.startswith(b"\x80"):  # written before checksums: a bare pickle
            return data
        raise CacheCorruptedError(f"Cache file {path} is not a batch file; {_WAY_OUT}.")
    head = len(_FRAME) + _CRC_BYTES
    payload = data[head:]
    if zlib.crc32(payload) != int.from_bytes(data[len(_FRAME) : head], "big"):
        raise CacheCorruptedError(f"Cache file {path} fails its checksum (damaged on disk); {_WAY_OUT}.")
    return payload


def _check_size(path: Path, size: int | None) -> None:
    try:
        actual = path.stat().st_size
    except FileNotFoundError as exc:
        raise CacheCorruptedError(f"Cache file {path} is missing; {_WAY_OUT}.") from exc
    if size is not None and actual != size:
        raise CacheCorruptedError(f"Cache file {path} has {actual} bytes, {size} were committed; {_WAY_OUT}.")


def read_rows(path: Path, size: int | None = None, offset: int | None = None) -> Rows:
    """Read the rows of a committed batch: a whole file of ``size`` bytes, or with ``offset``
    the ``size`` bytes there in a segment."""
    if offset is not None:
        return _read_segment_rows(path, offset, size)
    _check_size(path, size)
    try:
        if path.suffix == ".parquet":
            rows: Rows = _read_parquet(path).to_pylist()
            return rows
        loaded = pickle.loads(_unframe(path.read_bytes(), path))
    except CacheCorruptedError:
        raise
    except Exception as exc:  # a damaged pickle can raise nearly anything (MemoryError, KeyError, ...)
        raise CacheCorruptedError(f"Cache file {path} is unreadable ({exc!r}); {_WAY_OUT}.") from exc
    if not isinstance(loaded, list):
        raise CacheCorruptedError(f"Cache file {path} does not hold a batch of rows; {_WAY_OUT}.")
    return loaded


def _read_segment_rows(path: Path, offset: int, size: int | None) -> Rows:
    if not isinstance(size, int) or not isinstance(offset, int) or size < 0 or offset < 0:
        raise CacheCorruptedError(
            f"Cache file {path}: the journal gives a batch offset {offset}, size {size}; {_WAY_OUT}."
        )
    try:
        with open(path, "rb") as handle:
            data = os.pread(handle.fileno(), size, offset)
    except FileNotFoundError as exc:
        raise CacheCorruptedError(f"Cache file {path} is missing; {_WAY_OUT}.") from exc
    if len(data) != size:
        raise CacheCorruptedError(
            f"Cache file {path} ends before the batch at offset {offset} ({size} bytes were committed); {_WAY_OUT}."
        )
    try:
        loaded = pickle.loads(_unframe(data, path, whole_file=False))
    except CacheCorruptedError:
        raise
    except Exception as exc:  # a damaged pickle can raise nearly anything
        raise CacheCorruptedError(f"Cache file {path} is unreadable at offset {offset} ({exc!r}); {_WAY_OUT}.") from exc
    if not isinstance(loaded, list):
        raise CacheCorruptedError(f"Cache file {path} does not hold a batch of rows at offset {offset}; {_WAY_OUT}.")
    return loaded


def _read_parquet(path: Path) -> pa.Table:
    """One of our Parquet files, its checksums verified (``ParquetFile``: a third of
    ``pq.read_table``'s cost on small files, which go through the dataset layer)."""
    with pq.ParquetFile(path, page_checksum_verification=True) as parquet:
        return _checked(parquet.read(), path)


def read_leaf_table(path: Path, size: int | None = None) -> pa.Table:
    """Read a leaf Parquet file as an Arrow table (reported by path when corrupted)."""
    _check_size(path, size)
    try:
        return _read_parquet(path)
    except (OSError, pa.ArrowException) as exc:
        raise CacheCorruptedError(f"Cache file {path} is unreadable ({exc}); {_WAY_OUT}.") from exc


class LeafPart(NamedTuple):
    """A committed leaf batch in its Parquet file: rows ``[first_row, first_row + num_rows)``,
    or the whole file when ``first_row`` is ``None`` (``size``: the file's committed size)."""

    path: Path
    size: int | None = None
    first_row: int | None = None
    num_rows: int | None = None


def leaf_parts(root: Path, records: Iterable[BatchRecord]) -> list[LeafPart]:
    """The Parquet parts of a leaf's committed ``records`` (in the given order; empty batches have none)."""
    return [
        LeafPart(root / r.file, r.size, r.first_row, r.num_rows)
        for r in records
        if r.file is not None and r.file.endswith(".parquet")
    ]


class LeafRun(NamedTuple):
    """Consecutive parts in one file: read it once, then take ``slices`` (``(start, rows)``; ``None``: all of it)."""

    path: Path
    size: int | None
    slices: list[tuple[int, int] | None]


def leaf_runs(parts: Iterable[LeafPart]) -> list[LeafRun]:
    """``parts`` grouped into runs of one file each, adjoining slices merged (one slice per run of a
    batch per file, or per group written at once)."""
    runs: list[LeafRun] = []
    for part in parts:
        piece = None if part.first_row is None else (part.first_row, part.num_rows or 0)
        last = runs[-1] if runs else None
        if last is None or last.path != part.path or piece is None or last.slices[-1] is None:
            runs.append(LeafRun(part.path, part.size, [piece]))
            continue
        start, rows = last.slices[-1]
        if start + rows == piece[0]:
            last.slices[-1] = (start, rows + piece[1])
        else:
            last.slices.append(piece)
    return runs


def read_leaf_run(run: LeafRun, table: pa.Table | None = None) -> Iterator[pa.Table]:
    """The tables of a run's slices, its file read once (a slice past the file's end is reported).

    ``table``: the file as already read.
    """
    table = read_leaf_table(run.path, run.size) if table is None else table
    for piece in run.slices:
        if piece is None:
            yield table
            continue
        start, rows = piece
        if start < 0 or rows < 0 or start + rows > table.num_rows:
            raise CacheCorruptedError(
                f"Cache file {run.path} holds {table.num_rows} rows; the journal counts rows {start}..{start + rows - 1} "
                f"in it; {_WAY_OUT}."
            )
        yield table.slice(start, rows)


def read_leaf_part(part: LeafPart, table: pa.Table | None = None) -> pa.Table:
    """One committed leaf batch's rows (``table``: its file as already read)."""
    piece = None if part.first_row is None else (part.first_row, part.num_rows or 0)
    return next(read_leaf_run(LeafRun(part.path, part.size, [piece]), table))
