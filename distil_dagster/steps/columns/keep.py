"""``KeepColumns``: keep only some columns, in the given order."""

from __future__ import annotations

from distil_dagster.steps.base import Step, StepInput
from distil_dagster.steps.typing import StepOutput

__all__ = ["KeepColumns"]


class KeepColumns(Step):
    """Keep ``columns`` (in that order) and drop every other column.

    Attributes:
        columns: the columns to keep.
    """

    columns: list[str]

    @property
    def inputs(self) -> list[str]:
        return self.columns

    @property
    def outputs(self) -> list[str]:
        return self.columns

    def columns_after(self, available: set[str]) -> set[str]:
        return set(self.columns)

    def process(self, *inputs: StepInput) -> StepOutput:
        columns = self.columns
        yield [{c: row[c] for c in columns} for rows in inputs for row in rows]
