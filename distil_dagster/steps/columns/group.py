"""``GroupColumns`` and ``CombineOutputs``: merge the rows of several predecessors by position.

Both merge the ``distilabel_metadata`` of the rows they combine with :func:`merge_distilabel_metadata`.
"""

from __future__ import annotations

from typing import Any

from pydantic import model_validator

from distil_dagster.steps.base import Step, StepInput
from distil_dagster.steps.typing import StepOutput

__all__ = ["CombineOutputs", "GroupColumns", "group_columns", "merge_distilabel_metadata"]

_METADATA = "distilabel_metadata"


def merge_distilabel_metadata(*rows: dict[str, Any]) -> dict[str, Any] | list[Any]:
    """The ``distilabel_metadata`` of ``rows`` merged into one value.

    Dictionaries are merged key by key: a key found in one row keeps its value, a key found in
    several rows gets the list of their values, in row order. Metadata given as a list (one
    dictionary per generation) is concatenated instead: when any row holds a list, the merged value
    is the rows' lists joined in row order, a row's dictionary joining as one element (distilabel
    drops it or fails; nothing is dropped here). Rows without metadata (or with ``None``) add nothing.
    """
    found = [m for m in (row.get(_METADATA) for row in rows) if isinstance(m, (dict, list))]
    if any(isinstance(m, list) for m in found):
        return [item for m in found for item in (m if isinstance(m, list) else [m])]
    values: dict[str, list[Any]] = {}
    for metadata in found:
        for key, value in metadata.items():  # type: ignore[union-attr]  # only dictionaries here
            values.setdefault(key, []).append(value)
    return {key: seen[0] if len(seen) == 1 else seen for key, seen in values.items()}


def _with_metadata(merged: dict[str, Any], rows: tuple[dict[str, Any], ...]) -> dict[str, Any]:
    """``merged`` with the merged metadata of ``rows`` last, if any of them has the column."""
    if any(_METADATA in row for row in rows):
        merged[_METADATA] = merge_distilabel_metadata(*rows)
    return merged


def group_columns(
    *inputs: list[dict[str, Any]], group_columns: list[str], output_group_columns: list[str]
) -> list[dict[str, Any]]:
    """Merge the i-th rows of every input: ``group_columns`` become lists, other columns are kept
    (the last input's value wins) and ``distilabel_metadata`` is merged."""
    result = []
    for rows in zip(*inputs):
        merged: dict[str, Any] = {}
        for row in rows:
            for key, value in row.items():
                if key not in group_columns and key != _METADATA:
                    merged[key] = value
        for column, output in zip(group_columns, output_group_columns):
            merged[output] = [row.get(column) for row in rows]
        result.append(_with_metadata(merged, rows))
    return result


class GroupColumns(Step):
    """Group ``columns`` of the rows coming from several predecessors into lists.

    The other columns are kept (the last predecessor's value wins) and the ``distilabel_metadata``
    of every predecessor is merged (see :func:`merge_distilabel_metadata`).

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
    """Merge the i-th rows of every predecessor into one row: the last predecessor's value wins for
    a column they share, and their ``distilabel_metadata`` is merged (see :func:`merge_distilabel_metadata`)."""

    def process(self, *inputs: StepInput) -> StepOutput:
        combined = []
        for rows in zip(*inputs):
            merged = {key: value for row in rows for key, value in row.items() if key != _METADATA}
            combined.append(_with_metadata(merged, rows))
        yield combined
