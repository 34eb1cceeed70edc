"""``LoadDataFromFileSystem``: rows from JSON Lines, JSON, Parquet or CSV files (paths, folders, globs).

Files are read in sorted order, one after the other, and batches span file boundaries. Row counts
and columns are read once per file version (path, size, mtime) and kept with the step, so a
resumed run skips whole files by their counts, whole Parquet row groups by their metadata, and
JSON Lines without parsing the skipped lines; only CSV and JSON-array files are parsed whole.
The signature covers every file's path, size and mtime: editing a file invalidates the cache.
"""

from __future__ import annotations

import glob
import itertools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal, NamedTuple, Union

from pydantic import Field, PrivateAttr

from distil_dagster.errors import DistilDagsterError
from distil_dagster.mixins.runtime_parameters import OptionalRuntimeParameter, RuntimeParameter
from distil_dagster.steps.base import GeneratorStep
from distil_dagster.steps.typing import GeneratorStepOutput

__all__ = ["DataFilesNotFoundError", "LoadDataFromFileSystem", "batches_of"]

FileType = Literal["jsonl", "json", "parquet", "csv"]
_SUFFIXES: dict[str, FileType] = {".jsonl": "jsonl", ".json": "json", ".parquet": "parquet", ".csv": "csv"}
Rows = list[dict[str, Any]]


class DataFilesNotFoundError(DistilDagsterError, FileNotFoundError):
    """A loader's input files or folder do not exist; the message names the step and the path."""


class FileFacts(NamedTuple):
    """What a loader knows of one file version: its identity, row count and columns."""

    path: str
    size: int
    mtime_ns: int
    rows: int
    columns: tuple[str, ...]


def batches_of(rows: Iterator[dict[str, Any]], emitted: int, total: int, size: int) -> GeneratorStepOutput:
    """Yield ``(batch, is_last)`` with ``size`` rows each, rows ``emitted..total`` of the data."""
    if emitted >= total:
        yield [], True
        return
    batch: Rows = []
    for row in rows:
        batch.append(row)
        if len(batch) == size or emitted + len(batch) >= total:
            emitted += len(batch)
            yield batch, emitted >= total
            batch = []
            if emitted >= total:
                return
    yield batch, True  # the files held fewer rows than counted (changed while running)


def _json_lines(path: Path) -> Iterator[str]:
    with path.open(encoding="utf-8") as handle:
        yield from (line for line in handle if line.strip())


def _is_json_array(path: Path) -> bool:
    with path.open(encoding="utf-8") as handle:
        head = handle.read(4096).lstrip()
    return head.startswith("[")


def _read_facts(path: Path, filetype: FileType) -> tuple[int, tuple[str, ...]]:
    """Row count and columns of one file."""
    if filetype == "parquet":
        import pyarrow.parquet as pq

        parquet = pq.ParquetFile(path)
        return parquet.metadata.num_rows, tuple(parquet.schema_arrow.names)
    if filetype == "csv":
        import pyarrow.csv as pcsv

        table = pcsv.read_csv(path)
        return table.num_rows, tuple(table.column_names)
    if filetype == "json" and _is_json_array(path):
        data = json.loads(path.read_text(encoding="utf-8"))
        return len(data), tuple(data[0]) if data else ()
    count, first = 0, None
    for line in _json_lines(path):
        first = first if first is not None else json.loads(line)
        count += 1
    return count, tuple(first or ())


def _read_rows(path: Path, filetype: FileType, skip: int) -> Iterator[dict[str, Any]]:
    """The rows of one file from row ``skip`` on."""
    if filetype == "parquet":
        import pyarrow.parquet as pq

        parquet = pq.ParquetFile(path)
        groups: list[int] = []
        for group in range(parquet.num_row_groups):
            count = parquet.metadata.row_group(group).num_rows
            if skip >= count and not groups:
                skip -= count  # the whole row group is before the offset: not read
                continue
            groups.append(group)
        batches = parquet.iter_batches(row_groups=groups) if groups else iter(())
        yield from itertools.islice(itertools.chain.from_iterable(b.to_pylist() for b in batches), skip, None)
    elif filetype == "csv":
        import pyarrow.csv as pcsv

        for batch in pcsv.read_csv(path).slice(skip).to_batches():
            yield from batch.to_pylist()
    elif filetype == "json" and _is_json_array(path):
        yield from json.loads(path.read_text(encoding="utf-8"))[skip:]
    else:
        yield from (json.loads(line) for line in itertools.islice(_json_lines(path), skip, None))


