"""``@requirements([...])``: the packages a step class needs (distilabel's decorator of that name)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from distil_dagster.mixins.requirements import parse_requirements

__all__ = ["requirements"]

S = TypeVar("S", bound=type)


def requirements(requirements: list[str]) -> Callable[[S], S]:
    """Declare the packages (PEP 508 strings, e.g. ``"transformers>=4.40"``) a step class needs.

    The pipeline gathers them (``pipeline.requirements``) and a run with one missing fails before
    any work, naming the step. A string that is not a valid requirement fails here.
    """

    def decorator(step: S) -> S:
        step.requirements = parse_requirements(requirements, f"Step class {step.__name__!r}")  # type: ignore[attr-defined]
        return step

    return decorator
