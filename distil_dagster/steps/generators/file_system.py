"""``LoadDataFromFileSystem``: rows from JSON Lines, JSON, Parquet or CSV files (paths, folders, globs).

Paths are local paths or fsspec URLs (``file://``, ``s3://``, ``gcs://``, ...), opened with the
step's ``storage_options``. Files are read in sorted order, one after the other, and batches span
file boundaries. Row counts and columns are read once per file version and kept with the step, so
a resumed run skips whole files by their counts, whole Parquet row groups by their metadata, and
JSON Lines without parsing the skipped lines; only CSV and JSON-array files are parsed whole.
The signature covers every file's path, size and version (its mtime for a local file; for other
filesystems a hash of what the listing tells of the file, such as its ETag or modification time):
editing a file invalidates the cache.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import itertools
import json
import os
from collections.abc import Generator, Iterator
from pathlib import Path, PurePosixPath
from typing import Any, ClassVar, Literal, NamedTuple, Union

from pydantic import Field, PrivateAttr, SecretStr, field_validator

from distil_dagster.errors import DistilDagsterError
from distil_dagster.mixins.runtime_parameters import OptionalRuntimeParameter, RuntimeParameter
from distil_dagster.steps.base import GeneratorStep
from distil_dagster.steps.typing import GeneratorStepOutput

__all__ = ["DataFilesNotFoundError", "LoadDataFromFileSystem", "batches_of"]

FileType = Literal["jsonl", "json", "parquet", "csv"]
_SUFFIXES: dict[str, FileType] = {".jsonl": "jsonl", ".json": "json", ".parquet": "parquet", ".csv": "csv"}
Rows = list[dict[str, Any]]
_SPLIT = "train"  # files given as data files make one split, as in ``datasets.load_dataset``
_CONFIG = "default"


class DataFilesNotFoundError(DistilDagsterError, FileNotFoundError):
    """A loader's input files or folder do not exist; the message names the step and the path."""


class FileFacts(NamedTuple):
    """What a loader knows of one file version: its identity, row count and columns.

    ``path`` is the absolute local path, or the URL of a file of another filesystem; ``version``
    is the local file's mtime in nanoseconds, or a hash of the other filesystem's file info.
    """

    path: str
    size: int
    version: int | str
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


def _is_local(fs: Any) -> bool:
    from fsspec.implementations.local import LocalFileSystem  # imported on use: workers import this module

    return isinstance(fs, LocalFileSystem)


def _url_to_fs(url: str, **options: Any) -> tuple[Any, str]:
    """The fsspec filesystem of ``url`` and the path in it (fsspec is imported on first use)."""
    import fsspec

    fs, path = fsspec.core.url_to_fs(url, **options)
    return fs, path


@contextlib.contextmanager
def _binary(fs: Any, path: str) -> Iterator[Any]:
    """What pyarrow reads ``path`` from: the local path itself, else an open binary file."""
    if _is_local(fs):
        yield path
    else:
        with fs.open(path, "rb") as handle:
            yield handle


def _json_lines(fs: Any, path: str) -> Iterator[str]:
    with fs.open(path, "r", encoding="utf-8") as handle:
        yield from (line for line in handle if line.strip())


def _is_json_array(fs: Any, path: str) -> bool:
    with fs.open(path, "r", encoding="utf-8") as handle:
        head = handle.read(4096).lstrip()
    return bool(head.startswith("["))


def _json_array(fs: Any, path: str) -> list[dict[str, Any]]:
    with fs.open(path, "r", encoding="utf-8") as handle:
        data: list[dict[str, Any]] = json.loads(handle.read())
    return data


def _read_facts(fs: Any, path: str, filetype: FileType) -> tuple[int, tuple[str, ...]]:
    """Row count and columns of one file."""
    if filetype == "parquet":
        import pyarrow.parquet as pq

        with _binary(fs, path) as source:
            parquet = pq.ParquetFile(source)
            return parquet.metadata.num_rows, tuple(parquet.schema_arrow.names)
    if filetype == "csv":
        import pyarrow.csv as pcsv

        with _binary(fs, path) as source:
            table = pcsv.read_csv(source)
        return table.num_rows, tuple(table.column_names)
    if filetype == "json" and _is_json_array(fs, path):
        data = _json_array(fs, path)
        return len(data), tuple(data[0]) if data else ()
    count, first = 0, None
    for line in _json_lines(fs, path):
        first = first if first is not None else json.loads(line)
        count += 1
    return count, tuple(first or ())


