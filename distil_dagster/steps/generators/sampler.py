"""``DataSampler``: a generator of rows made of random draws from a list of rows (e.g. few-shot examples).

Row ``i`` is drawn with its own generator, seeded with ``seed`` and ``i``: a run resumed at any row
offset yields exactly the rows the first run would have, without drawing the rows before it.
"""

from __future__ import annotations

import random
from typing import Any

from pydantic import Field, NonNegativeInt, PositiveInt, model_validator

from distil_dagster.steps.base import GeneratorStep
from distil_dagster.steps.generators.data import row_ranges
from distil_dagster.steps.typing import GeneratorStepOutput

__all__ = ["DataSampler"]


class DataSampler(GeneratorStep):
    """Yield ``samples`` rows, each holding ``size`` rows of ``data`` drawn at random (with replacement).

    Every column of an output row is the list of that column's values in the ``size`` drawn rows:
    ``data=[{"q": "a"}, {"q": "b"}], size=3`` gives rows like ``{"q": ["b", "a", "b"]}``. Drawing is
    deterministic: the same ``data``, ``size``, ``samples`` and ``seed`` give the same rows in every
    run, and a resumed run continues them exactly. Change ``seed`` for other draws.

    Attributes:
        data: the rows to draw from; their columns are those of the first row.
        size: rows drawn into each output row.
        samples: output rows in all.
        seed: seeds the draws (distilabel's DataSampler is unseeded; here a fixed default keeps
            resumed runs exact).
    """

    data: list[dict[str, Any]] = Field(default_factory=list)
    size: PositiveInt = Field(default=2, description="Rows of `data` drawn into each output row.")
    samples: NonNegativeInt = Field(default=100, description="Output rows in all.")
    seed: int = Field(default=0, description="Seeds the draws: the same seed gives the same rows.")

    @model_validator(mode="after")
    def _data_to_draw_from(self) -> DataSampler:
        if self.samples and not self.data:
            step = f"Step '{self.name}'" if self.name else "DataSampler"
            raise ValueError(f"{step}: `data` is empty; give at least one row to draw from (or samples=0).")
        return self

    @property
    def outputs(self) -> list[str]:
        return list(self.data[0]) if self.data else []

    def total_rows(self) -> int | None:
        return self.samples

    def sample(self, index: int) -> dict[str, Any]:
        """Output row ``index``: ``size`` rows drawn by a generator seeded with ``seed`` and ``index``."""
        # A str seed is hashed with SHA-512: the same in every process, unlike hash() of a tuple.
        drawn = random.Random(f"{self.seed}:{index}").choices(self.data, k=self.size)
        return {column: [row.get(column) for row in drawn] for column in self.outputs}

    def process(self, offset: int = 0) -> GeneratorStepOutput:
        """Yield output rows ``offset..samples``, ``batch_size`` at a time; the last batch is flagged."""
        for start, end, last in row_ranges(offset, self.samples, self.batch_size or 50):
            yield [self.sample(index) for index in range(start, end)], last
