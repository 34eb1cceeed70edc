"""The local-process backend: worker deaths, load failures, replicas, tracebacks."""

from __future__ import annotations

import importlib.util
import sys
import time
from pathlib import Path

import pytest

from distil_dagster.distiset import create_distiset
from distil_dagster.engine.config import EngineConfig
from distil_dagster.errors import RemoteTraceback, StepLoadError, WorkerDiedError
from distil_dagster.pipeline import Pipeline
from distil_dagster.steps import LoadDataFromDicts, StepResources

from .faulty_steps import FailingLoad, Tag


def _pipeline(cache: Path, rows: int = 40, **tag: object) -> Pipeline:
    with Pipeline(name="proc", cache_dir=cache) as pipeline:
        load = LoadDataFromDicts(name="load", data=[{"id": i} for i in range(rows)], batch_size=6)
        load >> Tag(name="tag", input_batch_size=4, **tag)
    return pipeline


@pytest.mark.parametrize("fault", ["kill", "exit"])
def test_a_dead_worker_fails_the_run_promptly_naming_step_and_batch(tmp_path: Path, fault: str) -> None:
    pipeline = _pipeline(tmp_path, fault=fault, fault_id=9)
    start = time.monotonic()
    with pytest.raises(WorkerDiedError, match=r"step 'tag' \(replica 0\) died .* batch 2"):
        pipeline.run(executor="processes")
    assert time.monotonic() - start < 10


def test_the_run_resumes_after_a_worker_died(tmp_path: Path) -> None:
    with pytest.raises(WorkerDiedError):
        _pipeline(tmp_path, fault="kill", fault_id=30).run(executor="processes")
    distiset = _pipeline(tmp_path).run(executor="processes")
    ids = distiset["default"]["train"]["id"]
    assert ids == list(range(40))


def test_a_load_failure_names_step_and_replica_with_the_worker_traceback(tmp_path: Path) -> None:
    with Pipeline(name="load-fail", cache_dir=tmp_path) as pipeline:
        LoadDataFromDicts(name="load", data=[{"id": 1}]) >> FailingLoad(name="broken")
    with pytest.raises(StepLoadError, match=r"Step 'broken' \(replica 0\) failed to load") as info:
        pipeline.run(executor="processes")
    cause = info.value.__cause__
    assert isinstance(cause, RemoteTraceback)
    assert "RuntimeError: model weights not found" in cause.text
    assert not list(tmp_path.rglob("*.parquet"))


def test_replicas_share_the_work_and_keep_the_order(tmp_path: Path) -> None:
    with Pipeline(name="replicas", cache_dir=tmp_path) as pipeline:
        load = LoadDataFromDicts(name="load", data=[{"id": i} for i in range(120)], batch_size=12)
        load >> Tag(name="tag", input_batch_size=4, resources=StepResources(replicas=2))
    rows = pipeline.run(executor="processes")["default"]["train"].to_list()
    assert [r["id"] for r in rows] == list(range(120))
    assert [r["double"] for r in rows] == [2 * i for i in range(120)]
    assert len({r["pid"] for r in rows}) == 2


def test_worker_failures_are_logged_with_their_traceback(tmp_path: Path) -> None:
    pipeline = _pipeline(tmp_path, fault="raise", fault_id=5)
    distiset = pipeline.run(executor="processes", config=EngineConfig(step_retries=1))
    rows = distiset["default"]["train"].to_list()
    assert [r["double"] for r in rows if 4 <= r["id"] < 8] == [None] * 4
    (log,) = tmp_path.rglob("pipeline.log")
    text = log.read_text()
    assert "[tag:0]" in text and "ValueError: boom on 5" in text
    assert create_distiset(log.parent)["default"]["train"].num_rows == 40


def test_steps_from_a_module_loaded_by_path_run_in_workers(tmp_path: Path) -> None:
    """Like Dagster's ``-f definitions.py``: the module is not importable by name in a worker."""
    source = tmp_path / "elsewhere" / "by_path_steps.py"
    source.parent.mkdir()
    source.write_text(
        "from distil_dagster.steps import Step, StepInput\n"
        "class Plus(Step):\n"
        "    @property\n"
        "    def inputs(self):\n"
        "        return ['id']\n"
        "    @property\n"
        "    def outputs(self):\n"
        "        return ['plus']\n"
        "    def process(self, *inputs: StepInput):\n"
        "        yield [{**r, 'plus': r['id'] + 1} for r in inputs[0]]\n"
    )
    spec = importlib.util.spec_from_file_location("by_path_steps", source)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["by_path_steps"] = module
    try:
        spec.loader.exec_module(module)
        with Pipeline(name="by-path", cache_dir=tmp_path / "cache") as pipeline:
            LoadDataFromDicts(name="load", data=[{"id": i} for i in range(6)]) >> module.Plus(name="plus")
        rows = pipeline.run(executor="processes")["default"]["train"].to_list()
    finally:
        del sys.modules["by_path_steps"]
    assert [r["plus"] for r in rows] == [1, 2, 3, 4, 5, 6]
