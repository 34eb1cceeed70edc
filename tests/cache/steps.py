"""Steps shared by the cache tests, importable by worker processes."""

from __future__ import annotations

from distil_dagster.steps import Step, StepInput
from distil_dagster.steps.typing import StepOutput


class Label(Step):
    """Writes ``label = L<id>``."""

    @property
    def inputs(self) -> list[str]:
        return ["id"]

    @property
    def outputs(self) -> list[str]:
        return ["label"]

    def process(self, inputs: StepInput) -> StepOutput:
        yield [{**row, "label": f"L{row['id']}"} for row in inputs]