def _read_rows(fs: Any, path: str, filetype: FileType, skip: int) -> Iterator[dict[str, Any]]:
    """The rows of one file from row ``skip`` on."""
    if filetype == "parquet":
        import pyarrow.parquet as pq

        with _binary(fs, path) as source:
            parquet = pq.ParquetFile(source)
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

        with _binary(fs, path) as source:
            table = pcsv.read_csv(source)
        for batch in table.slice(skip).to_batches():
            yield from batch.to_pylist()
    elif filetype == "json" and _is_json_array(fs, path):
        yield from _json_array(fs, path)[skip:]
    else:
        yield from (json.loads(line) for line in itertools.islice(_json_lines(fs, path), skip, None))


class LoadDataFromFileSystem(GeneratorStep):
    """Load rows from files: one path, a folder, a glob (``data/*.jsonl``, ``**``) or a list, local
    or on any fsspec filesystem (``s3://bucket/data/*.parquet`` with ``storage_options``).

    Attributes:
        data_files: the files (paths, folders, glob patterns or fsspec URLs).
        filetype: ``jsonl``, ``json``, ``parquet`` or ``csv`` (default: from each file's suffix).
        num_examples: load at most this many rows (of the rows ``split`` selects).
        split: ``train`` (the files make one split, named ``train``), or a slice of it in the
            Hugging Face ``datasets`` syntax: ``train[:100]``, ``train[10:20]``, ``train[50%:]``,
            ``train[:10]+train[-10:]``. Other split names are refused.
        config: ``default`` or ``None``: the files make one configuration. Accepted for
            distilabel compatibility; it does not change the rows.
        storage_options: options of the fsspec filesystem the files are listed and read with
            (credentials, endpoint, ...). A value given as a ``SecretStr`` is passed unwrapped to
            the filesystem and never written to the signature or ``pipeline.yaml``.
        streaming: accepted for distilabel compatibility; files are always read incrementally.

    Examples:
        >>> loader = LoadDataFromFileSystem(data_files="data/*.jsonl")  # doctest: +SKIP
        >>> loader = LoadDataFromFileSystem(  # doctest: +SKIP
        ...     data_files="s3://bucket/data.parquet", storage_options={"anon": True}, split="train[:1000]"
        ... )
    """

    data_files: RuntimeParameter[Union[str, Path, list[Union[str, Path]]]] = Field(
        default=None, description="The files to load: paths, folders, glob patterns or fsspec URLs."
    )
    filetype: OptionalRuntimeParameter[FileType] = Field(
        default=None, description="jsonl, json, parquet or csv (default: from each file's suffix)."
    )
    num_examples: OptionalRuntimeParameter[int] = Field(default=None, description="Load at most this many rows.")
    split: RuntimeParameter[str] = Field(
        default=_SPLIT, description="'train' (the files make one split) or a slice of it, such as 'train[:100]'."
    )
    config: OptionalRuntimeParameter[str] = Field(
        default=None, description="'default' or None: the files make one configuration (distilabel compatibility)."
    )
    storage_options: dict[str, Any] | None = Field(
        default=None, description="Options of the fsspec filesystem the files are read with."
    )
    streaming: RuntimeParameter[bool] = Field(
        default=False, description="Accepted for distilabel compatibility; files are always read incrementally."
    )

    signature_exclude: ClassVar[frozenset[str]] = frozenset({"config"})  # its only value does not change the rows

    _facts: dict[tuple[str, int, int | str], FileFacts] = PrivateAttr(default_factory=dict)

    @field_validator("split")
    @classmethod
    def _check_split(cls, value: str | None) -> str | None:
        if value is not None and value != _SPLIT:
            _split_ranges(value, 0, f"split {value!r}")
        return value

    @field_validator("config")
    @classmethod
    def _check_config(cls, value: str | None) -> str | None:
        if value not in (None, _CONFIG):
            raise ValueError(f"config {value!r}: the files make one configuration, {_CONFIG!r} (or leave it None).")
        return value

    def _options(self) -> dict[str, Any]:
        """``storage_options`` for fsspec, secrets unwrapped."""
        return {
            key: value.get_secret_value() if isinstance(value, SecretStr) else value
            for key, value in (self.storage_options or {}).items()
        }

    def _filetype(self, path: str) -> FileType:
        if self.filetype is not None:
            return self.filetype
        kind = _SUFFIXES.get(PurePosixPath(path).suffix.lower())
        if kind is None:
            raise ValueError(
                f"Step '{self.name}': cannot tell the format of {path} from its suffix; set filetype to one of "
                f"{sorted(set(_SUFFIXES.values()))}."
            )
        return kind

    def _paths(self) -> list[str]:
        """The files of ``data_files`` (local absolute paths or URLs), in order, each once."""
        entries = self.data_files if isinstance(self.data_files, list) else [self.data_files]
        options = self._options()
        found: dict[str, None] = {}
        missing = []
        for entry in entries:
            text = os.path.expanduser(str(entry))
            fs, path = _url_to_fs(text, **options)
            if glob.has_magic(path):
                listed = fs.glob(path, detail=True)
                matches = sorted(p for p, info in listed.items() if info.get("type") == "file")
            elif fs.isdir(path):
                wanted = {s for s, k in _SUFFIXES.items() if self.filetype in (None, k)}
                matches = sorted(p for p in fs.find(path) if PurePosixPath(p).suffix.lower() in wanted)
            else:
                matches = [path] if fs.isfile(path) else []
            found.update(
                dict.fromkeys(os.path.realpath(p) if _is_local(fs) else fs.unstrip_protocol(p) for p in matches)
            )
            if not matches:
                missing.append(text)
        if missing:
            raise DataFilesNotFoundError(
                f"Step '{self.name}': no data file found for {missing} (relative paths start at {Path.cwd()})."
            )
        return list(found)

    def _identity(self, fs: Any, path: str, located: str) -> tuple[str, int, int | str]:
        """``(path, size, version)`` of one file: what tells one version of it from another."""
        if _is_local(fs):
            stat = os.stat(path)
            return located, stat.st_size, stat.st_mtime_ns
        info = fs.info(path)
        digest = hashlib.sha1(json.dumps(info, sort_keys=True, default=str).encode("utf-8")).hexdigest()
        return located, int(info.get("size") or 0), digest

    def files(self) -> list[FileFacts]:
        """Path, size, version, row count and columns of every file (counts read once per version)."""
        if self.data_files is None:
            return []
        options = self._options()
        facts = []
        for located in self._paths():
            fs, path = _url_to_fs(located, **options)
            key = self._identity(fs, path, located)
            if key not in self._facts:
                self._facts[key] = FileFacts(*key, *_read_facts(fs, path, self._filetype(path)))
            facts.append(self._facts[key])
        return facts

    @property
    def outputs(self) -> list[str]:
        columns: dict[str, None] = {}
        for facts in self.files():
            columns.update(dict.fromkeys(facts.columns))
        return list(columns)

    def _ranges(self, files: list[FileFacts]) -> list[tuple[int, int]]:
        """The ``(start, stop)`` row ranges ``split`` selects from the rows of ``files``."""
        rows = sum(f.rows for f in files)
        if self.split is None or self.split == _SPLIT:
            return [(0, rows)]
        return _split_ranges(self.split, rows, f"Step '{self.name}': split {self.split!r}")

    def total_rows(self) -> int | None:
        total = sum(stop - start for start, stop in self._ranges(self.files()))
        return total if self.num_examples is None else min(total, self.num_examples)

    def signature_extra(self) -> dict[str, Any]:
        """Every input file's path, size and version (a changed file is a new signature)."""
        return {"data_files_stat": [[f.path, f.size, f.version] for f in self.files()]}

    def process(self, offset: int = 0) -> GeneratorStepOutput:
        """Yield the rows from ``offset`` on, ``batch_size`` at a time, skipping whole files."""
        files = self.files()
        total = self.total_rows() or 0
        rows = self._selected_rows(files, self._ranges(files), offset)
        yield from batches_of(rows, offset, total, self.batch_size or 50)

    def _selected_rows(
        self, files: list[FileFacts], ranges: list[tuple[int, int]], offset: int
    ) -> Iterator[dict[str, Any]]:
        """The rows of ``ranges`` (of the rows of ``files``) from row ``offset`` of the selection on."""
        for start, stop in ranges:
            if offset >= stop - start:
                offset -= stop - start
                continue
            with contextlib.closing(self._rows_from(files, start + offset)) as rows:
                yield from itertools.islice(rows, stop - start - offset)
            offset = 0

    def _rows_from(self, files: list[FileFacts], offset: int) -> Generator[dict[str, Any], None, None]:
        options = self._options()
        for facts in files:
            if offset >= facts.rows:
                offset -= facts.rows
                continue
            fs, path = _url_to_fs(facts.path, **options)
            yield from _read_rows(fs, path, self._filetype(path), offset)
            offset = 0


def _split_ranges(split: str, rows: int, what: str) -> list[tuple[int, int]]:
    """The ``(start, stop)`` row ranges of ``split`` (``train`` or slices of it) over ``rows`` rows."""
    import datasets

    try:
        instructions = datasets.ReadInstruction.from_spec(split).to_absolute({_SPLIT: rows})
    except (ValueError, AssertionError) as exc:
        raise ValueError(
            f"{what}: the files make one split, {_SPLIT!r}; give it or a slice of it, such as 'train[:100]', "
            f"'train[10%:20%]' or 'train[:10]+train[-10:]' ({exc})."
        ) from None
    return [(int(i.from_), int(i.to)) for i in instructions]
