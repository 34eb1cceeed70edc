"""Loaders: LoadDataFromFileSystem, LoadDataFromDisk and LoadDataFromHub.

Each loader reads real files (JSON Lines, JSON, Parquet, CSV, ``save_to_disk`` folders, a saved
Distiset), resumes from a row offset, declares its columns, and has a signature that changes when
an input file changes. The Hub loader is run offline: it must fail with a message naming the
repository and the local cache.
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path
from typing import Any

import datasets
import fsspec
import huggingface_hub
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from datasets import Dataset, DatasetDict
from pydantic import SecretStr

from distil_dagster.distiset import Distiset
from distil_dagster.pipeline import Pipeline
from distil_dagster.steps.generators.file_system import DataFilesNotFoundError, LoadDataFromFileSystem
from distil_dagster.steps.generators.huggingface import (
    HubDatasetUnavailableError,
    LoadDataFromDisk,
    LoadDataFromHub,
)

ROWS = [{"id": i, "text": f"row {i}"} for i in range(10)]


def write(path: Path, rows: list[dict[str, Any]], kind: str) -> Path:
    """Write ``rows`` to ``path`` in ``kind`` format (Parquet in row groups of 3)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    elif kind == "json":
        path.write_text(json.dumps(rows), encoding="utf-8")
    elif kind == "csv":
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    else:
        pq.write_table(pa.Table.from_pylist(rows), path, row_group_size=3)
    return path


def collect(loader: Any, offset: int = 0) -> tuple[list[dict[str, Any]], list[int], list[bool]]:
    """All rows from ``offset`` on, the batch sizes and the last-batch flags."""
    loader.load()
    rows, sizes, lasts = [], [], []
    for batch, last in loader.process(offset):
        rows.extend(batch)
        sizes.append(len(batch))
        lasts.append(last)
    return rows, sizes, lasts


def in_pipeline(step_cls: type, tmp_path: Path, **kwargs: Any) -> Any:
    with Pipeline(name="loaders", cache_dir=tmp_path / "cache"):
        return step_cls(name="load", batch_size=4, **kwargs)


@pytest.mark.parametrize("kind", ["jsonl", "json", "parquet", "csv"])
def test_file_formats_load_every_row_in_batches(tmp_path: Path, kind: str) -> None:
    path = write(tmp_path / f"data.{kind}", ROWS, kind)
    loader = in_pipeline(LoadDataFromFileSystem, tmp_path, data_files=str(path))

    rows, sizes, lasts = collect(loader)

    assert rows == ROWS
    assert sizes == [4, 4, 2] and lasts == [False, False, True]
    assert loader.outputs == ["id", "text"]
    assert loader.total_rows() == 10


@pytest.mark.parametrize("kind", ["jsonl", "parquet", "csv", "json"])
def test_file_loader_resumes_from_an_offset_across_files(tmp_path: Path, kind: str) -> None:
    write(tmp_path / "data" / f"a.{kind}", ROWS[:5], kind)
    write(tmp_path / "data" / f"b.{kind}", ROWS[5:], kind)
    loader = in_pipeline(LoadDataFromFileSystem, tmp_path, data_files=str(tmp_path / "data" / f"*.{kind}"))

    rows, sizes, lasts = collect(loader, offset=6)

    assert rows == ROWS[6:]
    assert sizes == [4] and lasts == [True]


def test_parquet_resume_skips_whole_row_groups(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path / "data.parquet", ROWS, "parquet")
    loader = in_pipeline(LoadDataFromFileSystem, tmp_path, data_files=str(path))
    read_groups: list[list[int]] = []
    original = pq.ParquetFile.iter_batches

    def spy(self: pq.ParquetFile, *args: Any, **kwargs: Any) -> Any:
        read_groups.append(list(kwargs["row_groups"]))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(pq.ParquetFile, "iter_batches", spy)

    rows, _, _ = collect(loader, offset=7)

    assert rows == ROWS[7:]
    assert read_groups == [[2, 3]]  # row groups of 3: rows 0..5 are never read


