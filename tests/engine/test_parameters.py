"""Runtime parameters given to ``run(parameters={step: {...}})`` reach the steps (distilabel 1.5.3).

``@step`` keyword parameters, ``RuntimeParameter`` fields of ``Step`` subclasses, ``batch_size``
and ``input_batch_size`` are all set this way; a required one that is missing stops the run.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import Field

from distil_dagster.errors import PipelineValidationError
from distil_dagster.mixins.runtime_parameters import RuntimeParameter
from distil_dagster.pipeline import Pipeline
from distil_dagster.steps import LoadDataFromDicts, Step, StepInput, step
from distil_dagster.steps.typing import StepOutput


@step(inputs=["id"], outputs=["scaled"])
def Scale(inputs: StepInput, factor: RuntimeParameter[int] = 2) -> StepOutput:
    for row in inputs:
        row["scaled"] = row["id"] * factor
    yield inputs


class Shift(Step):
    """Adds ``shifted = id + shift`` and ``shift_len`` (rows in the batch)."""

    shift: RuntimeParameter[int] = Field(default=0, description="Added to every id.")

    @property
    def inputs(self) -> list[str]:
        return ["id"]

    @property
    def outputs(self) -> list[str]:
        return ["shifted", "shift_len"]

    def process(self, inputs: StepInput) -> StepOutput:
        yield [{**row, "shifted": row["id"] + self.shift, "shift_len": len(inputs)} for row in inputs]


class NeedsPrefix(Step):
    """A step with a required runtime parameter (no default)."""

    prefix: RuntimeParameter[str] = Field(default=None, description="Put before every id.")

    @property
    def inputs(self) -> list[str]:
        return ["id"]

    @property
    def outputs(self) -> list[str]:
        return ["label"]

    def process(self, inputs: StepInput) -> StepOutput:
        yield [{**row, "label": f"{self.prefix}{row['id']}"} for row in inputs]


def _pipeline(cache_dir: Path) -> Pipeline:
    with Pipeline(name="params", cache_dir=cache_dir, seed=0) as pipeline:
        gen = LoadDataFromDicts(name="gen", data=[{"id": i} for i in range(6)], batch_size=4)
        gen >> Scale(name="scale") >> Shift(name="shift", input_batch_size=4)
    return pipeline


def test_defaults_apply_without_parameters(tmp_path: Path, rows) -> None:
    result = rows(_pipeline(tmp_path).run())

    assert [(r["id"], r["scaled"], r["shifted"]) for r in result] == [(i, 2 * i, i) for i in range(6)]


def test_parameters_reach_a_decorated_step_kwarg_and_a_step_field(tmp_path: Path, rows) -> None:
    pipeline = _pipeline(tmp_path)

    result = rows(pipeline.run(parameters={"scale": {"factor": 5}, "shift": {"shift": 100}}))

    assert [(r["id"], r["scaled"], r["shifted"]) for r in result] == [(i, 5 * i, i + 100) for i in range(6)]
    assert pipeline.dag.step("scale").factor == 5


def test_batch_sizes_are_runtime_parameters(tmp_path: Path, cache, rows) -> None:
    pipeline = _pipeline(tmp_path)

    result = rows(pipeline.run(parameters={"gen": {"batch_size": 1}, "shift": {"input_batch_size": 5}}))

    assert [r["shift_len"] for r in result] == [5, 5, 5, 5, 5, 1]
    assert cache(pipeline).batch_sizes("gen") == [1] * 6


def test_invalid_parameter_value_is_refused_before_any_work(tmp_path: Path) -> None:
    pipeline = _pipeline(tmp_path / "cache")

    with pytest.raises(PipelineValidationError, match=r"Step 'scale': runtime parameter 'factor' is invalid"):
        pipeline.run(parameters={"scale": {"factor": "many"}})

    assert not (tmp_path / "cache").exists()


def test_missing_required_parameter_is_refused_and_naming_it_runs(tmp_path: Path, rows) -> None:
    with Pipeline(name="required", cache_dir=tmp_path / "cache", seed=0) as pipeline:
        LoadDataFromDicts(name="gen", data=[{"id": 1}, {"id": 2}]) >> NeedsPrefix(name="label")

    with pytest.raises(PipelineValidationError, match=r"Step 'label': runtime parameter 'prefix' is required"):
        pipeline.run()
    assert not (tmp_path / "cache").exists()

    result = rows(pipeline.run(parameters={"label": {"prefix": "row-"}}))

    assert [r["label"] for r in result] == ["row-1", "row-2"]


def test_pipeline_lists_the_runtime_parameters_of_every_step() -> None:
    with Pipeline(name="info") as pipeline:
        LoadDataFromDicts(name="gen", data=[{"id": 1}]) >> Scale(name="scale")

    info = pipeline.get_runtime_parameters_info()

    assert list(info) == ["gen", "scale"]
    assert [p["name"] for p in info["gen"]] == ["resources", "batch_size"]
    assert [p["name"] for p in info["scale"]] == ["resources", "input_batch_size", "factor"]


def test_unknown_executor_is_refused_before_any_work(tmp_path: Path) -> None:
    pipeline = _pipeline(tmp_path / "cache")

    with pytest.raises(PipelineValidationError, match=r"Unknown executor 'threads'"):
        pipeline.run(executor="threads")  # type: ignore[arg-type]  # the point of the test

    assert not (tmp_path / "cache").exists()
