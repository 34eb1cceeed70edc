"""The leaf's Arrow file written while batches commit: the very file the Distiset would write,
ready when the run ends; given up (the Distiset writes it) whenever anything is unusual."""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow as pa
import pytest

from distil_dagster.cache import leaf_arrow
from distil_dagster.cache.batch_store import LeafPart, write_batch
from distil_dagster.cache.leaf_arrow_builder import LeafArrowBuilder
from distil_dagster.errors import RunInterrupted, StepOutputError
from distil_dagster.pipeline import Pipeline
from distil_dagster.steps import LoadDataFromDicts, StepResources
from tests.engine.faulty_steps import Tag
from tests.engine.test_failures import TypeChangesAt
from tests.test_distiset import build


def _arrow_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def _refuse_to_write(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test if the Distiset writes a leaf's Arrow file itself."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the Distiset wrote the Arrow file: the builder's file was not found")

    monkeypatch.setattr(leaf_arrow, "_write_stream", refuse)


def test_a_finished_run_leaves_the_arrow_file_the_distiset_opens(
    tmp_path: Path, executor: str, monkeypatch: pytest.MonkeyPatch, cache, rows
) -> None:
    with Pipeline(name="builder", cache_dir=tmp_path, seed=0) as pipeline:
        gen = LoadDataFromDicts(name="gen", data=[{"id": i} for i in range(40)], batch_size=10)
        gen >> Tag(name="leaf", input_batch_size=3, resources=StepResources(replicas=2))
    _refuse_to_write(monkeypatch)

    distiset = pipeline.run(executor=executor)

    assert [r["id"] for r in rows(distiset)] == list(range(40))  # seq order, whichever replica finished first
    assert [r["double"] for r in rows(distiset)] == [2 * i for i in range(40)]
    folder = cache(pipeline).root / "arrow"
    (name,) = _arrow_files(folder)
    assert name.startswith("leaf.") and name.endswith(".arrow")
    assert Path(distiset["default"]["train"].cache_files[0]["filename"]) == folder / name


def test_the_builder_gives_up_on_a_schema_change_and_the_distiset_unifies(tmp_path: Path, cache, rows) -> None:
    pipeline = build(tmp_path, none_id=3)  # the second batch's `note` is all None: another schema

    distiset = pipeline.run()

    assert [r["note"] for r in rows(distiset)] == ["n0", "n1", "n2", None, None, None]
    assert len(_arrow_files(cache(pipeline).root / "arrow")) == 1  # the Distiset's file; no temp left


def test_a_failed_run_leaves_no_arrow_file(tmp_path: Path, executor: str, cache) -> None:
    with Pipeline(name="builder-fails", cache_dir=tmp_path, seed=0) as pipeline:
        gen = LoadDataFromDicts(name="gen", data=[{"id": i} for i in range(12)], batch_size=4)
        gen >> TypeChangesAt(name="leaf", at=8, input_batch_size=4)

    with pytest.raises(StepOutputError):
        pipeline.run(executor=executor)

    assert _arrow_files(cache(pipeline).root / "arrow") == []  # no file of two of three batches, no temp


def test_an_interrupted_run_leaves_no_arrow_file_and_the_resumed_one_a_whole_one(
    tmp_path: Path, executor: str, cache, rows
) -> None:
    with Pipeline(name="builder-stops", cache_dir=tmp_path / "cache", seed=0) as pipeline:
        gen = LoadDataFromDicts(name="gen", data=[{"id": i} for i in range(40)], batch_size=8)
        fault = {"fault": "sigint", "fault_id": 20, "signal_pid": os.getpid(), "once_marker": str(tmp_path / "fired")}
        gen >> Tag(name="leaf", input_batch_size=4, **fault)
    with pytest.raises(RunInterrupted):
        pipeline.run(executor=executor)
    folder = cache(pipeline).root / "arrow"
    assert _arrow_files(folder) == []
    assert cache(pipeline).records("leaf")  # some batches were committed before the stop

    distiset = pipeline.run(executor=executor)  # resumed: the leaf's earlier batches come first

    assert [r["double"] for r in rows(distiset)] == [2 * i for i in range(40)]
    assert len(_arrow_files(folder)) == 1


def test_temp_files_of_dead_writers_are_removed_when_a_run_resumes(tmp_path: Path, cache) -> None:
    with Pipeline(name="builder-temps", cache_dir=tmp_path, seed=0) as pipeline:
        gen = LoadDataFromDicts(name="gen", data=[{"id": i} for i in range(12)], batch_size=4)
        gen >> TypeChangesAt(name="leaf", at=8, input_batch_size=4)
    with pytest.raises(StepOutputError):
        pipeline.run(executor="inline")
    folder = cache(pipeline).root / "arrow"
    folder.mkdir(mode=0o700, exist_ok=True)
    dead = folder / ".leaf.building.arrow.999999999.tmp"  # above any pid_max: no such process
    live = folder / f".other.arrow.{os.getpid()}.tmp"  # a writer that is still running
    dead.write_bytes(b"partial")
    live.write_bytes(b"partial")

    with pytest.raises(StepOutputError):
        pipeline.run(executor="inline")  # resumes (and fails again at the same batch)

    assert not dead.exists()
    assert live.exists()


def test_tables_from_memory_are_trusted_only_after_one_read_back_equal(tmp_path: Path) -> None:
    """The Arrow file holds what the Parquet files hold, even when the tables handed over differ."""
    data = tmp_path / "data" / "leaf"
    files = []
    for seq in range(3):
        path = data / f"{seq + 1:05d}.parquet"
        size, _ = write_batch(path, [{"id": seq * 2 + i} for i in range(2)], "leaf", fsync=False)
        files.append(LeafPart(path, size))
    other = pa.table({"id": [-1, -1]})  # same schema, other values: never read back equal
    builder = LeafArrowBuilder(tmp_path, "leaf", enable_metadata=False)
    for seq, part in enumerate(files):
        builder.add(seq, part, other)

    arrow = builder.finish()

    assert arrow is not None
    assert pa.ipc.open_stream(arrow.read_bytes()).read_all().column("id").to_pylist() == list(range(6))
    assert arrow == leaf_arrow.arrow_path(tmp_path, "leaf", files, enable_metadata=False)
