"""The generated run config: defaults as defined, secrets hidden, only overrides reach the engine."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import Field, SecretStr

from distil_dagster.dagster import build_run_config
from distil_dagster.examples.pipelines import build_instructions_pipeline
from distil_dagster.mixins.runtime_parameters import RuntimeParameter
from distil_dagster.pipeline import Pipeline
from distil_dagster.steps import LoadDataFromDicts, Step, StepInput
from distil_dagster.steps.typing import StepOutput

pytestmark = pytest.mark.timeout(60)


class Remote(Step):
    """Stands in for an API-backed task with a secret and a nested runtime parameter."""

    api_key: RuntimeParameter[SecretStr] = Field(default=SecretStr("s3cret"), description="The API key.")
    temperature: RuntimeParameter[float] = 0.7

    @property
    def outputs(self) -> list[str]:
        return ["answer"]

    def process(self, *inputs: StepInput) -> StepOutput:
        yield inputs[0]


def test_defaults_are_the_pipeline_as_defined(tmp_path: Path) -> None:
    run_config = build_run_config(build_instructions_pipeline(tmp_path))

    defaults = run_config.config_class().model_dump()
    assert defaults["concise"]["template"] == "In short: {instruction}"
    assert defaults["load_instructions"]["batch_size"] == 4
    assert defaults["concise"]["resources"]["replicas"] == 1
    assert run_config.parameters(defaults) == {}


def test_only_overrides_reach_the_engine(tmp_path: Path) -> None:
    run_config = build_run_config(build_instructions_pipeline(tmp_path))
    values = run_config.config_class().model_dump()
    values["concise"]["template"] = "TL;DR: {instruction}"
    values["socratic"]["resources"]["replicas"] = 2

    assert run_config.parameters(values) == {
        "concise": {"template": "TL;DR: {instruction}"},
        "socratic": {"resources": {"replicas": 2}},
    }


def test_secrets_never_show_as_defaults_and_step_names_become_identifiers(tmp_path: Path) -> None:
    with Pipeline(name="remote", cache_dir=tmp_path) as pipeline:
        LoadDataFromDicts(name="load-data", data=[{"id": 1}]) >> Remote(name="remote.v2")
    run_config = build_run_config(pipeline)

    defaults = run_config.config_class().model_dump()
    assert "s3cret" not in repr(run_config.config_class.to_config_schema().as_field().default_value)
    assert defaults["remote_v2"]["api_key"] is None
    assert defaults["remote_v2"]["temperature"] == 0.7
    assert "load_data" in defaults
    assert run_config.parameters({"remote_v2": {**defaults["remote_v2"], "api_key": "other"}}) == {
        "remote.v2": {"api_key": "other"}
    }
