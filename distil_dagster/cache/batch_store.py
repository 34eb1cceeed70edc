"""Reading and writing batch files: Parquet for leaf steps, pickle for intermediate steps.

Intermediate batches are pickled: they round-trip Python rows exactly (mixed types, tuples,
structs with varying keys) so a resumed run feeds downstream steps the very rows the first run
did; they are written by this process or its workers into a user-only folder. Leaf batches are
Parquet, the contract ``create_distiset`` reads. Every write is atomic (temp name + rename).
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from distil_dagster.cache.atomic import atomic_write, atomic_write_bytes
from distil_dagster.errors import CacheCorruptedError, StepOutputError

__all__ = ["read_leaf_table", "read_rows", "rows_to_table", "write_rows"]

Rows = list[dict[str, Any]]

_WAY_OUT = "run again with use_cache=False, or delete the file to recompute that batch"


def rows_to_table(rows: Rows, step: str) -> pa.Table:
    """Rows as an Arrow table (columns in first-seen order); names the column that cannot convert."""
    first = rows[0].keys()
    columns: dict[str, None] = dict.fromkeys(first)
    for row in rows:
        if row.keys() != first:
            columns.update(dict.fromkeys(row))
    arrays = {}
    for column in columns:
        try:
            arrays[column] = pa.array([row.get(column) for row in rows])
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, OverflowError) as exc:
            raise StepOutputError(
                f"Step '{step}' produced column '{column}' with values that cannot be stored together "
                f"in Parquet ({exc}); make the column's values one type (None is fine)."
            ) from exc
    return pa.table(arrays)


def write_rows(path: Path, rows: Rows, step: str, fsync: bool) -> int:
    """Write a batch atomically (Parquet if ``path`` ends in .parquet); returns the file size."""
    if path.suffix == ".parquet":
        table = rows_to_table(rows, step)
        return atomic_write(path, lambda f: pq.write_table(table, f, compression="snappy"), fsync)
    return atomic_write_bytes(path, pickle.dumps(rows, protocol=pickle.HIGHEST_PROTOCOL), fsync)


def _check_size(path: Path, size: int | None) -> None:
    try:
        actual = path.stat().st_size
    except FileNotFoundError as exc:
        raise CacheCorruptedError(f"Cache file {path} is missing; {_WAY_OUT}.") from exc
    if size is not None and actual != size:
        raise CacheCorruptedError(f"Cache file {path} has {actual} bytes, {size} were committed; {_WAY_OUT}.")


def read_rows(path: Path, size: int | None = None) -> Rows:
    """Read the rows of a committed batch file, checking it against its committed size."""
    _check_size(path, size)
    try:
        if path.suffix == ".parquet":
            rows: Rows = pq.read_table(path).to_pylist()
            return rows
        with open(path, "rb") as handle:
            loaded = pickle.load(handle)
    except (OSError, pickle.UnpicklingError, EOFError, pa.ArrowException, ValueError) as exc:
        raise CacheCorruptedError(f"Cache file {path} is unreadable ({exc}); {_WAY_OUT}.") from exc
    if not isinstance(loaded, list):
        raise CacheCorruptedError(f"Cache file {path} does not hold a batch of rows; {_WAY_OUT}.")
    return loaded


def read_leaf_table(path: Path, size: int | None = None) -> pa.Table:
    """Read a leaf Parquet file as an Arrow table (reported by path when corrupted)."""
    _check_size(path, size)
    try:
        return pq.read_table(path)
    except (OSError, pa.ArrowException) as exc:
        raise CacheCorruptedError(f"Cache file {path} is unreadable ({exc}); {_WAY_OUT}.") from exc
