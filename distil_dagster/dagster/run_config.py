"""Run config: every step's runtime parameters as one generated ``Config``, mapped onto the graph.

The whole-pipeline config (one field per step, one sub-field per runtime parameter, defaults
from the pipeline as defined) is the graph's ``ConfigMapping`` schema, so the launchpad shows it
and the same run config is valid for every subset. The mapping hands every op the same
``{"parameters": {step: {param: value}}}``: only the values that differ from the defaults, so the
engine runs on the pipeline as defined plus the overrides. Secrets (``SecretStr``) never show as
defaults; pass them as ``{"env": "VAR"}``.
"""

from __future__ import annotations

import types
from collections.abc import Mapping
from typing import Annotated, Any, Optional, Union, get_args, get_origin

import pydantic
from dagster import Config, ConfigMapping, Field, Permissive
from pydantic import SecretStr

from distil_dagster.dagster.names import identifier, step_identifiers
from distil_dagster.mixins.runtime_parameters import RuntimeParametersMixin
from distil_dagster.pipeline.base import Pipeline

__all__ = ["OP_CONFIG_SCHEMA", "PipelineRunConfig", "build_run_config"]

Parameters = dict[str, dict[str, Any]]

OP_CONFIG_SCHEMA = {"parameters": Field(Permissive(), is_required=False, default_value={})}
"""Each step op's config: the runtime parameters of the whole run (filled in by the mapping)."""

_SCALARS = (str, int, float, bool)


class PipelineRunConfig:
    """The generated config class of a pipeline and the mapping onto its graph.

    Attributes:
        config_class: the ``Config`` subclass (one field per step with runtime parameters).
        defaults: its default values, by step name (what an empty run config means).
        mapping: the ``ConfigMapping`` to give the ``GraphDefinition``.
    """

    def __init__(
        self, config_class: type[Config], defaults: Parameters, field_to_step: dict[str, str], op_names: dict[str, str]
    ) -> None:
        self.config_class = config_class
        self.defaults = defaults
        self._field_to_step = field_to_step
        self._op_names = op_names
        self.mapping = ConfigMapping(
            config_fn=self._to_op_config,
            config_schema=config_class.to_config_schema(),
        )

    def parameters(self, config: Mapping[str, Any]) -> Parameters:
        """Runtime parameters (overrides of the defaults only) from a processed run config."""
        overrides: Parameters = {}
        for field, values in config.items():
            step = self._field_to_step.get(field)
            if step is None or not isinstance(values, Mapping):
                continue
            changed = _changed(values, self.defaults.get(step, {}))
            if changed:
                overrides[step] = changed
        return overrides

    def _to_op_config(self, config: Mapping[str, Any]) -> dict[str, Any]:
        parameters = self.parameters(config)
        return {self._op_names[step]: {"config": {"parameters": parameters}} for step in self._field_to_step.values()}


def _changed(values: Mapping[str, Any], defaults: Mapping[str, Any]) -> dict[str, Any]:
    changed: dict[str, Any] = {}
    for key, value in values.items():
        default = defaults.get(key)
        if isinstance(value, Mapping) and isinstance(default, Mapping):
            nested = _changed(value, default)
            if nested:
                changed[key] = nested
        elif value != default:
            changed[key] = value
    return changed


def _plain(value: Any) -> bool:
    """Whether ``value`` can be shown as a config default (JSON-like, no secrets)."""
    if value is None or isinstance(value, _SCALARS):
        return True
    if isinstance(value, list):
        return all(_plain(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain(v) for k, v in value.items())
    return False


def _config_type(annotation: Any) -> Any:
    """A type Dagster config understands for a pydantic annotation (``Any`` when it has none)."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return _config_type(get_args(annotation)[0])
    if origin is Union or origin is types.UnionType:
        args = [a for a in get_args(annotation) if a is not type(None)]
        inner = _config_type(args[0]) if len(args) == 1 else Any
        return Optional[inner]  # noqa: UP045 - a runtime type object, built from a variable
    if annotation is SecretStr:
        return str
    if annotation in _SCALARS:
        return annotation
    if origin is list:
        (item,) = get_args(annotation) or (Any,)
        return list[_config_type(item)]  # type: ignore[misc]  # a runtime type object, built from a variable
    if origin is dict:
        key, value = get_args(annotation) or (str, Any)
        return dict[str, _config_type(value)] if key is str else Any  # type: ignore[misc]  # as above
    return Any


def _model_for(owner: RuntimeParametersMixin, class_name: str) -> tuple[type[Config], dict[str, Any]] | None:
    """A ``Config`` class for the runtime parameters of a step (or nested mixin) and its defaults."""
    fields: dict[str, Any] = {}
    defaults: dict[str, Any] = {}
    model_fields = type(owner).model_fields
    for name, optional in owner.runtime_parameters_names.items():
        value = getattr(owner, name)
        description = model_fields[name].description
        if isinstance(optional, dict) and isinstance(value, RuntimeParametersMixin):
            nested = _model_for(value, f"{class_name}_{identifier(name)}")
            if nested is not None:
                nested_class, defaults[name] = nested
                fields[name] = (nested_class, pydantic.Field(default_factory=nested_class, description=description))
            continue
        default = value if _plain(value) else None
        defaults[name] = default
        field_type: Any = Optional[_config_type(model_fields[name].annotation)]  # noqa: UP045 - runtime type object
        fields[name] = (field_type, pydantic.Field(default=default, description=description))
    if not fields:
        return None
    model = pydantic.create_model(class_name, __base__=Config, **fields)
    return model, defaults


def build_run_config(pipeline: Pipeline, op_prefix: str = "") -> PipelineRunConfig:
    """Generate the run config class of ``pipeline`` (runtime parameters as defined now).

    ``op_prefix`` is the prefix of the step ops' names (``<prefix><step identifier>``).
    """
    ids = step_identifiers(pipeline)
    prefix = "".join(part.capitalize() for part in identifier(pipeline.name).split("_")) or "Pipeline"
    fields: dict[str, Any] = {}
    defaults: Parameters = {}
    for step, field in ids.items():
        built = _model_for(pipeline.dag.step(step), f"{prefix}_{field}_Parameters")
        if built is None:
            continue
        model, defaults[step] = built
        description = f"Runtime parameters of step '{step}' ({type(pipeline.dag.step(step)).__name__})."
        fields[field] = (model, pydantic.Field(default_factory=model, description=description))
    config_class = pydantic.create_model(f"{prefix}RunConfig", __base__=Config, **fields)
    return PipelineRunConfig(
        config_class,
        defaults,
        {field: step for step, field in ids.items()},
        {step: f"{op_prefix}{field}" for step, field in ids.items()},
    )
