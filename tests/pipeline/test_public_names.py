"""Every name a pipeline author imports is importable from its documented module."""

from __future__ import annotations

import importlib

import pytest

from distil_dagster.engine.config import EngineConfig

NAMES = [
    ("distil_dagster.pipeline", "Pipeline"),
    ("distil_dagster.pipeline", "sample_n_steps"),
    ("distil_dagster.pipeline", "routing_batch_function"),
    ("distil_dagster.steps", "Step"),
    ("distil_dagster.steps", "GeneratorStep"),
    ("distil_dagster.steps", "GlobalStep"),
    ("distil_dagster.steps", "StepInput"),
    ("distil_dagster.steps", "step"),
    ("distil_dagster.steps", "StepResources"),
    ("distil_dagster.steps", "LoadDataFromDicts"),
    ("distil_dagster.steps", "KeepColumns"),
    ("distil_dagster.steps", "GroupColumns"),
    ("distil_dagster.steps", "CombineOutputs"),
    ("distil_dagster.steps", "ExpandColumns"),
    ("distil_dagster.steps.typing", "StepOutput"),
    ("distil_dagster.typing", "StepOutput"),
    ("distil_dagster.typing", "ChatType"),
    ("distil_dagster.typing", "FormattedInput"),
    ("distil_dagster.typing", "GenerateOutput"),
    ("distil_dagster.typing", "LLMStatistics"),
    ("distil_dagster.typing", "LoadGroups"),
    ("distil_dagster.llms", "OpenAILLM"),  # distilabel's older path for distilabel.models
    ("distil_dagster.llms", "LLM"),
    ("distil_dagster.mixins.runtime_parameters", "RuntimeParameter"),
    ("distil_dagster.distiset", "Distiset"),
    ("distil_dagster.distiset", "create_distiset"),
    ("distil_dagster.errors", "PipelineValidationError"),
    ("distil_dagster.errors", "StepLoadError"),
    ("distil_dagster.errors", "GlobalStepError"),
    ("distil_dagster.errors", "CacheCorruptedError"),
    ("distil_dagster.engine.config", "EngineConfig"),
]


@pytest.mark.parametrize(("module", "name"), NAMES, ids=[f"{m}.{n}" for m, n in NAMES])
def test_name_is_importable_and_exported(module: str, name: str) -> None:
    mod = importlib.import_module(module)

    assert getattr(mod, name) is not None
    assert name in mod.__all__


def test_engine_config_has_the_documented_fields_and_defaults() -> None:
    config = EngineConfig()

    assert config.step_retries == 2
    assert config.fsync is True
    assert config.lock_timeout > 0
    assert EngineConfig(step_retries=0, fsync=False, lock_timeout=1.5).model_dump(
        include={"step_retries", "fsync", "lock_timeout"}
    ) == {
        "step_retries": 0,
        "fsync": False,
        "lock_timeout": 1.5,
    }


def test_engine_config_refuses_negative_retries() -> None:
    with pytest.raises(ValueError, match="step_retries"):
        EngineConfig(step_retries=-1)
