"""``StepResources`` become Ray actor options, and Ray places the replicas with them; a step with
``concurrent_batches() > 1`` computes that many batches at once in its actor."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from distil_dagster.engine.config import EngineConfig
from distil_dagster.engine.ray_backend import actor_options
from distil_dagster.pipeline import Pipeline
from distil_dagster.steps import LoadDataFromDicts, StepResources
from tests.engine.faulty_steps import Tag

from .ray_steps import AssignedResources, MeetInPairs


def test_step_resources_map_to_actor_options() -> None:
    resources = StepResources(replicas=2, cpus=2, gpus=1, memory=2**30, resources={"slot": 1})
    assert actor_options(Tag(name="t", resources=resources)) == {
        "num_cpus": 2,
        "num_gpus": 1,
        "memory": 2**30,
        "resources": {"slot": 1},
    }
    assert actor_options(Tag(name="t")) == {}


@pytest.mark.timeout(60)
def test_ray_places_each_replica_with_its_resources(tmp_path: Path, ray_cluster: str) -> None:
    with Pipeline(name="ray-placement", cache_dir=tmp_path) as pipeline:
        load = LoadDataFromDicts(name="load", data=[{"id": i} for i in range(20)], batch_size=5)
        load >> AssignedResources(name="probe", resources=StepResources(replicas=2, cpus=1, resources={"slot": 1}))
    rows = pipeline.run(executor="ray")["default"]["train"].to_list()
    assert {json.dumps(json.loads(r["assigned"]), sort_keys=True) for r in rows} == {'{"CPU": 1.0, "slot": 1.0}'}


@pytest.mark.timeout(60)
def test_a_step_with_concurrent_batches_runs_them_at_once_in_one_actor(tmp_path: Path, ray_cluster: str) -> None:
    with Pipeline(name="ray-concurrent", cache_dir=tmp_path) as pipeline:
        load = LoadDataFromDicts(name="load", data=[{"id": i} for i in range(8)], batch_size=4)
        load >> MeetInPairs(name="meet", input_batch_size=4)
    rows = pipeline.run(executor="ray", config=EngineConfig(step_retries=0))["default"]["train"].to_list()
    assert [r["met"] for r in rows] == [True] * 8
