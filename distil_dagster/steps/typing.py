"""Type aliases of the step API (distilabel's ``distilabel.steps.typing``)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Union

__all__ = ["GeneratorStepOutput", "StepColumns", "StepOutput"]

StepOutput = Iterator[list[dict[str, Any]]]
"""What ``Step.process`` yields: one list of rows per call (only the first yield is used)."""

GeneratorStepOutput = Iterator[tuple[list[dict[str, Any]], bool]]
"""What ``GeneratorStep.process`` yields: ``(rows, is_last_batch)`` pairs."""

StepColumns = Union[list[str], dict[str, bool]]
"""Declared input or output columns: a list (all required) or a mapping column -> required."""
