"""``LoadDataFromDataset``: a generator over a ``datasets.Dataset`` (or ``pandas.DataFrame``) held in memory.

``make_generator_step`` builds it for a Dataset or a DataFrame (a DataFrame is converted to a
Dataset once, when the step is created). The Dataset is a field: it travels to worker processes
pickled (an in-memory table by value, a memory-mapped one by its cache file paths).

The signature covers the rows: a SHA-1 of the features and of the Arrow IPC bytes of the rows, in
fixed-size slices with chunks combined and schema metadata dropped, so equal data built twice
hashes alike and any changed value changes the signature. ``Dataset._fingerprint`` is not used: for
a dataset made by ``map`` with a function ``datasets`` cannot hash, it differs on every run, which
would defeat resuming.
"""

from __future__ import annotations

import hashlib
import sys
from typing import Any, ClassVar

from pydantic import Field, PrivateAttr, field_validator

from distil_dagster.steps.generators.huggingface import _DatasetLoader

__all__ = ["LoadDataFromDataset", "dataset_digest", "is_dataframe"]

_HASH_SLICE_ROWS = 10_000


def is_dataframe(value: Any) -> bool:
    """Whether ``value`` is a ``pandas.DataFrame`` (if pandas was never imported, it cannot be one)."""
    pandas = sys.modules.get("pandas")
    return pandas is not None and isinstance(value, pandas.DataFrame)


def dataset_digest(dataset: Any) -> str:
    """SHA-1 of a ``datasets.Dataset``'s features and rows (its indices mapping applied)."""
    import pyarrow as pa

    digest = hashlib.sha1(f"{len(dataset)}|{dataset.features!r}".encode())
    for table in dataset.with_format("arrow").iter(batch_size=_HASH_SLICE_ROWS):
        table = table.replace_schema_metadata(None).combine_chunks()
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
        digest.update(sink.getvalue())
    return digest.hexdigest()


class LoadDataFromDataset(_DatasetLoader):
    """Yield the rows of an in-memory ``datasets.Dataset``, ``batch_size`` at a time.

    Attributes:
        data: the dataset; a ``pandas.DataFrame`` is converted (its index dropped).
    """

    data: Any = Field(description="The datasets.Dataset (or pandas.DataFrame) to yield.")

    signature_exclude: ClassVar[frozenset[str]] = frozenset({"data"})  # its repr shows no values: see signature_extra

    _digest: tuple[Any, str] | None = PrivateAttr(default=None)  # (the dataset hashed, its digest)

    @field_validator("data", mode="before")
    @classmethod
    def _as_dataset(cls, value: Any) -> Any:
        from datasets import Dataset

        if is_dataframe(value):
            return Dataset.from_pandas(value, preserve_index=False)
        if not isinstance(value, Dataset):
            raise ValueError(f"expected a datasets.Dataset or a pandas.DataFrame, got {type(value).__name__}")
        return value

    def open_dataset(self) -> Any:
        return self.data

    def dataset(self) -> Any:
        """The dataset (always ``data``: nothing to open, and a reassigned ``data`` is seen at once)."""
        return self.data

    def signature_extra(self) -> dict[str, Any]:
        """The digest of the dataset's features and rows (computed once per dataset: a Dataset is immutable)."""
        if self._digest is None or self._digest[0] is not self.data:
            self._digest = (self.data, dataset_digest(self.data))
        return {"dataset_sha1": self._digest[1]}