def test_globs_folders_and_lists_are_read_in_sorted_order_each_file_once(tmp_path: Path) -> None:
    write(tmp_path / "data" / "b.jsonl", ROWS[5:], "jsonl")
    write(tmp_path / "data" / "nested" / "a.jsonl", ROWS[:5], "jsonl")
    (tmp_path / "data" / "notes.txt").write_text("not data", encoding="utf-8")
    data = tmp_path / "data"

    for data_files in (str(data / "**" / "*.jsonl"), str(data), [str(data / "nested" / "a.jsonl"), str(data)]):
        loader = in_pipeline(LoadDataFromFileSystem, tmp_path, data_files=data_files)
        rows, _, _ = collect(loader)
        assert sorted(r["id"] for r in rows) == list(range(10)), data_files
        assert len(rows) == 10


def test_explicit_filetype_reads_files_without_the_usual_suffix(tmp_path: Path) -> None:
    path = write(tmp_path / "data.txt", ROWS[:3], "jsonl")
    loader = in_pipeline(LoadDataFromFileSystem, tmp_path, data_files=str(path), filetype="jsonl")

    assert collect(loader)[0] == ROWS[:3]

    unknown = in_pipeline(LoadDataFromFileSystem, tmp_path, data_files=str(path))
    with pytest.raises(ValueError, match=r"cannot tell the format of .*data\.txt.*set filetype"):
        unknown.total_rows()


def test_num_examples_limits_the_rows(tmp_path: Path) -> None:
    path = write(tmp_path / "data.jsonl", ROWS, "jsonl")
    loader = in_pipeline(LoadDataFromFileSystem, tmp_path, data_files=str(path), num_examples=5)

    rows, sizes, lasts = collect(loader)

    assert rows == ROWS[:5] and sizes == [4, 1] and lasts == [False, True]


def test_missing_files_fail_with_the_step_and_the_path(tmp_path: Path) -> None:
    loader = in_pipeline(LoadDataFromFileSystem, tmp_path, data_files=str(tmp_path / "nope" / "*.jsonl"))

    with pytest.raises(DataFilesNotFoundError, match=r"Step 'load': no data file found for .*nope"):
        loader.total_rows()
    assert isinstance(DataFilesNotFoundError("x"), FileNotFoundError)


def test_signature_changes_when_an_input_file_changes(tmp_path: Path) -> None:
    path = write(tmp_path / "data.jsonl", ROWS, "jsonl")
    with Pipeline(name="sig", cache_dir=tmp_path / "cache") as pipeline:
        LoadDataFromFileSystem(name="load", data_files=str(path))
    before = pipeline.signature

    write(path, [*ROWS, {"id": 10, "text": "row 10"}], "jsonl")

    assert pipeline.signature != before
    assert pipeline.dag.step("load").total_rows() == 11


def test_file_loader_in_a_pipeline_resumes_from_the_cache(tmp_path: Path, rows) -> None:
    path = write(tmp_path / "data.parquet", ROWS, "parquet")
    with Pipeline(name="files", cache_dir=tmp_path / "cache") as pipeline:
        LoadDataFromFileSystem(name="load", data_files=str(path), batch_size=3)

    assert rows(pipeline.run(executor="inline")) == ROWS
    assert rows(pipeline.run(executor="inline")) == ROWS  # served from the cache


@pytest.fixture
def saved(tmp_path: Path) -> dict[str, Path]:
    """A saved Dataset, a saved DatasetDict (train/test) and a saved Distiset (two configs)."""
    dataset = Dataset.from_list(ROWS)
    dataset.save_to_disk(str(tmp_path / "dataset"))
    DatasetDict({"train": dataset, "test": Dataset.from_list(ROWS[:2])}).save_to_disk(str(tmp_path / "dict"))
    Distiset(
        {"default": DatasetDict({"train": dataset}), "other": DatasetDict({"train": Dataset.from_list(ROWS[:3])})}
    ).save_to_disk(tmp_path / "distiset")
    return {"dataset": tmp_path / "dataset", "dict": tmp_path / "dict", "distiset": tmp_path / "distiset"}


