"""Dagster-safe names for pipelines and steps.

Step and pipeline names may hold ``-`` and ``.`` (they are folder names in the cache); Dagster op
names, graph names, group names and config keys must be identifiers. Each step gets one
identifier, used both as its op name and as its key in the run config.
"""

from __future__ import annotations

import re

from distil_dagster.pipeline.base import Pipeline

__all__ = ["identifier", "step_identifiers"]

_NOT_WORD = re.compile(r"[^A-Za-z0-9_]")


def identifier(name: str) -> str:
    """``name`` with every non-word character replaced by ``_`` (prefixed when it starts with a digit)."""
    safe = _NOT_WORD.sub("_", name) or "_"
    return f"_{safe}" if safe[0].isdigit() else safe


def step_identifiers(pipeline: Pipeline) -> dict[str, str]:
    """Step name -> a unique identifier (op name and run-config key), in topological order.

    Identifiers never start with ``_``: run-config keys are pydantic fields, which cannot.
    """
    taken: set[str] = set()
    names: dict[str, str] = {}
    for step in pipeline.dag.topological_order():
        base = identifier(step)
        base = candidate = f"step{base}" if base.startswith("_") else base
        suffix = 2
        while candidate in taken:
            candidate = f"{base}_{suffix}"
            suffix += 1
        taken.add(candidate)
        names[step] = candidate
    return names
