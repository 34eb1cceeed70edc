"""``LoadDataFromDisk`` and ``LoadDataFromHub``: rows of a ``datasets.Dataset``.

Both open an Arrow-backed, memory-mapped dataset, so a resumed run slices from its row offset
without reading the rows before it. The dataset is opened lazily (columns and row count are
needed to validate the pipeline) and reopened in the worker rather than pickled. The signature
covers the input: every file of a saved folder (path, size, mtime), or the fingerprint of the
Hub dataset as found in the local Hugging Face cache.
"""

from __future__ import annotations

from abc import abstractmethod
from pathlib import Path
from typing import Any, Union

from pydantic import Field, PrivateAttr

from distil_dagster.errors import DistilDagsterError
from distil_dagster.mixins.runtime_parameters import OptionalRuntimeParameter, RuntimeParameter
from distil_dagster.steps.base import GeneratorStep
from distil_dagster.steps.generators.data import row_ranges
from distil_dagster.steps.generators.file_system import DataFilesNotFoundError
from distil_dagster.steps.typing import GeneratorStepOutput

__all__ = ["HubDatasetUnavailableError", "LoadDataFromDisk", "LoadDataFromHub"]


class HubDatasetUnavailableError(DistilDagsterError, ConnectionError):
    """A Hub dataset could not be loaded (offline, unreachable or unknown) and is not cached locally."""


class _DatasetLoader(GeneratorStep):
    """A generator over the rows of a ``datasets.Dataset`` opened by ``open_dataset``."""

    num_examples: OptionalRuntimeParameter[int] = Field(default=None, description="Load at most this many rows.")

    _dataset: Any = PrivateAttr(default=None)

    @abstractmethod
    def open_dataset(self) -> Any:
        """Open the ``datasets.Dataset`` (raise a clear error naming the step if it cannot be)."""

    def _ready(self) -> bool:
        """Whether the required runtime parameters are set (else columns are not known yet)."""
        return not self.missing_runtime_parameters()

    def dataset(self) -> Any:
        """The dataset, opened on first use."""
        if self._dataset is None:
            self._dataset = self.open_dataset()
        return self._dataset

    def __getstate__(self) -> dict[Any, Any]:
        state: dict[Any, Any] = super().__getstate__()
        state["__pydantic_private__"] = {**state["__pydantic_private__"], "_dataset": None}
        return state

    def load(self) -> None:
        super().load()
        self.dataset()

    @property
    def outputs(self) -> list[str]:
        return list(self.dataset().column_names) if self._ready() else []

    def total_rows(self) -> int | None:
        if not self._ready():
            return None
        rows = len(self.dataset())
        return rows if self.num_examples is None else min(rows, self.num_examples)

    def process(self, offset: int = 0) -> GeneratorStepOutput:
        """Yield rows ``offset..`` of the dataset, ``batch_size`` at a time (slices, no re-read)."""
        dataset = self.dataset()
        for start, end, last in row_ranges(offset, self.total_rows() or 0, self.batch_size or 50):
            columns = dataset[start:end] if end > start else {}
            yield [dict(zip(columns, values)) for values in zip(*columns.values())], last


def _is_saved_dataset(folder: Path) -> bool:
    """``folder`` holds a ``save_to_disk`` Dataset or DatasetDict (not a Distiset's ``distiset_configs``)."""
    return (folder / "dataset_dict.json").is_file() or (folder / "state.json").is_file()