def test_disk_loader_reads_datasets_splits_and_distiset_configs(tmp_path: Path, saved: dict[str, Path]) -> None:
    plain = in_pipeline(LoadDataFromDisk, tmp_path, dataset_path=str(saved["dataset"]))
    test_split = in_pipeline(LoadDataFromDisk, tmp_path, dataset_path=str(saved["dict"]), split="test")
    other = in_pipeline(
        LoadDataFromDisk, tmp_path, dataset_path=str(saved["distiset"]), is_distiset=True, config="other"
    )

    assert collect(plain)[0] == ROWS and plain.outputs == ["id", "text"] and plain.total_rows() == 10
    assert collect(test_split)[0] == ROWS[:2]
    assert collect(other)[0] == ROWS[:3]
    assert collect(plain, offset=9) == ([ROWS[9]], [1], [True])


def test_disk_loader_errors_name_the_folder_the_split_and_the_configs(tmp_path: Path, saved: dict[str, Path]) -> None:
    missing = in_pipeline(LoadDataFromDisk, tmp_path, dataset_path=str(tmp_path / "absent"))
    bad_split = in_pipeline(LoadDataFromDisk, tmp_path, dataset_path=str(saved["dict"]), split="validation")
    bad_config = in_pipeline(
        LoadDataFromDisk, tmp_path, dataset_path=str(saved["distiset"]), is_distiset=True, config="x"
    )

    with pytest.raises(DataFilesNotFoundError, match=r"Step 'load': dataset folder .*absent does not exist"):
        missing.total_rows()
    with pytest.raises(ValueError, match=r"has no split 'validation'; its splits are \['train', 'test'\]"):
        bad_split.total_rows()
    with pytest.raises(DataFilesNotFoundError, match=r"its configs are \['default', 'other'\]"):
        bad_config.total_rows()


def test_disk_loader_signature_follows_the_saved_files(tmp_path: Path, saved: dict[str, Path]) -> None:
    with Pipeline(name="disk", cache_dir=tmp_path / "cache") as pipeline:
        LoadDataFromDisk(name="load", dataset_path=str(saved["dataset"]))
    before = pipeline.signature

    Dataset.from_list(ROWS[:4]).save_to_disk(str(tmp_path / "fresh"))
    for child in (tmp_path / "fresh").iterdir():
        os.replace(child, saved["dataset"] / child.name)

    assert pipeline.signature != before


def test_hub_loader_offline_fails_naming_the_repo_and_the_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Both libraries read HF_HUB_OFFLINE when imported; set what they read.
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    loader = in_pipeline(LoadDataFromHub, tmp_path, repo_id="distil-dagster/not-cached-anywhere")

    with pytest.raises(HubDatasetUnavailableError) as info:
        loader.outputs  # noqa: B018  # columns need the dataset

    message = str(info.value)
    assert "Step 'load'" in message and "'distil-dagster/not-cached-anywhere'" in message
    assert "offline (HF_HUB_OFFLINE=1)" in message and "not in the local Hugging Face cache" in message
    assert isinstance(info.value, ConnectionError)


def test_loaders_without_their_required_parameter_declare_no_columns_yet(tmp_path: Path) -> None:
    for cls in (LoadDataFromFileSystem, LoadDataFromDisk, LoadDataFromHub):
        loader = in_pipeline(cls, tmp_path)
        assert loader.outputs == [] and loader.missing_runtime_parameters(), cls.__name__


def test_disk_loader_runs_in_every_executor(tmp_path: Path, saved: dict[str, Path], executor: str, rows) -> None:
    with Pipeline(name="disk-run", cache_dir=tmp_path / "cache") as pipeline:
        loader = LoadDataFromDisk(name="load", dataset_path=str(saved["dataset"]), batch_size=4)
    assert loader.outputs == ["id", "text"]  # opens the dataset here; the worker reopens its own

    assert rows(pipeline.run(executor=executor)) == ROWS


