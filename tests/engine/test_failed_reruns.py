"""Failed rows are not cached as success: later runs recompute them, within a bound."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from distil_dagster.engine.config import EngineConfig
from distil_dagster.pipeline import Pipeline
from distil_dagster.steps import KeepColumns, LoadDataFromDicts

from .faulty_steps import Flaky


def _pipeline(cache: Path, marker: Path, calls: Path) -> Pipeline:
    with Pipeline(name="reruns", cache_dir=cache) as pipeline:
        load = LoadDataFromDicts(name="load", data=[{"id": i} for i in range(20)], batch_size=5)
        flaky = Flaky(name="flaky", input_batch_size=5, fault_id=7, heal_marker=str(marker), calls_log=str(calls))
        keep = KeepColumns(name="keep", columns=["id", "value"], input_batch_size=10)
        load >> flaky >> keep
    return pipeline


def _journal(cache: Path) -> list[dict]:
    (path,) = cache.rglob("commits.jsonl")
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.parametrize("executor", ["inline", "processes"])
def test_a_batch_that_failed_is_recomputed_next_run_with_what_was_built_from_it(tmp_path: Path, executor: str) -> None:
    marker, calls = tmp_path / "healed", tmp_path / "calls.log"
    config = EngineConfig(step_retries=0)
    first = _pipeline(tmp_path, marker, calls).run(executor=executor, config=config)["default"]["train"].to_list()
    assert [r["value"] for r in first][5:10] == [None] * 5
    marker.touch()
    calls.write_text("")
    second = _pipeline(tmp_path, marker, calls).run(executor=executor, config=config)["default"]["train"].to_list()
    assert [r["id"] for r in second] == list(range(20))
    assert [r["value"] for r in second] == [10 * i for i in range(20)]
    assert calls.read_text().split() == ["5"], "only the failed batch is recomputed"
    retracted = [tuple(line["retract"]) for line in _journal(tmp_path) if "retract" in line]
    assert sorted(retracted) == [("flaky", 1), ("keep", 0)]


def test_failed_batches_are_rerun_a_bounded_number_of_times(tmp_path: Path) -> None:
    marker, calls = tmp_path / "never", tmp_path / "calls.log"
    config = EngineConfig(step_retries=0, failed_batch_reruns=2)
    for _ in range(4):
        _pipeline(tmp_path, marker, calls).run(executor="inline", config=config)
    assert calls.read_text().split().count("5") == 3, "first run + 2 reruns, then the imputed rows are final"
    final = [r for r in _journal(tmp_path) if r.get("step") == "flaky" and r.get("seq") == 1]
    assert final[-1]["failed_runs"] == 3
