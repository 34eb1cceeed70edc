"""Runtime parameters: step (and model) fields that are set when the pipeline runs.

``RuntimeParameter[T]`` marks a pydantic field as settable through
``pipeline.run(parameters={step_name: {field: value}})``, exactly as in distilabel.
A runtime parameter whose default is ``None`` must be given at run time.
"""

from __future__ import annotations

from typing import Annotated, Any, TypeVar, Union, get_args, get_origin

from pydantic import BaseModel, Field
from pydantic.fields import FieldInfo

__all__ = [
    "OptionalRuntimeParameter",
    "RuntimeParameter",
    "RuntimeParameterInfo",
    "RuntimeParametersMixin",
    "RuntimeParametersNames",
]

_T = TypeVar("_T")
_RUNTIME_PARAMETER_ANNOTATION = "distil_dagster_runtime_parameter"

RuntimeParameter = Annotated[Union[_T, None], Field(default=None), _RUNTIME_PARAMETER_ANNOTATION]
"""Marks a field as a runtime parameter: ``factor: RuntimeParameter[int] = 2``."""

# ``RuntimeParameter[T] | None`` would do, but pydantic warns about the ``Field(default=None)``
# inside ``RuntimeParameter`` when it is a member of a union.
OptionalRuntimeParameter = Union[Annotated[Union[_T, None], _RUNTIME_PARAMETER_ANNOTATION], None]
"""An optional runtime parameter (may stay ``None``; accepts ``Field(default_factory=...)``)."""

RuntimeParametersNames = dict[str, "bool | RuntimeParametersNames"]
"""Runtime parameter name -> optional (or the nested names of a nested mixin)."""

RuntimeParameterInfo = dict[str, Any]


def is_runtime_parameter(field: FieldInfo) -> tuple[bool, bool]:
    """Return ``(is_runtime_parameter, is_optional)`` for a pydantic field."""
    if _RUNTIME_PARAMETER_ANNOTATION in field.metadata:
        return True, field.default is not None
    for arg in get_args(field.annotation):
        if get_origin(arg) is Annotated and _RUNTIME_PARAMETER_ANNOTATION in get_args(arg)[1:]:
            return True, True
    return False, False


class RuntimeParametersMixin(BaseModel):
    """Gives a pydantic model distilabel's runtime-parameter API."""

    @property
    def runtime_parameters_names(self) -> RuntimeParametersNames:
        """Runtime parameter names mapped to whether they are optional (nested for mixins)."""
        names: RuntimeParametersNames = {}
        for name, field in type(self).model_fields.items():
            is_param, optional = is_runtime_parameter(field)
            if is_param:
                names[name] = optional
                continue
            value = getattr(self, name, None)
            if isinstance(value, RuntimeParametersMixin):
                names[name] = value.runtime_parameters_names
        return names

    def get_runtime_parameters_info(self) -> list[RuntimeParameterInfo]:
        """Describe every runtime parameter: ``name``, ``optional`` and ``description``."""
        info: list[RuntimeParameterInfo] = []
        fields = type(self).model_fields
        for name, optional in self.runtime_parameters_names.items():
            if isinstance(optional, dict):
                value = getattr(self, name)
                assert isinstance(value, RuntimeParametersMixin)
                info.append({"name": name, "runtime_parameters_info": value.get_runtime_parameters_info()})
                continue
            entry: RuntimeParameterInfo = {"name": name, "optional": optional}
            description = fields[name].description
            if description:
                entry["description"] = description
            info.append(entry)
        return info

    def unknown_runtime_parameters(self, values: dict[str, Any], prefix: str = "") -> list[str]:
        """Return the dotted names in ``values`` that are not runtime parameters."""
        names = self.runtime_parameters_names
        unknown: list[str] = []
        for key, value in values.items():
            if key not in names:
                unknown.append(prefix + key)
            elif isinstance(names[key], dict):
                nested = getattr(self, key)
                if not isinstance(value, dict):
                    unknown.append(prefix + key)
                else:
                    unknown.extend(nested.unknown_runtime_parameters(value, f"{prefix}{key}."))
        return unknown

    def set_runtime_parameters(self, values: dict[str, Any]) -> None:
        """Set runtime parameters (validated); nested mixins receive their sub-dict."""
        names = self.runtime_parameters_names
        for key, value in values.items():
            if isinstance(names.get(key), dict) and isinstance(value, dict):
                getattr(self, key).set_runtime_parameters(value)
            else:
                setattr(self, key, value)

    def missing_runtime_parameters(self, prefix: str = "") -> list[str]:
        """Names of required runtime parameters that still have no value."""
        missing: list[str] = []
        for name, optional in self.runtime_parameters_names.items():
            if isinstance(optional, dict):
                missing.extend(getattr(self, name).missing_runtime_parameters(f"{prefix}{name}."))
            elif not optional and getattr(self, name) is None:
                missing.append(prefix + name)
        return missing
