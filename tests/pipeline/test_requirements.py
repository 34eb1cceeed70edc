"""Requirements as in distilabel: ``Pipeline(requirements=...)`` and ``@requirements`` on step classes,
gathered by ``pipeline.requirements`` and checked before any work of a run.

distilabel 1.5.3 calls a requirement with a version specifier missing unless the installed version
is spelled exactly like the specifier (``pytest>=1`` with pytest 8 is "missing"); here the version
is tested against the specifier.
"""

from __future__ import annotations

from importlib.metadata import version
from pathlib import Path

import pytest
import yaml

from distil_dagster.errors import MissingRequirementsError, PipelineValidationError
from distil_dagster.pipeline import Pipeline
from distil_dagster.pipeline.serialization import dump_yaml, load_pipeline
from distil_dagster.steps import LoadDataFromDicts, StepInput, step
from distil_dagster.steps.typing import StepOutput
from distil_dagster.utils.requirements import requirements

ABSENT = "distil-dagster-absent-package"


@requirements(["pytest>=1", "pyarrow"])
@step(inputs=["id"], outputs=["twice"])
def Twice(inputs: StepInput) -> StepOutput:
    for row in inputs:
        row["twice"] = 2 * row["id"]
    yield inputs


@requirements([ABSENT, f"{ABSENT}-other; python_version < '3'"])
@step(inputs=["id"], outputs=["odd"])
def NeedsAbsent(inputs: StepInput) -> StepOutput:
    yield inputs


def _build(cache_dir: Path, step_class: type = Twice, pipeline_requirements: list[str] | None = None) -> Pipeline:
    with Pipeline(name="requirements", cache_dir=cache_dir, requirements=pipeline_requirements) as pipeline:
        LoadDataFromDicts(name="load", data=[{"id": i} for i in range(3)]) >> step_class(name="step")
    return pipeline


def test_the_pipeline_gathers_its_own_and_its_steps_requirements(tmp_path: Path, rows) -> None:
    pipeline = _build(tmp_path, pipeline_requirements=["datasets", "pyarrow"])

    assert pipeline.requirements == ["datasets", "pyarrow", "pytest>=1"]
    assert pipeline.requirements_to_install() == []
    assert rows(pipeline.run(executor="inline")) == [{"id": i, "twice": 2 * i} for i in range(3)]


def test_an_unmet_requirement_fails_the_run_before_any_work_naming_who_needs_it(tmp_path: Path) -> None:
    pipeline = _build(tmp_path, NeedsAbsent, pipeline_requirements=["pytest<1"])

    with pytest.raises(MissingRequirementsError) as raised:
        pipeline.run(executor="inline")

    assert raised.value.problems == [
        f"Pipeline 'requirements' requires 'pytest<1': installed {version('pytest')}.",
        f"Step 'step' requires '{ABSENT}': not installed.",
    ]
    assert raised.value.requirements == [ABSENT, "pytest<1"]
    assert f"pip install '{ABSENT}' 'pytest<1'" in str(raised.value)
    assert isinstance(raised.value, ModuleNotFoundError)  # what distilabel raises
    assert pipeline.requirements_to_install() == [ABSENT, "pytest<1"]
    assert not tmp_path.exists() or not any(tmp_path.rglob("commits.jsonl"))


def test_a_string_that_is_not_a_requirement_is_refused_where_it_is_written() -> None:
    with pytest.raises(ValueError, match=r"Step class 'Broken': requirement 'not a requirement!' is not a valid"):

        @requirements(["not a requirement!"])
        @step(inputs=["id"])
        def Broken(inputs: StepInput) -> StepOutput:
            yield inputs

    with pytest.raises(PipelineValidationError, match=r"Pipeline 'p': requirement 3 is not a string"):
        Pipeline(name="p", requirements=[3])  # type: ignore[list-item]


def test_requirements_travel_in_pipeline_yaml(tmp_path: Path) -> None:
    pipeline = _build(tmp_path, pipeline_requirements=["datasets"])
    data = yaml.safe_load(dump_yaml(pipeline))

    assert data["requirements"] == ["datasets", "pyarrow", "pytest>=1"]
    assert load_pipeline(data).requirements == ["datasets", "pyarrow", "pytest>=1"]
    with pytest.raises(PipelineValidationError, match=r"doc\.yaml: 'requirements': requirement 'a b c' is not a valid"):
        load_pipeline({**data, "requirements": ["a b c"]}, source="doc.yaml")
    with pytest.raises(PipelineValidationError, match=r"doc\.yaml: 'requirements' must be a list of strings"):
        load_pipeline({**data, "requirements": "datasets"}, source="doc.yaml")
