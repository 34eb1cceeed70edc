"""The shipped example pipeline: seed instructions -> stats -> routed responders -> grouped responses.

It runs offline with no model: the responders are deterministic text transforms standing in for
LLMs, so the example shows the authoring API (``@step``, ``Step``, runtime parameters, routing,
convergence, a global step, two leaves) and runs in a second.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import Field

from distil_dagster.mixins.runtime_parameters import RuntimeParameter
from distil_dagster.pipeline import Pipeline, sample_n_steps
from distil_dagster.steps import GlobalStep, GroupColumns, LoadDataFromDicts, Step, StepInput, step
from distil_dagster.steps.typing import StepOutput

__all__ = ["TemplateResponder", "build_instructions_pipeline", "seed_instructions"]


def seed_instructions() -> list[dict[str, Any]]:
    """The 20 seed instructions shipped with the package."""
    text = resources.files("distil_dagster.examples").joinpath("seed_instructions.jsonl").read_text("utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


@step(inputs=["instruction"], outputs=["num_words", "num_chars"])
def InstructionStats(inputs: StepInput) -> StepOutput:
    """Count the words and characters of each instruction."""
    for row in inputs:
        row["num_words"] = len(row["instruction"].split())
        row["num_chars"] = len(row["instruction"])
    yield inputs


class TemplateResponder(Step):
    """A stand-in for an LLM: answers every instruction with a template.

    Attributes:
        template: the answer, with ``{instruction}`` replaced.
        model_name: recorded in the ``model_name`` column, as LLM tasks do.
    """

    template: RuntimeParameter[str] = Field(default="{instruction}", description="The answer template.")
    model_name: str = "template"

    @property
    def inputs(self) -> list[str]:
        return ["instruction"]

    @property
    def outputs(self) -> list[str]:
        return ["generation", "model_name"]

    def process(self, *inputs: StepInput) -> StepOutput:
        template = self.template or "{instruction}"
        for row in inputs[0]:
            row["generation"] = template.format(instruction=row["instruction"])
            row["model_name"] = self.model_name
        yield inputs[0]


class RankByLength(GlobalStep):
    """Rank every instruction by length (a global step: it needs all rows at once)."""

    @property
    def inputs(self) -> list[str]:
        return ["num_words"]

    @property
    def outputs(self) -> list[str]:
        return ["length_rank"]

    def process(self, *inputs: StepInput) -> StepOutput:
        rows = inputs[0]
        order = sorted(range(len(rows)), key=lambda i: (-rows[i]["num_words"], i))
        for rank, index in enumerate(order, start=1):
            rows[index]["length_rank"] = rank
        yield rows


def build_instructions_pipeline(cache_dir: str | Path | None = None, name: str = "instructions-demo") -> Pipeline:
    """The example pipeline: two leaves, ``grouped_responses`` and ``ranked_instructions``."""
    with Pipeline(
        name=name, description="Seed instructions answered by routed responders.", cache_dir=cache_dir
    ) as pipeline:
        load = LoadDataFromDicts(name="load_instructions", data=seed_instructions(), batch_size=4)
        stats = InstructionStats(name="instruction_stats", input_batch_size=4)
        responders = [
            TemplateResponder(
                name="concise", template="In short: {instruction}", model_name="concise-v1", input_batch_size=2
            ),
            TemplateResponder(
                name="detailed", template="Step by step: {instruction}", model_name="detailed-v1", input_batch_size=2
            ),
            TemplateResponder(
                name="socratic", template="Let us ask: {instruction}", model_name="socratic-v1", input_batch_size=2
            ),
        ]
        group = GroupColumns(
            name="grouped_responses",
            columns=["generation", "model_name"],
            output_columns=["generations", "model_names"],
            input_batch_size=2,
        )
        rank = RankByLength(name="ranked_instructions")
        load >> stats >> sample_n_steps(2) >> responders >> group
        stats >> rank
    return pipeline
