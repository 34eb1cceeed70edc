"""The cache signature: a SHA-1 over a canonical form of everything that defines the output.

Covered: step names, classes and parameters (runtime parameter values included, loader data
included), mappings, batch sizes, connections, routing functions and the pipeline seed.
Excluded: execution resources (replicas, devices), ``use_cache`` and secrets (``SecretStr``).
"""

from __future__ import annotations

import enum
import hashlib
import json
from collections.abc import Iterable
from pathlib import PurePath
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, SecretStr

if TYPE_CHECKING:
    from distil_dagster.pipeline.dag import DAG
    from distil_dagster.steps.base import _Step

__all__ = ["SIGNATURE_VERSION", "canonical", "dag_signature", "step_fingerprint"]

SIGNATURE_VERSION = 1
_EXCLUDED_FIELDS = {"resources", "pipeline", "use_cache"}


class _Secret:
    """Marker left where a secret was, so secrets never reach hashes, YAML or logs."""


def canonical(value: Any) -> Any:
    """A JSON-able, order-stable form of ``value`` (secrets removed)."""
    if isinstance(value, SecretStr):
        return None
    if isinstance(value, BaseModel):
        return canonical(value.model_dump())
    if isinstance(value, dict):
        return {str(k): canonical(v) for k, v in value.items() if not isinstance(v, SecretStr)}
    if isinstance(value, (list, tuple)):
        return [canonical(v) for v in value]
    if isinstance(value, (set, frozenset)):
        return sorted((canonical(v) for v in value), key=repr)
    if isinstance(value, enum.Enum):
        return canonical(value.value)
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, bytes):
        return {"sha1": hashlib.sha1(value).hexdigest()}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return {"type": f"{type(value).__module__}.{type(value).__qualname__}", "repr": repr(value)}


def step_params(step: _Step) -> dict[str, Any]:
    """The step's fields that define its output, in canonical form."""
    exclude = _EXCLUDED_FIELDS | set(getattr(step, "signature_exclude", ()))
    dumped = {name: getattr(step, name) for name in type(step).model_fields if name not in exclude}
    data: dict[str, Any] = canonical(dumped)
    data.update(step.signature_extra())
    return data


def step_fingerprint(step: _Step) -> dict[str, Any]:
    """Name, class and output-defining parameters of one step."""
    cls = type(step)
    return {"name": step.name, "class": f"{cls.__module__}.{cls.__qualname__}", "params": step_params(step)}


def dag_signature(dag: DAG, seed: int, names: Iterable[str] | None = None) -> str:
    """SHA-1 of the (sub-)DAG made of ``names`` (default: every step)."""
    selected = set(dag.names if names is None else names)
    form = {
        "version": SIGNATURE_VERSION,
        "seed": seed,
        "steps": [step_fingerprint(dag.step(n)) for n in sorted(selected)],
        "edges": sorted([u, v] for u, v in dag.graph.edges if u in selected and v in selected),
        "routing": sorted(
            ([r.upstream, r.function.dump(), r.targets] for r in dag.routing.values() if r.upstream in selected),
            key=repr,
        ),
    }
    payload = json.dumps(form, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha1(payload.encode("utf-8")).hexdigest()
