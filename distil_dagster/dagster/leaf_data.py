"""A leaf step's data in the cache, read without disturbing a running engine.

A leaf op outputs a :class:`LeafOutput`: a reference to its committed batches (journal records)
in the signature folder, not rows. The IO manager and the asset checks read Parquet metadata
and the commit journal through this module. The journal is parsed read-only here (a torn last
line is skipped, never cut off): the engine may be appending to it for other steps.

For downstream assets the batches are written once into one Arrow stream file,
``<signature folder>/dagster/<leaf>.<fingerprint>.arrow``, which ``datasets.Dataset.from_file``
and ``pyarrow`` memory-map. The fingerprint covers the committed files, so a recomputed leaf
never reuses an old file. The engine does not touch ``dagster/`` (it owns ``data/`` and ``steps/``).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from datasets import Dataset

from distil_dagster.cache.atomic import atomic_write, make_private_dirs
from distil_dagster.cache.batch_store import read_leaf_table
from distil_dagster.cache.journal import BatchRecord, CommitJournal, is_complete
from distil_dagster.cache.layout import CacheLayout
from distil_dagster.errors import CacheCorruptedError

__all__ = ["LeafOutput", "arrow_file", "leaf_output", "read_committed"]

_METADATA_COLUMN = "distilabel_metadata"

Committed = dict[str, dict[int, BatchRecord]]


def read_committed(root: Path) -> Committed:
    """The journal's committed records, by step and seq_no (read-only: safe while a run appends)."""
    return CommitJournal(CacheLayout(root).journal).read()


@dataclass(frozen=True)
class LeafOutput:
    """The committed batches of a leaf step in a signature folder.

    Attributes:
        step: the leaf step.
        root: the signature folder.
        records: its committed batches, in seq order.
        enable_metadata: keep the ``distilabel_metadata`` column (as ``Pipeline.enable_metadata``).
    """

    step: str
    root: Path
    records: tuple[BatchRecord, ...]
    enable_metadata: bool = False

    @property
    def signature(self) -> str:
        return self.root.name

    @property
    def data_dir(self) -> Path:
        return CacheLayout(self.root).data_dir / self.step

    @property
    def files(self) -> list[tuple[Path, int | None]]:
        return [(self.root / r.file, r.size) for r in self.records if r.file]

    @property
    def committed_rows(self) -> int:
        return sum(r.num_rows for r in self.records)

    @property
    def failed_rows(self) -> int:
        return sum(r.failed_rows for r in self.records)

    def file_rows(self) -> list[int]:
        """Rows of each Parquet file, from its footer (no data read)."""
        return [_parquet_metadata(path).num_rows for path, _ in self.files]

    def schema(self) -> pa.Schema:
        """The unified schema of every batch (``None`` in one batch, ``str`` in the next gives ``str``)."""
        schemas = [_parquet_metadata(path).schema.to_arrow_schema() for path, _ in self.files]
        if not schemas:
            return pa.schema([])
        try:
            schema = pa.unify_schemas(schemas, promote_options="permissive")
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            raise CacheCorruptedError(
                f"Batches of leaf '{self.step}' in {self.data_dir} cannot be unified: {exc}."
            ) from exc
        return _visible(schema, self.enable_metadata)

    def preview(self, limit: int) -> list[dict[str, Any]]:
        """The first ``limit`` rows."""
        rows: list[dict[str, Any]] = []
        for path, size in self.files:
            if len(rows) >= limit:
                break
            table = read_leaf_table(path, size).slice(0, limit - len(rows))
            rows.extend(table.select(_visible(table.schema, self.enable_metadata).names).to_pylist())
        return rows


def _parquet_metadata(path: Path) -> pq.FileMetaData:
    try:
        return pq.read_metadata(path)
    except (OSError, pa.ArrowException) as exc:
        raise CacheCorruptedError(f"Cache file {path} is unreadable ({exc}); rematerialize to recompute it.") from exc


def _visible(schema: pa.Schema, enable_metadata: bool) -> pa.Schema:
    if enable_metadata or _METADATA_COLUMN not in schema.names:
        return schema
    return schema.remove(schema.get_field_index(_METADATA_COLUMN))


def leaf_output(root: Path, step: str, enable_metadata: bool = False) -> LeafOutput:
    """The reference to ``step``'s committed batches in ``root`` (read from the journal)."""
    records = read_committed(root).get(step, {})
    if not is_complete(records):
        raise CacheCorruptedError(
            f"Leaf step '{step}' has not finished in {root} (no last batch in its commit journal); "
            "materialize the asset first."
        )
    return LeafOutput(step, root, tuple(r for _, r in sorted(records.items())), enable_metadata)


def _conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    columns = []
    for column in schema:
        if column.name in table.column_names:
            columns.append(table.column(column.name).cast(column.type))
        else:
            columns.append(pa.nulls(table.num_rows, column.type))
    return pa.Table.from_arrays(columns, schema=schema)


def arrow_file(output: LeafOutput) -> Path:
    """An Arrow stream file with every row of the leaf, written once per set of committed files."""
    fingerprint = hashlib.sha1(repr([(p.name, s) for p, s in output.files]).encode()).hexdigest()[:16]
    folder = output.root / "dagster"
    path = folder / f"{output.step}.{fingerprint}.arrow"
    if path.exists():
        return path
    make_private_dirs(folder)
    schema = output.schema()

    def write(handle: Any) -> None:
        with pa.ipc.new_stream(handle, schema) as writer:
            for file, size in output.files:  # one batch in memory at a time
                writer.write_table(_conform(read_leaf_table(file, size), schema))

    atomic_write(path, write, False)
    for old in folder.glob(f"{output.step}.*.arrow"):
        if old != path:
            old.unlink(missing_ok=True)
    return path


def open_dataset(path: Path) -> Dataset:
    """The Arrow stream file as a memory-mapped ``datasets.Dataset``."""
    return Dataset.from_file(str(path), in_memory=False)


def open_table(path: Path) -> pa.Table:
    """The Arrow stream file as a memory-mapped ``pyarrow.Table``."""
    with pa.memory_map(str(path)) as source:
        return pa.ipc.open_stream(source).read_all()
