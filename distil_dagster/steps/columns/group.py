"""``GroupColumns`` and ``CombineOutputs``: merge the rows of several predecessors by position."""

from __future__ import annotations

from typing import Any

from pydantic import model_validator

from distil_dagster.steps.base import Step, StepInput
from distil_dagster.steps.typing import StepOutput

__all__ = ["CombineOutputs", "GroupColumns", "group_columns"]

_METADATA = "distilabel_metadata"


def group_columns(
    *inputs: list[dict[str, Any]], group_columns: list[str], output_group_columns: list[str]
) -> list[dict[str, Any]]:
    """Merge the i-th rows of every input: ``group_columns`` become lists, other columns are kept."""
    result = []
    for rows in zip(*inputs):
        merged: dict[str, Any] = {}
        for row in rows:
            for key, value in row.items():
                if key not in group_columns:
                    merged[key] = value
        for column, output in zip(group_columns, output_group_columns):
            merged[output] = [row.get(column) for row in rows]
        result.append(merged)
    return result


class GroupColumns(Step):
    """Group ``columns`` of the rows coming from several predecessors into lists.

    Attributes:
        columns: the columns to group.
        output_columns: names of the grouped columns (default ``grouped_<column>``).
    """

    columns: list[str]
    output_columns: list[str] | None = None

    @model_validator(mode="after")
    def _check_output_columns(self) -> GroupColumns:
        if self.output_columns is not None and len(self.output_columns) != len(self.columns):
            raise ValueError(
                f"GroupColumns: output_columns {self.output_columns} must have one name per column in {self.columns}."
            )
        return self

    @property
    def inputs(self) -> list[str]:
        return self.columns

    @property
    def outputs(self) -> list[str]:
        return self.output_columns or [f"grouped_{c}" for c in self.columns]

    def process(self, *inputs: StepInput) -> StepOutput:
        yield group_columns(*inputs, group_columns=self.columns, output_group_columns=self.outputs)


class CombineOutputs(Step):
    """Merge the i-th rows of every predecessor into one row (``distilabel_metadata`` merged too)."""

    def process(self, *inputs: StepInput) -> StepOutput:
        combined = []
        for rows in zip(*inputs):
            merged: dict[str, Any] = {}
            metadata: dict[str, Any] = {}
            for row in rows:
                for key, value in row.items():
                    if key == _METADATA and isinstance(value, dict):
                        metadata.update(value)
                    else:
                        merged[key] = value
            if metadata:
                merged[_METADATA] = metadata
            combined.append(merged)
        yield combined
