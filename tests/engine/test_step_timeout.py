"""A batch that runs past ``EngineConfig.step_timeout`` fails the run clearly, and the run resumes."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from distil_dagster.engine.config import EngineConfig
from distil_dagster.errors import StepTimeoutError
from distil_dagster.pipeline import Pipeline
from distil_dagster.steps import LoadDataFromDicts, Step, StepInput
from distil_dagster.steps.typing import StepOutput

from .faulty_steps import Stall

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


class Slow(Step):
    """Takes ``seconds`` per batch (a slow model, say); adds nothing."""

    seconds: float = 2.0

    @property
    def inputs(self) -> list[str]:
        return ["id"]

    def process(self, *inputs: StepInput) -> StepOutput:
        time.sleep(self.seconds)
        yield inputs[0]


def test_a_batch_waiting_behind_another_in_its_worker_is_not_timed_out_for_its_wait(tmp_path: Path) -> None:
    """A lone worker is handed its next batch ahead; the step timeout counts from when it starts it.

    Each batch takes 2 s against a 3 s limit; the second waited 2 s in the worker's pipe first.
    """
    with Pipeline(name="slow", cache_dir=tmp_path) as pipeline:
        load = LoadDataFromDicts(name="load", data=[{"id": i} for i in range(3)], batch_size=3)
        load >> Slow(name="slow", input_batch_size=1)
    rows = pipeline.run(executor="processes", config=EngineConfig(step_timeout=3.0))["default"]["train"]
    assert rows["id"] == [0, 1, 2]