class LoadDataFromFileSystem(GeneratorStep):
    """Load rows from local files: one path, a folder, a glob (``data/*.jsonl``, ``**``) or a list.

    Attributes:
        data_files: the files (paths, folders or glob patterns).
        filetype: ``jsonl``, ``json``, ``parquet`` or ``csv`` (default: from each file's suffix).
        num_examples: load at most this many rows.
        split: only ``train`` (local files hold one split), kept for distilabel compatibility.
        streaming: accepted for distilabel compatibility; files are always read incrementally.

    Examples:
        >>> loader = LoadDataFromFileSystem(data_files="data/*.jsonl")  # doctest: +SKIP
    """

    data_files: RuntimeParameter[Union[str, Path, list[Union[str, Path]]]] = Field(
        default=None, description="The files to load: paths, folders or glob patterns."
    )
    filetype: OptionalRuntimeParameter[FileType] = Field(
        default=None, description="jsonl, json, parquet or csv (default: from each file's suffix)."
    )
    num_examples: OptionalRuntimeParameter[int] = Field(default=None, description="Load at most this many rows.")
    split: Literal["train"] = "train"
    streaming: RuntimeParameter[bool] = Field(
        default=False, description="Accepted for distilabel compatibility; files are always read incrementally."
    )

    _facts: dict[tuple[str, int, int], FileFacts] = PrivateAttr(default_factory=dict)

    def _filetype(self, path: Path) -> FileType:
        if self.filetype is not None:
            return self.filetype
        kind = _SUFFIXES.get(path.suffix.lower())
        if kind is None:
            raise ValueError(
                f"Step '{self.name}': cannot tell the format of {path} from its suffix; set filetype to one of "
                f"{sorted(set(_SUFFIXES.values()))}."
            )
        return kind

    def _paths(self) -> list[Path]:
        """The files of ``data_files``, in order, each once."""
        entries = self.data_files if isinstance(self.data_files, list) else [self.data_files]
        found: dict[Path, None] = {}
        missing = []
        for entry in entries:
            text = str(Path(str(entry)).expanduser())
            if glob.has_magic(text):
                matches = sorted(Path(p) for p in glob.glob(text, recursive=True) if Path(p).is_file())
            elif Path(text).is_dir():
                wanted = {s for s, k in _SUFFIXES.items() if self.filetype in (None, k)}
                matches = sorted(p for p in Path(text).rglob("*") if p.is_file() and p.suffix.lower() in wanted)
            else:
                matches = [Path(text)] if Path(text).is_file() else []
            found.update(dict.fromkeys(p.resolve() for p in matches))
            if not matches:
                missing.append(text)
        if missing:
            raise DataFilesNotFoundError(
                f"Step '{self.name}': no data file found for {missing} (relative paths start at {Path.cwd()})."
            )
        return list(found)

    def files(self) -> list[FileFacts]:
        """Path, size, mtime, row count and columns of every file (counts read once per version)."""
        if self.data_files is None:
            return []
        facts = []
        for path in self._paths():
            stat = path.stat()
            key = (str(path), stat.st_size, stat.st_mtime_ns)
            if key not in self._facts:
                self._facts[key] = FileFacts(*key, *_read_facts(path, self._filetype(path)))
            facts.append(self._facts[key])
        return facts

    @property
    def outputs(self) -> list[str]:
        columns: dict[str, None] = {}
        for facts in self.files():
            columns.update(dict.fromkeys(facts.columns))
        return list(columns)

    def total_rows(self) -> int | None:
        total = sum(f.rows for f in self.files())
        return total if self.num_examples is None else min(total, self.num_examples)

    def signature_extra(self) -> dict[str, Any]:
        """Every input file's path, size and mtime (a changed file is a new signature)."""
        return {"data_files_stat": [[f.path, f.size, f.mtime_ns] for f in self.files()]}

    def process(self, offset: int = 0) -> GeneratorStepOutput:
        """Yield the rows from ``offset`` on, ``batch_size`` at a time, skipping whole files."""
        files = self.files()
        total = self.total_rows() or 0
        yield from batches_of(self._rows_from(files, offset), offset, total, self.batch_size or 50)

    def _rows_from(self, files: list[FileFacts], offset: int) -> Iterator[dict[str, Any]]:
        for facts in files:
            if offset >= facts.rows:
                offset -= facts.rows
                continue
            yield from _read_rows(Path(facts.path), self._filetype(Path(facts.path)), offset)
            offset = 0
