"""``Distiset``: the dataset a pipeline produces, one ``DatasetDict`` (split ``train``) per leaf.

``create_distiset`` reads the leaf Parquet files of a cache folder into one memory-mapped Arrow
file per leaf (``cache/leaf_arrow.py``). When the folder carries its commit journal, only
committed files are read (a crashed run's stray files never leak in). Schemas that differ across
batches (``None`` in one, ``str`` in the next) are unified.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
from pathlib import Path
from typing import Any

import pyarrow as pa
from datasets import Dataset, DatasetDict, load_from_disk

from distil_dagster.cache.batch_store import LeafPart, leaf_parts, leaf_runs, read_leaf_run
from distil_dagster.cache.journal import CommitJournal
from distil_dagster.cache.leaf_arrow import conform, leaf_arrow_file, leaf_schema

__all__ = ["Distiset", "create_distiset"]

_logger = logging.getLogger("distil_dagster")


class Distiset(dict[str, DatasetDict]):
    """Configs (leaf step names, or ``default`` for a single leaf) mapped to ``DatasetDict``s.

    Attributes:
        pipeline_path: the ``pipeline.yaml`` that produced it, when known.
        log_filename_path: the ``pipeline.log`` of that run, when known.
    """

    pipeline_path: Path | None = None
    log_filename_path: Path | None = None

    def __repr__(self) -> str:
        inner = ",\n".join(f"    {name}: {dd!r}".replace("\n", "\n    ") for name, dd in self.items())
        return f"Distiset({{\n{inner}\n}})"

    def save_to_disk(self, distiset_path: str | os.PathLike[str], **kwargs: Any) -> None:
        """Save every config under ``distiset_path/<config>``, with ``pipeline.yaml`` and ``pipeline.log``."""
        root = Path(distiset_path)
        root.mkdir(parents=True, exist_ok=True)
        for name, dataset_dict in self.items():
            dataset_dict.save_to_disk(str(root / name), **kwargs)
        for source in (self.pipeline_path, self.log_filename_path):
            if source is not None and Path(source).exists():
                shutil.copyfile(source, root / Path(source).name)

    @classmethod
    def load_from_disk(cls, distiset_path: str | os.PathLike[str], **kwargs: Any) -> Distiset:
        """Load a Distiset written by :meth:`save_to_disk`."""
        root = Path(distiset_path)
        distiset = cls()
        for child in sorted(p for p in root.iterdir() if p.is_dir()):
            loaded = load_from_disk(str(child), **kwargs)
            distiset[child.name] = loaded if isinstance(loaded, DatasetDict) else DatasetDict({"train": loaded})
        for attr, filename in (("pipeline_path", "pipeline.yaml"), ("log_filename_path", "pipeline.log")):
            if (root / filename).exists():
                setattr(distiset, attr, root / filename)
        return distiset

    def train_test_split(self, train_size: float, shuffle: bool = True, seed: int | None = None) -> Distiset:
        """Split the ``train`` split of every config into ``train`` and ``test``."""
        for name, dataset_dict in self.items():
            self[name] = dataset_dict["train"].train_test_split(train_size=train_size, shuffle=shuffle, seed=seed)
        return self


def _leaf_files(root: Path, data_dir: Path) -> dict[str, list[LeafPart]]:
    journal = root / "commits.jsonl"
    leaves: dict[str, list[LeafPart]] = {}
    if journal.exists():
        committed = CommitJournal(journal).read()
        for step, records in committed.items():
            files = leaf_parts(root, (r for _, r in sorted(records.items())))
            if (data_dir / step).is_dir() or files:
                leaves[step] = files
        for child in data_dir.iterdir() if data_dir.is_dir() else []:
            if child.is_dir():
                leaves.setdefault(child.name, [])
        return leaves
    for child in sorted(p for p in data_dir.iterdir() if p.is_dir()) if data_dir.is_dir() else []:
        leaves[child.name] = [LeafPart(p) for p in sorted(child.glob("[0-9]*.parquet"))]
    return leaves


def _in_memory(leaf: str, files: list[LeafPart], enable_metadata: bool) -> Dataset:
    """The leaf as an in-memory Dataset (where its Arrow file cannot be written)."""
    schema = leaf_schema(leaf, files, enable_metadata)
    table = pa.concat_tables([conform(t, schema) for run in leaf_runs(files) for t in read_leaf_run(run)])
    fingerprint = hashlib.sha1(repr([(str(p.path), *p[1:]) for p in files]).encode()).hexdigest()
    return Dataset(table, fingerprint=fingerprint)


def _leaf_dataset(root: Path, leaf: str, files: list[LeafPart], enable_metadata: bool, keep_in_memory: bool) -> Dataset:
    try:
        path = leaf_arrow_file(root, leaf, files, enable_metadata)
    except PermissionError:
        _logger.warning("Cannot write the Arrow file of leaf '%s' under %s; building it in memory.", leaf, root)
        return _in_memory(leaf, files, enable_metadata)
    return Dataset.from_file(str(path), in_memory=keep_in_memory)


def create_distiset(
    data_dir: str | os.PathLike[str],
    pipeline_path: str | os.PathLike[str] | None = None,
    log_filename_path: str | os.PathLike[str] | None = None,
    enable_metadata: bool = False,
    keep_in_memory: bool = False,
) -> Distiset:
    """Build a Distiset from a cache folder (the signature folder or its ``data`` folder).

    Args:
        data_dir: the signature folder, or its ``data`` folder holding one folder per leaf.
        pipeline_path: the ``pipeline.yaml`` (default: found next to ``data``).
        log_filename_path: the ``pipeline.log`` (default: found next to ``data``).
        enable_metadata: keep the ``distilabel_metadata`` column.
        keep_in_memory: load the datasets into memory; by default they are memory-mapped from one
            Arrow file per leaf in the cache folder (``arrow/``), so RAM does not grow with rows.
    """
    given = Path(data_dir)
    if (given / "data").is_dir() or (given / "commits.jsonl").exists():
        root, data = given, given / "data"
    else:
        root, data = given.parent, given
    distiset = Distiset()
    for leaf, files in sorted(_leaf_files(root, data).items()):
        if not files:
            _logger.warning("Leaf step '%s' produced no rows; it is left out of the Distiset.", leaf)
            continue
        distiset[leaf] = DatasetDict({"train": _leaf_dataset(root, leaf, files, enable_metadata, keep_in_memory)})
    if len(distiset) == 1:
        only = next(iter(distiset))
        distiset["default"] = distiset.pop(only)
    yaml_path = Path(pipeline_path) if pipeline_path else root / "pipeline.yaml"
    log_path = Path(log_filename_path) if log_filename_path else root / "pipeline.log"
    distiset.pipeline_path = yaml_path if yaml_path.exists() else None
    distiset.log_filename_path = log_path if log_path.exists() else None
    return distiset
