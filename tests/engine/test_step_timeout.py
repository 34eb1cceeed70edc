"""A batch that runs past ``EngineConfig.step_timeout`` fails the run clearly, and the run resumes."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import pytest

from distil_dagster.cache.batch_store import append_batch
from distil_dagster.cache.segments import SegmentWriter
from distil_dagster.engine.batch import Batch
from distil_dagster.engine.config import EngineConfig
from distil_dagster.engine.processes import ProcessBackend
from distil_dagster.engine.tasks import ProcessTask, SliceRef
from distil_dagster.errors import StepTimeoutError
from distil_dagster.pipeline import Pipeline
from distil_dagster.steps import LoadDataFromDicts

from .faulty_steps import Stall, Tag

pytestmark = pytest.mark.timeout(90)


def _pipeline(cache: Path, marker: Path, mode: str = "sleep") -> Pipeline:
    with Pipeline(name="stall", cache_dir=cache) as pipeline:
        load = LoadDataFromDicts(name="load", data=[{"id": i} for i in range(30)], batch_size=5)
        load >> Stall(name="stall", input_batch_size=5, fault_id=17, heal_marker=str(marker), mode=mode)
    return pipeline


@pytest.mark.parametrize("executor", ["inline", "processes"])
def test_a_stalled_batch_fails_the_run_naming_step_and_batch_then_resumes(tmp_path: Path, executor: str) -> None:
    marker = tmp_path / "healed"
    config = EngineConfig(step_timeout=1.5)
    with pytest.raises(StepTimeoutError, match=r"Step 'stall' \(replica 0\) took longer than .* 1.5s on batch 3"):
        _pipeline(tmp_path / "cache", marker).run(executor=executor, config=config)
    marker.touch()
    rows = _pipeline(tmp_path / "cache", marker).run(executor=executor, config=config)["default"]["train"]
    assert rows["id"] == list(range(30))
    assert rows["value"] == [i * 10 for i in range(30)]


def test_inline_off_the_main_thread_interrupts_a_python_loop(tmp_path: Path) -> None:
    marker = tmp_path / "healed"
    errors: list[BaseException] = []

    def run() -> None:
        try:
            _pipeline(tmp_path / "cache", marker, mode="spin").run(
                executor="inline", config=EngineConfig(step_timeout=1.0)
            )
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(60)
    marker.touch()  # frees the loop should the limit not have worked
    thread.join()
    assert len(errors) == 1 and isinstance(errors[0], StepTimeoutError), errors


def test_a_batch_waiting_behind_another_in_its_worker_starts_its_step_timeout_when_it_starts(tmp_path: Path) -> None:
    """A lone worker is handed its next batch ahead; that batch's step timeout counts from when
    the worker starts it (its predecessor's result is taken), not from when it was sent."""
    with Pipeline(name="ahead", cache_dir=tmp_path) as pipeline:
        load = LoadDataFromDicts(name="load", data=[{"id": 0}], batch_size=1)
        load >> Tag(name="tag", input_batch_size=1)
    writer = SegmentWriter(tmp_path / "steps" / "load", fsync=False)
    segment, offset, size = append_batch(writer, [{"id": 0}])
    writer.close()
    backend = ProcessBackend(0, False, logging.getLogger("test"), step_timeout=600.0)
    backend.start({"tag": pipeline.dag.step("tag")})
    try:
        tasks = [
            ProcessTask(
                Batch("tag", seq, seq == 1, [], {"load": [(0, 0, 1)]}),
                [[SliceRef(str(segment), size, 0, 1, offset)]],
                str(tmp_path / "steps" / "tag"),
            )
            for seq in (0, 1)
        ]
        for task in tasks:
            backend.submit(task)
        (replica,) = backend.replicas
        assert list(replica.tasks.values()) == tasks, "both batches are with the worker"
        sent = max(replica.started.values())
        taken = time.monotonic()
        first = backend.receive()
        assert first.task is tasks[0] and first.error is None
        assert list(replica.tasks.values()) == [tasks[1]]
        assert replica.started[(False, 1)] >= taken > sent
        assert backend.receive().task is tasks[1]
    finally:
        backend.stop()
