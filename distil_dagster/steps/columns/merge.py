"""``MergeColumns``: merge several columns of a row into one list column."""

from __future__ import annotations

from typing import Any

from distil_dagster.steps.base import Step, StepInput
from distil_dagster.steps.typing import StepOutput

__all__ = ["MergeColumns", "merge_columns"]

DEFAULT_OUTPUT_COLUMN = "merged_column"


def merge_columns(row: dict[str, Any], columns: list[str], output_column: str) -> dict[str, Any]:
    """A copy of ``row`` without ``columns`` and with their values in ``output_column`` (appended last).

    List values are concatenated; any other value (``None`` included) counts as one element.
    """
    merged_row = dict(row)
    merged: list[Any] = []
    for column in columns:
        value = merged_row.pop(column)
        if isinstance(value, list):
            merged.extend(value)
        else:
            merged.append(value)
    merged_row[output_column] = merged
    return merged_row


class MergeColumns(Step):
    """Merge ``columns`` into the list column ``output_column``; the merged columns are dropped.

    ``{"a": "x", "b": ["y", "z"]}`` merged on ``["a", "b"]`` gives ``{"merged_column": ["x", "y", "z"]}``.

    Attributes:
        columns: the columns to merge, in the order their values are appended.
        output_column: the column written (default ``merged_column``); it may be one of ``columns``.

    Examples:
        >>> step = MergeColumns(columns=["queries", "more_queries"], output_column="queries")
        >>> next(step.process([{"queries": "How are you?", "more_queries": ["What's up?"]}]))
        [{'queries': ['How are you?', "What's up?"]}]
    """

    columns: list[str]
    output_column: str | None = None

    @property
    def inputs(self) -> list[str]:
        return self.columns

    @property
    def outputs(self) -> list[str]:
        return [self.output_column or DEFAULT_OUTPUT_COLUMN]

    def columns_after(self, available: set[str]) -> set[str]:
        return (available - set(self.get_inputs())) | set(self.get_outputs())

    def process(self, inputs: StepInput) -> StepOutput:  # type: ignore[override]  # one input, as distilabel
        output_column = self.outputs[0]
        yield [merge_columns(row, self.columns, output_column) for row in inputs]
