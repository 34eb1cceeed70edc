"""A lone worker of a fast step gets the batches queued for it as a group: one message each way,
and, for a leaf, one Parquet file.

Tested at the process backend: the step's pace (seconds per batch) is set by the test, so which
batches form a group does not depend on the machine's speed.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from distil_dagster.cache.batch_store import (
    LeafPart,
    append_batch,
    arrow_table,
    leaf_runs,
    read_leaf_part,
    read_leaf_run,
    read_rows,
)
from distil_dagster.cache.segments import SegmentWriter
from distil_dagster.engine.batch import Batch
from distil_dagster.engine.processes import ProcessBackend
from distil_dagster.engine.tasks import ProcessTask, SliceRef, TaskResult
from distil_dagster.errors import StepTimeoutError, WorkerDiedError
from distil_dagster.pipeline import Pipeline
from distil_dagster.steps import LoadDataFromDicts, Step

from .faulty_steps import Stall, Tag

pytestmark = pytest.mark.timeout(90)


def _backend(
    tmp_path: Path, rows: int, leaf: bool = True, step: type[Step] = Tag, timeout: float = 600.0, **params: object
) -> tuple[ProcessBackend, list[ProcessTask]]:
    """A started backend for a ``step`` (``Tag``) and one task per input row (batch ``i`` reads
    row ``i``); its outputs go to leaf files, or (``leaf=False``) to the step's segment folder."""
    with Pipeline(name="groups", cache_dir=tmp_path) as pipeline:
        load = LoadDataFromDicts(name="load", data=[{"id": 0}], batch_size=1)
        load >> step(name="tag", input_batch_size=1, **params)
    writer = SegmentWriter(tmp_path / "steps" / "load", fsync=False)
    segment, offset, size = append_batch(writer, [{"id": i} for i in range(rows)])
    writer.close()
    tasks = [
        ProcessTask(
            Batch("tag", seq, seq == rows - 1, [], {"load": [(0, seq, seq + 1)]}),
            [[SliceRef(str(segment), size, seq, seq + 1, offset)]],
            str(tmp_path / "data" / "tag" / f"{seq + 1:05d}.parquet") if leaf else str(tmp_path / "steps" / "tag"),
        )
        for seq in range(rows)
    ]
    backend = ProcessBackend(0, False, logging.getLogger("test"), step_timeout=timeout)
    backend.start({"tag": pipeline.dag.step("tag")})
    return backend, tasks


def _run_fast(backend: ProcessBackend, tasks: list[ProcessTask]) -> list[TaskResult]:
    """Submit every task to a step whose pace is set to 1 ms per batch (a group may hold 64) and
    return the results in batch order, the backend stopped."""
    try:
        backend.workers["tag"].seconds = 0.001
        for task in tasks:
            backend.submit(task)  # the worker's two slots take batches 0 and 1; the others wait
        return sorted((backend.receive() for _ in tasks), key=lambda r: r.task.batch.seq_no)
    finally:
        backend.stop()


def _ids(results: list[TaskResult]) -> list[int]:
    parts = [LeafPart(Path(r.file), r.size, r.first_row, r.num_rows) for r in results if r.file]
    return [row["id"] for run in leaf_runs(parts) for table in read_leaf_run(run) for row in table.to_pylist()]


def test_queued_batches_of_a_fast_leaf_are_computed_as_one_group_in_one_file(tmp_path: Path) -> None:
    backend, tasks = _backend(tmp_path, 10)
    results = _run_fast(backend, tasks)

    assert [r.error for r in results] == [None] * 10
    assert [r.task.batch.seq_no for r in results] == list(range(10))
    assert [(r.file, r.first_row) for r in results[:2]] == [(tasks[0].output, None), (tasks[1].output, None)]
    assert {r.file for r in results[2:]} == {tasks[2].output}, "the group went to its first batch's file"
    assert [r.first_row for r in results[2:]] == list(range(8))
    assert sorted(p.name for p in (tmp_path / "data" / "tag").iterdir()) == [
        "00001.parquet",
        "00002.parquet",
        "00003.parquet",
    ]
    assert _ids(results) == list(range(10))
    for result in results:  # each batch's rows also came back as Arrow IPC, for the leaf's Arrow file
        table = read_leaf_part(LeafPart(Path(result.file), result.size, result.first_row, 1))
        assert arrow_table(result.arrow).equals(table)


def test_queued_batches_of_a_fast_intermediate_step_come_back_in_one_message_each_appended(tmp_path: Path) -> None:
    backend, tasks = _backend(tmp_path, 6, leaf=False)
    try:
        backend.workers["tag"].seconds = 0.001
        for task in tasks:
            backend.submit(task)
        (replica,) = backend.replicas
        assert len(replica.tasks) == 2 and len(backend.workers["tag"].queue) == 4
        results = [backend.receive()]
        assert len(replica.tasks) == 5 and not backend.workers["tag"].queue, "the 4 waiting went as one group"
        results += [backend.receive() for _ in tasks[1:]]
        assert len(replica.tasks) == 0
    finally:
        backend.stop()

    results.sort(key=lambda r: r.task.batch.seq_no)
    assert [r.error for r in results] == [None] * 6
    assert [r.first_row for r in results] == [None] * 6 and [r.arrow for r in results] == [None] * 6
    assert [read_rows(Path(r.file), r.size, r.offset)[0]["id"] for r in results] == list(range(6))
    assert len({(r.file, r.offset) for r in results}) == 6, "each batch has its own byte range"


def test_a_worker_dying_inside_a_group_fails_every_batch_of_it_naming_the_one_it_computed(tmp_path: Path) -> None:
    backend, tasks = _backend(tmp_path, 8, fault="kill", fault_id=5)
    results = _run_fast(backend, tasks)
    assert [r.error is None for r in results] == [True, True] + [False] * 6
    message = str(results[2].error)
    assert isinstance(results[2].error, WorkerDiedError)
    assert "while processing batch 5 (batch 2, batch 3, batch 4 computed with it, not yet written;" in message
    assert "batch 6, batch 7 waiting behind it)" in message
    assert sorted(p.name for p in (tmp_path / "data" / "tag").iterdir()) == ["00001.parquet", "00002.parquet"]


def test_a_batch_of_a_group_that_stalls_fails_the_group_at_the_step_timeout_naming_it(tmp_path: Path) -> None:
    marker = tmp_path / "healed"  # never created: the batch of id 4 stalls until its worker is stopped
    backend, tasks = _backend(tmp_path, 7, step=Stall, timeout=1.0, fault_id=4, heal_marker=str(marker))
    results = _run_fast(backend, tasks)
    assert [r.error is None for r in results] == [True, True] + [False] * 5
    assert all(isinstance(r.error, StepTimeoutError) for r in results[2:])
    message = str(results[4].error)
    assert "took longer than the step timeout of 1s on batch 4 (batch 2, batch 3 computed with it" in message
    assert "batch 5, batch 6 waiting behind it)" in message
