"""``LoadDataFromDicts``: a generator over a list of rows given in the pipeline."""

from __future__ import annotations

from typing import Any

from distil_dagster.steps.base import GeneratorStep
from distil_dagster.steps.typing import GeneratorStepOutput

__all__ = ["LoadDataFromDicts"]


class LoadDataFromDicts(GeneratorStep):
    """Yield the rows of ``data``, ``batch_size`` at a time (the rows are part of the signature).

    Attributes:
        data: the rows.
    """

    data: list[dict[str, Any]]

    @property
    def outputs(self) -> list[str]:
        columns: dict[str, None] = {}
        for row in self.data[:1]:
            columns.update(dict.fromkeys(row))
        return list(columns)

    def total_rows(self) -> int | None:
        return len(self.data)

    def process(self, offset: int = 0) -> GeneratorStepOutput:
        """Yield copies of the rows from ``offset`` on; the last batch is flagged."""
        total = len(self.data)
        if offset >= total:
            yield [], True
            return
        size = self.batch_size or 50
        for start in range(offset, total, size):
            end = min(start + size, total)
            yield [dict(row) for row in self.data[start:end]], end >= total