def test_storage_options_reach_the_filesystem_of_local_paths_and_file_urls(tmp_path: Path) -> None:
    path = write(tmp_path / "data" / "rows.jsonl", ROWS, "jsonl")
    options = {"auto_mkdir": False}  # an fsspec option of the local filesystem, harmless for reading

    for data_files in (str(path), path.as_uri(), f"{(tmp_path / 'data').as_uri()}/*.jsonl"):
        loader = in_pipeline(LoadDataFromFileSystem, tmp_path, data_files=data_files, storage_options=options)
        assert collect(loader, offset=3)[0] == ROWS[3:], data_files
        assert loader.outputs == ["id", "text"]


def test_storage_options_configure_the_filesystem_of_a_url(tmp_path: Path) -> None:
    # ``dir://`` resolves paths under the folder its options name: other options, other files.
    write(tmp_path / "root" / "rows.parquet", ROWS, "parquet")
    options = {"path": str(tmp_path / "root"), "target_protocol": "file"}

    loader = in_pipeline(LoadDataFromFileSystem, tmp_path, data_files="dir://rows.parquet", storage_options=options)

    assert collect(loader, offset=4) == (ROWS[4:], [4, 2], [False, True])
    assert loader.files()[0].path == "dir://rows.parquet"
    (tmp_path / "empty").mkdir()
    elsewhere = {**options, "path": str(tmp_path / "empty")}
    other = in_pipeline(LoadDataFromFileSystem, tmp_path, data_files="dir://rows.parquet", storage_options=elsewhere)
    with pytest.raises(DataFilesNotFoundError, match=r"no data file found for \['dir://rows.parquet'\]"):
        other.total_rows()


@pytest.fixture
def memory_folder(tmp_path: Path) -> Any:
    """A folder of fsspec's in-memory filesystem (a filesystem other than the local one), removed after."""
    fs = fsspec.filesystem("memory")
    root = f"/{tmp_path.name}"
    yield fs, root
    if fs.exists(root):
        fs.rm(root, recursive=True)


def test_files_of_another_filesystem_are_globbed_resumed_and_versioned(tmp_path: Path, memory_folder: Any) -> None:
    fs, root = memory_folder
    fs.pipe(f"{root}/a.jsonl", "".join(json.dumps(r) + "\n" for r in ROWS[:5]).encode())
    table = pa.Table.from_pylist(ROWS[5:])
    with fs.open(f"{root}/b.parquet", "wb") as handle:
        pq.write_table(table, handle, row_group_size=2)
    with Pipeline(name="memory", cache_dir=tmp_path / "cache") as pipeline:
        loader = LoadDataFromFileSystem(name="load", data_files=f"memory://{root}/*", batch_size=4)

    assert collect(loader)[0] == ROWS and loader.outputs == ["id", "text"]
    assert collect(loader, offset=6)[0] == ROWS[6:]
    assert [f.path for f in loader.files()] == [f"memory://{root}/a.jsonl", f"memory://{root}/b.parquet"]
    before = pipeline.signature

    fs.pipe(f"{root}/a.jsonl", "".join(json.dumps(r) + "\n" for r in ROWS[:4]).encode())

    assert pipeline.signature != before
    assert loader.total_rows() == 9


def test_secret_storage_options_are_used_but_never_in_the_signature_or_the_yaml(tmp_path: Path) -> None:
    write(tmp_path / "root" / "rows.jsonl", ROWS, "jsonl")
    secret_root = str(tmp_path / "root")

    def build(options: dict[str, Any]) -> Pipeline:
        with Pipeline(name="secret", cache_dir=tmp_path / "cache") as pipeline:
            LoadDataFromFileSystem(name="load", data_files="dir://rows.jsonl", storage_options=options)
        return pipeline

    pipeline = build({"path": SecretStr(secret_root), "target_protocol": "file"})

    assert collect(pipeline.dag.step("load"))[0] == ROWS  # the secret is given unwrapped to the filesystem
    dumped = json.dumps(pipeline.dump(), default=str)
    assert secret_root not in dumped and "target_protocol" in dumped
    other = build({"path": SecretStr(secret_root), "target_protocol": "file"})
    assert other.signature == pipeline.signature


