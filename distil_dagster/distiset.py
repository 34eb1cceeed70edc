"""``Distiset``: the dataset a pipeline produces, one ``DatasetDict`` (split ``train``) per leaf.

``create_distiset`` reads the leaf Parquet files of a cache folder into one memory-mapped Arrow
file per leaf (``cache/leaf_arrow.py``). When the folder carries its commit journal, only
committed files are read (a crashed run's stray files never leak in). Schemas that differ across
batches (``None`` in one, ``str`` in the next) are unified.

A Distiset saves to a folder (``save_to_disk``: one folder per config, the card and the pipeline
files in ``distiset_configs/``, as distilabel lays it out) and pushes to the Hugging Face Hub
(``push_to_hub``: one Hub config per Distiset config, then the card and the pipeline files).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import pyarrow as pa
from datasets import Dataset, DatasetDict, load_from_disk

from distil_dagster.cache.batch_store import LeafPart, leaf_parts, leaf_runs, read_leaf_run
from distil_dagster.cache.journal import CommitJournal
from distil_dagster.cache.layout import CacheLayout
from distil_dagster.cache.leaf_arrow import conform, leaf_arrow_file, leaf_schema
from distil_dagster.distiset_card import card_text
from distil_dagster.errors import DistisetError

__all__ = ["Distiset", "create_distiset"]

#: The folder of a saved Distiset that holds its card, ``pipeline.yaml`` and ``pipeline.log``.
CONFIG_FOLDER = "distiset_configs"

_logger = logging.getLogger("distil_dagster")


class Distiset(dict[str, DatasetDict]):
    """Configs (leaf step names, or ``default`` for a single leaf) mapped to ``DatasetDict``s.

    Attributes:
        pipeline_path: the ``pipeline.yaml`` that produced it, when known.
        log_filename_path: the ``pipeline.log`` of that run, when known.
        artifacts_path: the folder of the steps' artifacts (``<step>/<name>/``), when they saved any.
    """

    pipeline_path: Path | None = None
    log_filename_path: Path | None = None
    artifacts_path: Path | None = None

    def __repr__(self) -> str:
        inner = ",\n".join(f"    {name}: {dd!r}".replace("\n", "\n    ") for name, dd in self.items())
        return f"Distiset({{\n{inner}\n}})"

    def _card(
        self,
        repo_id: str,
        metadata: dict[str, Any] | None = None,
        script: str | None = None,
        config_url: str | None = None,
    ) -> str:
        samples = {name: dd["train"][0] if "train" in dd and dd["train"].num_rows else {} for name, dd in self.items()}
        rows = max((d.num_rows for dd in self.values() for d in dd.values()), default=0)
        artifacts = _artifacts(self.artifacts_path)
        return card_text(repo_id, samples, rows, self.pipeline_path, metadata, script, config_url, artifacts)

    def save_to_disk(
        self,
        distiset_path: str | os.PathLike[str],
        max_shard_size: str | int | None = None,
        num_shards: dict[str, int] | None = None,
        num_proc: int | None = None,
        storage_options: dict[str, Any] | None = None,
        save_card: bool = True,
        save_pipeline_config: bool = True,
        save_pipeline_log: bool = True,
    ) -> None:
        """Save every config under ``distiset_path/<config>`` and, in ``distiset_configs/``, the
        dataset card (``README.md``), ``pipeline.yaml`` and ``pipeline.log``.

        ``distiset_path`` may be a local folder or an fsspec URL (``s3://...`` with
        ``storage_options``); the other arguments are those of ``DatasetDict.save_to_disk``.
        """
        import fsspec

        root = str(distiset_path).rstrip("/")
        for name, dataset_dict in self.items():
            dataset_dict.save_to_disk(
                f"{root}/{name}",
                max_shard_size=max_shard_size,
                num_shards=num_shards,
                num_proc=num_proc,
                storage_options=storage_options,
            )
        fs, _, _ = fsspec.get_fs_token_paths(f"{root}/{CONFIG_FOLDER}", storage_options=storage_options)
        folder = f"{root}/{CONFIG_FOLDER}"
        fs.makedirs(folder, exist_ok=True)
        files: list[tuple[str, bytes]] = []
        if save_card:
            files.append(("README.md", self._card(Path(root).name).encode()))
        for wanted, source in ((save_pipeline_config, self.pipeline_path), (save_pipeline_log, self.log_filename_path)):
            if wanted and source is not None and Path(source).exists():
                files.append((Path(source).name, Path(source).read_bytes()))
        for filename, data in files:
            with fs.open(f"{folder}/{filename}", "wb") as out:
                out.write(data)
        for relative, path in _artifact_files(self.artifacts_path):
            fs.makedirs(f"{root}/artifacts/{relative.rsplit('/', 1)[0]}", exist_ok=True)
            with fs.open(f"{root}/artifacts/{relative}", "wb") as out:
                out.write(path.read_bytes())

    @classmethod
    def load_from_disk(
        cls,
        distiset_path: str | os.PathLike[str],
        keep_in_memory: bool | None = None,
        storage_options: dict[str, Any] | None = None,
        download_dir: str | os.PathLike[str] | None = None,
    ) -> Distiset:
        """Load a Distiset written by :meth:`save_to_disk` (a local folder, or an fsspec URL whose
        files are first downloaded to ``download_dir``, default a temporary folder)."""
        import fsspec
        from fsspec.implementations.local import LocalFileSystem

        fs, _, paths = fsspec.get_fs_token_paths(str(distiset_path), storage_options=storage_options)
        if not fs.isdir(paths[0]):
            raise DistisetError(f"Distiset folder {distiset_path} does not exist or is not a folder.")
        if isinstance(fs, LocalFileSystem):
            root = Path(paths[0])
        else:
            root = Path(download_dir) if download_dir is not None else Path(tempfile.mkdtemp(prefix="distiset-"))
            fs.get(paths[0].rstrip("/") + "/", str(root), recursive=True)
        distiset = cls()
        configs = [p for p in root.iterdir() if p.is_dir() and p.name not in (CONFIG_FOLDER, "artifacts")]
        for child in sorted(p for p in configs if not p.name.startswith(".")):
            loaded = load_from_disk(str(child), keep_in_memory=keep_in_memory)
            distiset[child.name] = loaded if isinstance(loaded, DatasetDict) else DatasetDict({"train": loaded})
        for attr, filename in (("pipeline_path", "pipeline.yaml"), ("log_filename_path", "pipeline.log")):
            for folder in (root / CONFIG_FOLDER, root):  # files at the top: what earlier versions wrote
                if (folder / filename).exists():
                    setattr(distiset, attr, folder / filename)
                    break
        if (root / "artifacts").is_dir():
            distiset.artifacts_path = root / "artifacts"
        return distiset

    def push_to_hub(
        self,
        repo_id: str,
        private: bool = False,
        token: str | None = None,
        generate_card: bool = True,
        include_script: bool = False,
        **kwargs: Any,
    ) -> None:
        """Push every config to the Hugging Face Hub dataset ``repo_id`` (one Hub config per
        Distiset config), then, in one commit, the dataset card, ``pipeline.yaml``,
        ``pipeline.log`` and (``include_script``) the script that is running.

        Args:
            repo_id: ``<user or org>/<name>``.
            private: create the repository private (an existing one keeps its visibility).
            token: a Hub token; default: ``HF_TOKEN`` or the token saved by ``hf auth login``.
            generate_card: write the dataset card (``README.md``).
            include_script: upload ``sys.argv[0]`` next to the data.
            **kwargs: passed to ``DatasetDict.push_to_hub`` (``max_shard_size``, ``commit_message``, ...).
        """
        from huggingface_hub import CommitOperationAdd, HfApi, get_token
        from huggingface_hub.repocard import metadata_load
        from huggingface_hub.utils import EntryNotFoundError

        token = token or get_token()
        if not token:
            raise DistisetError(
                f"Cannot push the Distiset to '{repo_id}': no Hugging Face token. Pass token=..., set HF_TOKEN, "
                "or run `hf auth login`."
            )
        if not self:
            raise DistisetError(f"Cannot push an empty Distiset to '{repo_id}'.")
        for name, dataset_dict in self.items():
            dataset_dict.push_to_hub(repo_id, config_name=name, private=private, token=token, **kwargs)
        api = HfApi(token=token)
        script = Path(sys.argv[0]) if include_script and sys.argv and sys.argv[0] else None
        if script is not None and not script.is_file():
            script = None
        operations = [
            CommitOperationAdd(path_in_repo=path.name, path_or_fileobj=str(path))
            for path in (self.pipeline_path, self.log_filename_path, script)
            if path is not None and Path(path).exists()
        ]
        operations += [
            CommitOperationAdd(path_in_repo=f"artifacts/{relative}", path_or_fileobj=str(path))
            for relative, path in _artifact_files(self.artifacts_path)
        ]
        if generate_card:
            try:
                readme = api.hf_hub_download(repo_id, "README.md", repo_type="dataset")
                metadata = metadata_load(readme) or {}
            except EntryNotFoundError:
                metadata = {}
            config_url = f"{api.endpoint}/datasets/{repo_id}/resolve/main/pipeline.yaml"
            card = self._card(repo_id, metadata, script.name if script is not None else None, config_url)
            operations.append(CommitOperationAdd(path_in_repo="README.md", path_or_fileobj=card.encode()))
        if operations:
            api.create_commit(
                repo_id,
                operations,
                commit_message="Add the dataset card and the pipeline files",
                repo_type="dataset",
            )

    def train_test_split(self, train_size: float, shuffle: bool = True, seed: int | None = None) -> Distiset:
        """Split the ``train`` split of every config into ``train`` and ``test``."""
        for name, dataset_dict in self.items():
            self[name] = dataset_dict["train"].train_test_split(train_size=train_size, shuffle=shuffle, seed=seed)
        return self


def _artifact_files(folder: Path | None) -> list[tuple[str, Path]]:
    """``(path relative to folder, path)`` of every file under ``folder`` (hidden files left out)."""
    if folder is None or not folder.is_dir():
        return []
    found = []
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder)
        if path.is_file() and not any(part.startswith(".") for part in relative.parts):
            found.append((relative.as_posix(), path))
    return found


def _artifacts(folder: Path | None) -> dict[str, list[tuple[str, dict[str, Any]]]]:
    """``{step: [(artifact name, its metadata)]}`` of an artifacts folder."""
    found: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for relative, path in _artifact_files(folder):
        parts = relative.split("/")
        if len(parts) == 3 and parts[2] == "metadata.json":
            try:
                metadata = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                metadata = {}
            found.setdefault(parts[0], []).append((parts[1], metadata if isinstance(metadata, dict) else {}))
    return found


def _leaf_files(root: Path, data_dir: Path) -> dict[str, list[LeafPart]]:
    journal = root / "commits.jsonl"
    leaves: dict[str, list[LeafPart]] = {}
    if journal.exists():
        committed = CommitJournal(journal).read()
        for step, records in committed.items():
            files = leaf_parts(root, (r for _, r in sorted(records.items())))
            if (data_dir / step).is_dir() or files or _snapshot_says_leaf(root, step):
                leaves[step] = files
        for child in data_dir.iterdir() if data_dir.is_dir() else []:
            if child.is_dir():
                leaves.setdefault(child.name, [])
        return leaves
    for child in sorted(p for p in data_dir.iterdir() if p.is_dir()) if data_dir.is_dir() else []:
        leaves[child.name] = [LeafPart(p) for p in sorted(child.glob("[0-9]*.parquet"))]
    return leaves


def _snapshot_says_leaf(root: Path, step: str) -> bool:
    """Whether the step's snapshot marks it a leaf (a leaf whose batches all came out empty has
    no data folder; the snapshot is what tells it from an intermediate step)."""
    try:
        return json.loads((CacheLayout(root).steps_snapshot_dir / f"{step}.json").read_text()).get("leaf") is True
    except (OSError, ValueError, AttributeError):
        return False


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
    distiset.artifacts_path = root / "artifacts" if _artifact_files(root / "artifacts") else None
    return distiset