class LoadDataFromDisk(_DatasetLoader):
    """Load a dataset saved with ``Dataset.save_to_disk`` / ``DatasetDict.save_to_disk``, or a Distiset.

    Attributes:
        dataset_path: the saved folder.
        is_distiset: the folder is a saved ``Distiset`` (one sub-folder per config).
        config: the Distiset config to load (default ``default``).
        split: the split to load when the folder holds a ``DatasetDict``.
        keep_in_memory: copy the dataset into memory instead of memory-mapping it.
    """

    dataset_path: RuntimeParameter[Union[str, Path]] = Field(default=None, description="The saved dataset folder.")
    is_distiset: RuntimeParameter[bool] = Field(default=False, description="Whether the folder is a saved Distiset.")
    config: OptionalRuntimeParameter[str] = Field(default=None, description="The Distiset config (default 'default').")
    split: OptionalRuntimeParameter[str] = Field(default="train", description="The split to load.")
    keep_in_memory: bool | None = None

    def _folder(self) -> Path:
        root = Path(str(self.dataset_path)).expanduser()
        folder = root / (self.config or "default") if self.is_distiset else root
        if not folder.is_dir():
            found = sorted(p.name for p in root.iterdir() if _is_saved_dataset(p)) if root.is_dir() else None
            hint = f"; its configs are {found}" if found is not None else ""
            raise DataFilesNotFoundError(f"Step '{self.name}': dataset folder {folder} does not exist{hint}.")
        return folder

    def open_dataset(self) -> Any:
        from datasets import DatasetDict, load_from_disk

        folder = self._folder()
        loaded = load_from_disk(str(folder), keep_in_memory=self.keep_in_memory)
        if isinstance(loaded, DatasetDict):
            split = self.split or "train"
            if split not in loaded:
                raise ValueError(f"Step '{self.name}': {folder} has no split '{split}'; its splits are {list(loaded)}.")
            return loaded[split]
        return loaded

    def signature_extra(self) -> dict[str, Any]:
        """Every file of the folder: relative path, size and mtime."""
        if not self._ready():
            return {}
        folder = self._folder()
        files = sorted(p for p in folder.rglob("*") if p.is_file())
        stats = [[str(p.relative_to(folder)), p.stat().st_size, p.stat().st_mtime_ns] for p in files]
        return {"dataset_files": [str(folder.resolve()), stats]}


class LoadDataFromHub(_DatasetLoader):
    """Load a dataset from the Hugging Face Hub (or, offline, from the local Hugging Face cache).

    Attributes:
        repo_id: the dataset repository, e.g. ``"org/name"``.
        split: the split to load.
        config: the dataset configuration, when it has several.
        revision: a branch, tag or commit of the repository.
        streaming: accepted for distilabel compatibility; the dataset is always memory-mapped.
    """

    repo_id: RuntimeParameter[str] = Field(default=None, description="The Hugging Face Hub dataset repository.")
    split: RuntimeParameter[str] = Field(default="train", description="The split to load.")
    config: OptionalRuntimeParameter[str] = Field(default=None, description="The dataset configuration.")
    revision: OptionalRuntimeParameter[str] = Field(default=None, description="A branch, tag or commit.")
    streaming: RuntimeParameter[bool] = Field(
        default=False, description="Accepted for distilabel compatibility; the dataset is always memory-mapped."
    )

    def open_dataset(self) -> Any:
        import datasets

        try:
            return datasets.load_dataset(self.repo_id, self.config, split=self.split, revision=self.revision)
        except Exception as exc:  # any failure: explain where the dataset was looked for
            offline = bool(datasets.config.HF_HUB_OFFLINE)
            why = (
                "the machine is offline (HF_HUB_OFFLINE=1)"
                if offline
                else "the Hub could not be reached or has no such dataset"
            )
            raise HubDatasetUnavailableError(
                f"Step '{self.name}': cannot load dataset '{self.repo_id}' (config {self.config!r}, split "
                f"{self.split!r}) from the Hugging Face Hub: {why}, and it is not in the local Hugging Face cache "
                f"({datasets.config.HF_DATASETS_CACHE}). Load it once while online, or save it and use "
                f"LoadDataFromDisk / LoadDataFromFileSystem. Cause: {type(exc).__name__}: {exc}"
            ) from exc

    def signature_extra(self) -> dict[str, Any]:
        """The fingerprint of the dataset found (a new revision is a new signature)."""
        return {"dataset_fingerprint": getattr(self.dataset(), "_fingerprint", None)} if self._ready() else {}
