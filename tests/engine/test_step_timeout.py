"""A batch that runs past ``EngineConfig.step_timeout`` fails the run clearly, and the run resumes."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from distil_dagster.engine.config import EngineConfig
from distil_dagster.errors import StepTimeoutError
from distil_dagster.pipeline import Pipeline
from distil_dagster.steps import LoadDataFromDicts

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
