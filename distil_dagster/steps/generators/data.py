"""``LoadDataFromDicts``: a generator over a list of rows given in the pipeline."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from distil_dagster.steps.base import GeneratorStep
from distil_dagster.steps.typing import GeneratorStepOutput

__all__ = ["LoadDataFromDicts", "row_ranges"]


def row_ranges(offset: int, total: int, size: int) -> Iterator[tuple[int, int, bool]]:
    """``(start, end, is_last)`` of the batches of rows ``offset..total``, ``size`` rows each.

    Nothing left (a generator resumed at its end) is one empty last batch.
    """
    if offset >= total:
        yield offset, offset, True
        return
    for start in range(offset, total, size):
        end = min(start + size, total)
        yield start, end, end >= total


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
        for start, end, last in row_ranges(offset, len(self.data), self.batch_size or 50):
            yield [dict(row) for row in self.data[start:end]], last
