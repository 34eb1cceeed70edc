"""The ``type_info`` of ``pipeline.yaml`` (a module and a qualified name) resolved safely.

A ``pipeline.yaml`` names the classes of its steps, models and routing functions. Resolving a
name never calls anything named in the data: the name must be a dotted path of public
identifiers (no ``__globals__``-style walks), modules of the standard library are refused before
anything is imported (no step, model or routing function lives there, and importing some of them
has side effects), and the caller checks that what it gets is the kind of class it expects
before instantiating it.

A ``pipeline.yaml`` written by distilabel names ``distilabel.*`` classes: each resolves to the
distil_dagster class of the same name (the same module path, else a public module), or is
refused by name when there is none.
"""

from __future__ import annotations

import importlib
import keyword
import sys
from typing import Any

__all__ = ["TypeInfoError", "distilabel_only_fields", "is_distilabel", "resolve_type_info"]


class TypeInfoError(ValueError):
    """A ``type_info`` that is malformed, refused or cannot be imported (the message says which)."""


def _dotted(value: object, public: bool) -> bool:
    if not isinstance(value, str) or not value:
        return False
    parts = value.split(".")
    return all(p.isidentifier() and not keyword.iskeyword(p) and not (public and p.startswith("_")) for p in parts)


def resolve_type_info(type_info: Any, kind: str) -> Any:
    """Import ``type_info["module"]`` and return its attribute ``type_info["name"]`` (dotted).

    Args:
        type_info: ``{"module": ..., "name": ...}`` from the data.
        kind: what the caller expects (``"step class"``), for the messages.

    Raises:
        TypeInfoError: ``type_info`` is not ``{"module": ..., "name": ...}`` with dotted
            identifiers, names a standard-library module, or cannot be imported.
    """
    if not isinstance(type_info, dict):
        raise TypeInfoError(f"type_info must be a mapping with 'module' and 'name', got {type(type_info).__name__}")
    module, name = type_info.get("module"), type_info.get("name")
    label = f"'{module}.{name}'"
    if not _dotted(module, public=False) or not _dotted(name, public=True):
        raise TypeInfoError(f"{label} is not a module path and a public qualified name")
    assert isinstance(module, str) and isinstance(name, str)
    if module.split(".")[0] == "distilabel":
        return _counterpart(module, name, label, kind)
    if module.split(".")[0] in sys.stdlib_module_names:
        raise TypeInfoError(f"{label} is not a {kind} (the standard library holds none; it was not imported)")
    try:
        obj: Any = importlib.import_module(module)
    except Exception as exc:  # a user module may fail to import in any way; report it by name
        raise TypeInfoError(f"cannot import {label} ({type(exc).__name__}: {exc})") from exc
    for part in name.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError as exc:
            raise TypeInfoError(f"cannot import {label} ({exc})") from exc
    return obj


#: Where distil_dagster's counterparts of distilabel's classes are exported.
_PUBLIC = (
    "distil_dagster.steps",
    "distil_dagster.steps.tasks",
    "distil_dagster.models.llms",
    "distil_dagster.models.embeddings",
    "distil_dagster.pipeline",
)


def _counterpart(module: str, name: str, label: str, kind: str) -> Any:
    """The distil_dagster class standing for distilabel's ``module.name`` (a ``pipeline.yaml``
    written by distilabel): the same module path under ``distil_dagster``, else the same name in
    one of the public modules."""
    candidates = ["distil_dagster" + module[len("distilabel") :], *_PUBLIC]
    for candidate in candidates:
        try:
            obj: Any = importlib.import_module(candidate)
            for part in name.split("."):
                obj = getattr(obj, part)
        except (ImportError, AttributeError):
            continue
        return obj
    raise TypeInfoError(f"{label} has no distil_dagster counterpart (no {kind} of that name)")


def is_distilabel(type_info: Any) -> bool:
    """Whether ``type_info`` names a distilabel class (a file distilabel wrote)."""
    return isinstance(type_info, dict) and str(type_info.get("module") or "").split(".")[0] == "distilabel"


_NO_DEFAULT = object()
#: distilabel defaults that ask for what distil_dagster does anyway: ``cuda_devices: auto`` lets the
#: device placement choose, as the engine's placement does for every step.
_NEUTRAL_DEFAULTS: dict[str, Any] = {"cuda_devices": "auto"}


def distilabel_only_fields(cls: type, data: dict[str, Any]) -> dict[str, Any]:
    """``data`` (the fields distilabel wrote for an object of ``cls``) without the fields ``cls``
    lacks that hold nothing (``None``, ``False``, empty, or a default in ``_NEUTRAL_DEFAULTS``).

    Raises:
        TypeInfoError: naming the fields ``cls`` lacks that hold a value.
    """
    fields = getattr(cls, "model_fields", {})
    unknown = {key: value for key, value in data.items() if key not in fields and key != "name"}
    used = sorted(
        key
        for key, value in unknown.items()
        if value not in (None, False, [], {}, "") and _NEUTRAL_DEFAULTS.get(key, _NO_DEFAULT) != value
    )
    if used:
        raise TypeInfoError(
            f"distilabel's {cls.__name__} fields {used} have no distil_dagster counterpart; remove them "
            "from the file to run it without them."
        )
    return {key: value for key, value in data.items() if key not in unknown}
