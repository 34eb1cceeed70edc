"""Long-lived objects are frozen out of full GC passes while a run lasts, and only then."""

from __future__ import annotations

import gc
from pathlib import Path

import pytest

from distil_dagster.engine.heap import settled_heap
from distil_dagster.pipeline import Pipeline
from distil_dagster.steps import LoadDataFromDicts

from .faulty_steps import FreezeCount


@pytest.fixture(autouse=True)
def _unfrozen() -> None:
    assert gc.get_freeze_count() == 0, "the test process starts with nothing frozen"


def test_settled_heap_freezes_for_the_block_only() -> None:
    with settled_heap():
        assert gc.get_freeze_count() > 0
    assert gc.get_freeze_count() == 0


def test_settled_heap_leaves_a_process_that_froze_objects_itself_alone() -> None:
    gc.freeze()
    try:
        before = gc.get_freeze_count()
        with settled_heap():
            pass
        assert gc.get_freeze_count() == before  # not unfrozen behind the process's back
    finally:
        gc.unfreeze()


def test_settled_heap_does_nothing_while_the_collector_is_off() -> None:
    gc.disable()
    try:
        with settled_heap():
            assert gc.get_freeze_count() == 0
    finally:
        gc.enable()


@pytest.mark.parametrize("executor", ["inline", "processes"])
def test_a_run_computes_with_the_heap_frozen_and_leaves_the_caller_unfrozen(tmp_path: Path, executor: str) -> None:
    with Pipeline(name="heap", cache_dir=tmp_path) as pipeline:
        LoadDataFromDicts(data=[{"id": i} for i in range(4)]) >> FreezeCount(name="frozen")
    distiset = pipeline.run(use_cache=False, executor=executor)  # type: ignore[arg-type]
    assert all(n > 0 for n in distiset["default"]["train"]["frozen"])
    assert gc.get_freeze_count() == 0
