"""``DeduplicateRows``: drop exact duplicates on chosen columns, keeping the first occurrence."""

from __future__ import annotations

import json
from typing import Any

from pydantic import Field

from distil_dagster.steps.base import GlobalStep, StepInput
from distil_dagster.steps.typing import StepOutput

__all__ = ["DeduplicateRows"]


def _key(row: dict[str, Any], columns: list[str] | None) -> str:
    """A hashable, order-stable key of the row's values on ``columns`` (all columns if ``None``)."""
    values = row if columns is None else {c: row.get(c) for c in columns}
    return json.dumps(values, sort_keys=True, ensure_ascii=False, default=repr)


class DeduplicateRows(GlobalStep):
    """Keep the first row of every group of rows equal on ``columns`` (a global step).

    Values are compared by their JSON form, so lists and dicts compare by content; ``1`` and
    ``1.0`` differ.

    Attributes:
        columns: the columns that must all be equal for rows to be duplicates (default: every
            column of the rows).

    Examples:
        >>> dedup = DeduplicateRows(columns=["instruction"])  # doctest: +SKIP
    """

    columns: list[str] | None = Field(default=None, min_length=1)

    @property
    def inputs(self) -> list[str]:
        return list(self.columns or [])

    def process(self, *inputs: StepInput) -> StepOutput:
        """Yield the rows whose key was not seen before, in input order."""
        seen: set[str] = set()
        unique = []
        for row in inputs[0]:
            key = _key(row, self.columns)
            if key not in seen:
                seen.add(key)
                unique.append(row)
        yield unique
