"""CUDA device placement, observed without a GPU: the variable each worker sees."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from distil_dagster.engine.config import EngineConfig
from distil_dagster.engine.devices import assign_devices, visible_devices
from distil_dagster.errors import PipelineValidationError
from distil_dagster.pipeline import Pipeline
from distil_dagster.steps import LoadDataFromDicts, StepResources

from .faulty_steps import DeviceProbe


def _pipeline(cache: Path, gpus_a: int, replicas_a: int, gpus_b: int) -> Pipeline:
    with Pipeline(name="devices", cache_dir=cache) as pipeline:
        load = LoadDataFromDicts(name="load", data=[{"id": i} for i in range(64)], batch_size=4)
        a = DeviceProbe(name="a", input_batch_size=2, resources=StepResources(gpus=gpus_a or None, replicas=replicas_a))
        b = DeviceProbe(name="b", input_batch_size=2, resources=StepResources(gpus=gpus_b or None))
        load >> a >> b
    return pipeline


def test_each_gpu_replica_sees_its_own_devices(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,5,6,7")
    rows = _pipeline(tmp_path, gpus_a=1, replicas_a=2, gpus_b=2).run(executor="processes")["default"]["train"].to_list()
    seen_a = {(r["pid_a"], r["devices_a"]) for r in rows}
    seen_b = {(r["pid_b"], r["devices_b"]) for r in rows}
    assert len(seen_a) == 2 and {d for _, d in seen_a} == {"3", "5"}
    assert seen_b == {(rows[0]["pid_b"], "6,7")}


def test_an_explicit_device_list_overrides_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    config = EngineConfig(cuda_devices=[4, 9, 2])
    pipeline = _pipeline(tmp_path, gpus_a=1, replicas_a=1, gpus_b=2)
    rows = pipeline.run(executor="processes", config=config)["default"]["train"].to_list()
    assert {r["devices_a"] for r in rows} == {"4"} and {r["devices_b"] for r in rows} == {"9,2"}


def test_asking_for_more_devices_than_visible_fails_before_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    pipeline = _pipeline(tmp_path, gpus_a=1, replicas_a=2, gpus_b=1)
    with pytest.raises(
        PipelineValidationError, match=r"ask for 3 GPU\(s\).*'a': 1 GPU\(s\) x 2 replica.*2 are visible"
    ):
        pipeline.run(executor="processes")
    assert not list(tmp_path.rglob("*.parquet"))


def test_visible_devices_reads_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2, 3")
    assert visible_devices() == ["2", "3"]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert visible_devices() == []
    assert visible_devices([1]) == ["1"]


def test_steps_without_gpus_get_no_placement(tmp_path: Path) -> None:
    pipeline = _pipeline(tmp_path, gpus_a=0, replicas_a=1, gpus_b=0)
    steps = {n: pipeline.dag.step(n) for n in pipeline.dag.names}
    assert assign_devices(steps, None, logging.getLogger("test")) == {}
