"""``ExpandColumns``: one row per element of list columns."""

from __future__ import annotations

import json
from typing import Any

from pydantic import field_validator

from distil_dagster.steps.base import Step, StepInput
from distil_dagster.steps.typing import StepOutput

__all__ = ["ExpandColumns"]


class ExpandColumns(Step):
    """Expand list columns into rows: a row with ``[a, b]`` becomes two rows.

    Attributes:
        columns: columns to expand (a list, or a mapping column -> new column name).
        encoded: columns (or ``True`` for all) holding JSON-encoded lists.
    """

    columns: dict[str, str]
    encoded: bool | list[str] = False

    @field_validator("columns", mode="before")
    @classmethod
    def _columns_as_dict(cls, value: Any) -> Any:
        return {c: c for c in value} if isinstance(value, list) else value

    @property
    def inputs(self) -> list[str]:
        return list(self.columns)

    @property
    def outputs(self) -> list[str]:
        return [self.columns[c] for c in self.columns]

    def _encoded(self, column: str) -> bool:
        return self.encoded is True or (isinstance(self.encoded, list) and column in self.encoded)

    def process(self, *inputs: StepInput) -> StepOutput:
        expanded = []
        for row in inputs[0]:
            values = {c: json.loads(row[c]) if self._encoded(c) else row[c] for c in self.columns}
            length = max((len(v) for v in values.values()), default=0)
            for i in range(length):
                new = {k: v for k, v in row.items() if k not in self.columns}
                for column, target in self.columns.items():
                    items = values[column]
                    new[target] = items[i] if i < len(items) else None
                expanded.append(new)
        yield expanded
