"""The behaviour suite over every executor: the same pipelines give identical Distisets inline, in
local processes and on Ray (linear, fan-out/fan-in with a global step, routing with convergence,
replicas, a ``@step`` function, failing rows)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from distil_dagster.distiset import Distiset
from distil_dagster.engine.config import EngineConfig
from distil_dagster.pipeline import Pipeline
from tests.e2e.kill_target import build
from tests.engine.test_failures import _flaky_pipeline
from tests.engine.test_parameters import _pipeline as decorated_step_pipeline

ROWS = 120
EXECUTORS = ["inline", "processes", "ray"]


def _shape(shape: str) -> Callable[[Path], Pipeline]:
    return lambda folder: build(shape, folder, rows=ROWS)


def _failing_rows(folder: Path) -> Pipeline:
    folder.mkdir(parents=True, exist_ok=True)
    return _flaky_pipeline(folder, failing_attempts=1_000, enable_metadata=True)


CASES: dict[str, tuple[Callable[[Path], Pipeline], dict[str, Any]]] = {
    "linear": (_shape("linear"), {}),
    "fanin-global": (_shape("fanin"), {}),
    "routing-convergence": (_shape("routing"), {}),
    "replicas": (_shape("linear"), {"a": {"resources": {"replicas": 2}}, "b": {"resources": {"replicas": 2}}}),
    "decorated-step": (decorated_step_pipeline, {"scale": {"factor": 3}}),
    "failing-rows": (_failing_rows, {}),
}


def _contents(distiset: Distiset) -> dict[str, list[dict[str, Any]]]:
    return {name: dd["train"].to_list() for name, dd in distiset.items()}


@pytest.mark.timeout(120)
@pytest.mark.parametrize("case", list(CASES))
def test_every_executor_gives_the_same_distiset(case: str, tmp_path: Path, ray_cluster: str) -> None:
    make, parameters = CASES[case]
    results = {}
    for executor in EXECUTORS:
        pipeline = make(tmp_path / executor)
        distiset = pipeline.run(parameters, executor=executor, config=EngineConfig(step_retries=0))
        results[executor] = _contents(distiset)
    reference = results["inline"]
    assert reference and all(rows for rows in reference.values())
    for executor in ("processes", "ray"):
        assert results[executor].keys() == reference.keys()
        for leaf, rows in reference.items():
            assert results[executor][leaf] == rows, f"{executor}: leaf {leaf} differs from the inline run"