def test_storage_options_split_and_config_in_the_signature(tmp_path: Path) -> None:
    path = write(tmp_path / "data.jsonl", ROWS, "jsonl")

    def signature(**kwargs: Any) -> str:
        with Pipeline(name="sig", cache_dir=tmp_path / "cache") as pipeline:
            LoadDataFromFileSystem(name="load", data_files=str(path), **kwargs)
        return pipeline.signature

    plain = signature()
    assert signature(storage_options={"auto_mkdir": True}) != plain
    assert signature(split="train[:5]") != plain
    assert signature(split="train") == plain
    assert signature(config="default") == plain  # the only configuration: the same rows
    assert signature(storage_options={"token": SecretStr("a")}) == signature(storage_options={"token": SecretStr("b")})


@pytest.mark.parametrize(
    ("split", "expected"),
    [
        ("train", ROWS),
        ("train[:3]", ROWS[:3]),
        ("train[4:8]", ROWS[4:8]),
        ("train[-2:]", ROWS[-2:]),
        ("train[50%:]", ROWS[5:]),
        ("train[:2]+train[7:]", ROWS[:2] + ROWS[7:]),
    ],
)
def test_split_selects_rows_as_a_datasets_split_slice(tmp_path: Path, split: str, expected: list[Any]) -> None:
    write(tmp_path / "data" / "a.jsonl", ROWS[:5], "jsonl")
    write(tmp_path / "data" / "b.parquet", ROWS[5:], "parquet")
    loader = in_pipeline(LoadDataFromFileSystem, tmp_path, data_files=str(tmp_path / "data"), split=split)

    rows, _, lasts = collect(loader)

    assert rows == expected and lasts[-1] is True and not any(lasts[:-1])
    assert loader.total_rows() == len(expected)
    assert collect(loader, offset=1)[0] == expected[1:]  # resumed inside the selection


def test_split_slice_then_num_examples(tmp_path: Path) -> None:
    path = write(tmp_path / "data.csv", ROWS, "csv")
    loader = in_pipeline(LoadDataFromFileSystem, tmp_path, data_files=str(path), split="train[3:]", num_examples=4)

    assert collect(loader) == (ROWS[3:7], [4], [True])


def test_other_splits_and_configs_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"split 'test': the files make one split, 'train'.*Unknown split"):
        in_pipeline(LoadDataFromFileSystem, tmp_path, data_files="x.jsonl", split="test")
    with pytest.raises(ValueError, match=r"split 'train\[': the files make one split"):
        in_pipeline(LoadDataFromFileSystem, tmp_path, data_files="x.jsonl", split="train[")
    with pytest.raises(ValueError, match=r"config 'other': the files make one configuration, 'default'"):
        in_pipeline(LoadDataFromFileSystem, tmp_path, data_files="x.jsonl", config="other")
    loader = in_pipeline(LoadDataFromFileSystem, tmp_path, data_files="x.jsonl", config="default")
    with pytest.raises(ValueError, match=r"split 'validation'"):
        loader.split = "validation"  # a runtime parameter set when the pipeline runs is checked too
    assert {"split", "config"} <= set(loader.runtime_parameters_names)


def test_file_urls_split_and_storage_options_run_in_every_executor(tmp_path: Path, executor: str, rows) -> None:
    path = write(tmp_path / "data.parquet", ROWS, "parquet")
    with Pipeline(name="fs-run", cache_dir=tmp_path / "cache") as pipeline:
        LoadDataFromFileSystem(
            name="load", data_files=path.as_uri(), storage_options={"auto_mkdir": False}, batch_size=3
        )

    result = rows(pipeline.run(executor=executor, parameters={"load": {"split": "train[2:9]"}}))

    assert result == ROWS[2:9]
