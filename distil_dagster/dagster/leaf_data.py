"""A leaf step's data in the cache, read without disturbing a running engine.

A leaf op outputs a :class:`LeafOutput`: a reference to its committed batches (journal records)
in the signature folder, not rows. The IO manager and the asset checks read Parquet metadata
and the commit journal through this module. The journal is parsed read-only here (a torn last
line is skipped, never cut off): the engine may be appending to it for other steps.

For downstream assets the batches are written once into one Arrow stream file
(``cache/leaf_arrow.py``, shared with the Distiset), which ``datasets.Dataset.from_file`` and
``pyarrow`` memory-map.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from datasets import Dataset

from distil_dagster.cache.batch_store import LeafPart, leaf_parts, leaf_runs, read_leaf_run
from distil_dagster.cache.journal import BatchRecord, CommitJournal, is_complete
from distil_dagster.cache.layout import CacheLayout
from distil_dagster.cache.leaf_arrow import leaf_arrow_file, leaf_schema, visible_schema
from distil_dagster.errors import CacheCorruptedError

__all__ = ["LeafOutput", "arrow_file", "leaf_output", "read_committed"]

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
    def parts(self) -> list[LeafPart]:
        """Where each non-empty batch's rows are (batches written at once share a file)."""
        return leaf_parts(self.root, self.records)

    @property
    def files(self) -> list[Path]:
        """The Parquet files holding the batches, in batch order."""
        return list(dict.fromkeys(part.path for part in self.parts))

    @property
    def committed_rows(self) -> int:
        return sum(r.num_rows for r in self.records)

    @property
    def failed_rows(self) -> int:
        return sum(r.failed_rows for r in self.records)

    def part_rows(self) -> list[int]:
        """Rows each non-empty batch finds in its file, from the footers (no data read): the whole
        file's, or as many of the rows its commit counts as the file holds."""
        in_file = {path: _parquet_metadata(path).num_rows for path in self.files}
        return [
            in_file[p.path] if p.first_row is None else max(0, min(p.num_rows or 0, in_file[p.path] - p.first_row))
            for p in self.parts
        ]

    def schema(self) -> pa.Schema:
        """The unified schema of every batch (``None`` in one batch, ``str`` in the next gives ``str``)."""
        return leaf_schema(self.step, self.parts, self.enable_metadata)

    def preview(self, limit: int) -> list[dict[str, Any]]:
        """The first ``limit`` rows."""
        rows: list[dict[str, Any]] = []
        for run in leaf_runs(self.parts):
            for table in read_leaf_run(run):
                if len(rows) >= limit:
                    return rows
                table = table.slice(0, limit - len(rows))
                rows.extend(table.select(visible_schema(table.schema, self.enable_metadata).names).to_pylist())
        return rows


def _parquet_metadata(path: Path) -> pq.FileMetaData:
    try:
        return pq.read_metadata(path)
    except (OSError, pa.ArrowException) as exc:
        raise CacheCorruptedError(f"Cache file {path} is unreadable ({exc}); rematerialize to recompute it.") from exc


def leaf_output(root: Path, step: str, enable_metadata: bool = False) -> LeafOutput:
    """The reference to ``step``'s committed batches in ``root`` (read from the journal)."""
    records = read_committed(root).get(step, {})
    if not is_complete(records):
        raise CacheCorruptedError(
            f"Leaf step '{step}' has not finished in {root} (no last batch in its commit journal); "
            "materialize the asset first."
        )
    return LeafOutput(step, root, tuple(r for _, r in sorted(records.items())), enable_metadata)


def arrow_file(output: LeafOutput) -> Path:
    """An Arrow stream file with every row of the leaf, written once per set of committed files."""
    return leaf_arrow_file(output.root, output.step, output.parts, output.enable_metadata)


def open_dataset(path: Path) -> Dataset:
    """The Arrow stream file as a memory-mapped ``datasets.Dataset``."""
    return Dataset.from_file(str(path), in_memory=False)


def open_table(path: Path) -> pa.Table:
    """The Arrow stream file as a memory-mapped ``pyarrow.Table``."""
    with pa.memory_map(str(path)) as source:
        return pa.ipc.open_stream(source).read_all()
