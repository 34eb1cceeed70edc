"""The Ray backend's failures: load errors, step errors, dead actors, timeouts, placement.

Every failure ends the run promptly with the error class inline execution raises (naming step,
replica and batch, the actor's traceback as ``__cause__``), or recovers within a bound; never a hang.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from distil_dagster.engine.config import EngineConfig
from distil_dagster.errors import (
    GlobalStepError,
    PipelineValidationError,
    RemoteTraceback,
    StepLoadError,
    StepTimeoutError,
    WorkerDiedError,
)
from distil_dagster.pipeline import Pipeline
from distil_dagster.steps import LoadDataFromDicts, StepResources
from tests.engine.faulty_steps import Crash, FailingLoad, Stall, Tag
from tests.engine.test_failures import GlobalFailsWhileFlag

pytestmark = pytest.mark.usefixtures("ray_cluster")


def _ids(rows: int) -> list[dict[str, int]]:
    return [{"id": i} for i in range(rows)]


def _tag_pipeline(cache: Path, rows: int = 40, **tag: object) -> Pipeline:
    with Pipeline(name="ray-tag", cache_dir=cache) as pipeline:
        LoadDataFromDicts(name="load", data=_ids(rows), batch_size=6) >> Tag(name="tag", input_batch_size=4, **tag)
    return pipeline


def test_a_load_failure_names_step_and_replica_with_the_actor_traceback(tmp_path: Path) -> None:
    with Pipeline(name="ray-load-fail", cache_dir=tmp_path) as pipeline:
        LoadDataFromDicts(name="load", data=[{"id": 1}]) >> FailingLoad(name="broken")
    with pytest.raises(
        StepLoadError, match=r"Step 'broken' \(replica 0\) failed to load.*model weights not found"
    ) as info:
        pipeline.run(executor="ray")
    assert isinstance(info.value.__cause__, RemoteTraceback)
    assert "RuntimeError: model weights not found" in info.value.__cause__.text
    assert not list(tmp_path.rglob("*.parquet"))


def test_a_raising_step_is_retried_then_imputed_and_logged_with_its_traceback(tmp_path: Path) -> None:
    pipeline = _tag_pipeline(tmp_path, fault="raise", fault_id=5)
    rows = pipeline.run(executor="ray", config=EngineConfig(step_retries=1))["default"]["train"].to_list()
    assert [r["double"] for r in rows] == [None if 4 <= i < 8 else 2 * i for i in range(40)]
    (log,) = tmp_path.rglob("pipeline.log")
    assert "[tag:0]" in log.read_text() and "ValueError: boom on 5" in log.read_text()


def test_a_raising_global_step_stops_the_run_with_its_error_class(tmp_path: Path) -> None:
    flag = tmp_path / "flag"
    flag.touch()
    with Pipeline(name="ray-global", cache_dir=tmp_path / "cache") as pipeline:
        LoadDataFromDicts(name="gen", data=_ids(10), batch_size=5) >> GlobalFailsWhileFlag(
            name="glob", fail_flag=str(flag)
        )
    with pytest.raises(GlobalStepError, match=r"step 'glob' \(replica 0, batch 0\)") as info:
        pipeline.run(executor="ray")
    assert isinstance(info.value.__cause__, RemoteTraceback)


def test_replicas_are_separate_actors_and_keep_the_order(tmp_path: Path) -> None:
    with Pipeline(name="ray-replicas", cache_dir=tmp_path) as pipeline:
        load = LoadDataFromDicts(name="load", data=_ids(120), batch_size=12)
        load >> Tag(name="tag", input_batch_size=4, resources=StepResources(replicas=2, cpus=1))
    rows = pipeline.run(executor="ray")["default"]["train"].to_list()
    assert [r["double"] for r in rows] == [2 * i for i in range(120)]
    assert len({r["pid"] for r in rows}) == 2


def test_an_actor_killed_mid_batch_is_restarted_and_its_batch_resubmitted(tmp_path: Path) -> None:
    marker = tmp_path / "fired"
    with Pipeline(name="ray-exit-once", cache_dir=tmp_path / "cache") as pipeline:
        load = LoadDataFromDicts(name="load", data=_ids(40), batch_size=6)
        load >> Crash(name="exits", fault="exit", fault_id=9, heal_marker=str(marker), input_batch_size=4)
    rows = pipeline.run(executor="ray")["default"]["train"].to_list()
    assert marker.exists(), "the fault never fired"
    assert [r["double"] for r in rows] == [2 * i for i in range(40)]
    (log,) = (tmp_path / "cache").rglob("pipeline.log")
    assert "The actor of step 'exits' (replica 0) died on batch 2" in log.read_text()


def test_an_actor_dying_on_every_attempt_fails_the_run_naming_step_replica_and_batch(tmp_path: Path) -> None:
    pipeline = _tag_pipeline(tmp_path, fault="exit", fault_id=9)
    start = time.monotonic()
    with pytest.raises(WorkerDiedError, match=r"step 'tag' \(replica 0\) died while processing batch 2, also after 2"):
        pipeline.run(executor="ray")
    assert time.monotonic() - start < 45


def test_a_batch_over_the_step_timeout_kills_the_actor_and_fails_the_run(tmp_path: Path) -> None:
    heal = tmp_path / "healed"
    with Pipeline(name="ray-stall", cache_dir=tmp_path / "cache") as pipeline:
        load = LoadDataFromDicts(name="load", data=_ids(40), batch_size=6)
        load >> Stall(name="stall", fault_id=9, heal_marker=str(heal), input_batch_size=4)
    start = time.monotonic()
    with pytest.raises(
        StepTimeoutError, match=r"Step 'stall' \(replica 0\) took longer than the step timeout of 2s on batch 2"
    ):
        pipeline.run(executor="ray", config=EngineConfig(step_timeout=2))
    assert time.monotonic() - start < 30
    heal.touch()
    rows = pipeline.run(executor="ray", config=EngineConfig(step_timeout=30))["default"]["train"].to_list()
    assert [r["value"] for r in rows] == [10 * i for i in range(40)]


def test_more_gpus_than_the_cluster_has_is_refused_before_any_actor_starts(tmp_path: Path) -> None:
    with Pipeline(name="ray-gpus", cache_dir=tmp_path) as pipeline:
        LoadDataFromDicts(name="load", data=_ids(4)) >> Tag(name="tag", resources=StepResources(gpus=1, replicas=2))
    with pytest.raises(
        PipelineValidationError, match=r"ask for 2 GPU in all; the Ray cluster has 0 \(steps: \['tag'\]\)"
    ):
        pipeline.run(executor="ray")


def test_without_ray_installed_the_ray_executor_is_refused_naming_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # what find_spec reports for a package that is not installed
    with pytest.raises(PipelineValidationError, match=r"pip install 'distil_dagster\[ray\]'"):
        _tag_pipeline(tmp_path).run(executor="ray")
