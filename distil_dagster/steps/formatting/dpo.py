"""DPO formatting: the best and worst rated generations as ``chosen`` and ``rejected`` chats.

The chosen generation is the first one with the highest rating, the rejected one the first one with
the lowest rating (so with equal ratings both are the first generation). Ratings are compared as
Python compares them: a ``None`` rating among several cannot be ranked and raises ``ValueError``,
and the engine sets the step's outputs of that batch to ``None``, as distilabel does.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from distil_dagster.steps.base import Step, StepInput
from distil_dagster.steps.formatting.sft import first_user_content, prompt_id, system_message
from distil_dagster.steps.typing import StepOutput

__all__ = ["FormatChatGenerationDPO", "FormatTextGenerationDPO", "rank_ratings"]

_OUTPUTS = [
    "prompt",
    "prompt_id",
    "chosen",
    "chosen_model",
    "chosen_rating",
    "rejected",
    "rejected_model",
    "rejected_rating",
]


def rank_ratings(ratings: Any, step: str | None) -> tuple[int, int]:
    """``(index of the first highest rating, index of the first lowest rating)``."""
    if not isinstance(ratings, Sequence) or isinstance(ratings, str) or not ratings:
        raise ValueError(f"Step '{step}': ratings must be a non-empty list, got {ratings!r:.200}.")
    if len(ratings) > 1 and any(rating is None for rating in ratings):
        raise ValueError(
            f"Step '{step}': ratings {ratings!r:.200} contain None and cannot be ranked; "
            "filter out rows with failed ratings before this step."
        )
    indices = range(len(ratings))
    return max(indices, key=ratings.__getitem__), min(indices, key=ratings.__getitem__)


def add_preference_pair(step: Step, row: dict[str, Any], prompt_messages: list[dict[str, Any]]) -> None:
    """Write ``chosen``/``rejected`` (and their ``_model``, ``_rating``) to ``row``.

    ``chosen_model``/``rejected_model`` are written only when the row has ``generation_models``;
    a ``None`` there gives ``None`` models.
    """
    ratings, generations = row["ratings"], row["generations"]
    chosen, rejected = rank_ratings(ratings, step.name)
    if not isinstance(generations, Sequence) or max(chosen, rejected) >= len(generations):
        raise ValueError(
            f"Step '{step.name}': generations {generations!r:.200} must have a generation for each of "
            f"the ratings {ratings!r:.200}."
        )
    models = row.get("generation_models")
    for label, index in (("chosen", chosen), ("rejected", rejected)):
        row[label] = [*prompt_messages, {"role": "assistant", "content": generations[index]}]
        if "generation_models" in row:
            row[f"{label}_model"] = None if models is None else models[index]
        row[f"{label}_rating"] = ratings[index]


class FormatTextGenerationDPO(Step):
    """Format ``instruction`` + rated ``generations`` for DPO.

    Input columns: ``system_prompt`` (optional), ``instruction``, ``generations``,
    ``generation_models`` (optional), ``ratings`` (one per generation).
    Output columns: ``prompt`` (the instruction), ``prompt_id`` (its SHA-256), ``chosen`` and
    ``rejected`` (``[system?, user: instruction, assistant: generation]``), ``chosen_rating``,
    ``rejected_rating`` and, when ``generation_models`` is given, ``chosen_model``, ``rejected_model``.

    Examples:
        >>> step = FormatTextGenerationDPO()
        >>> row = {"instruction": "What's 2+2?", "generations": ["4", "5", "6"], "ratings": [1, 0, -1]}
        >>> out = next(step.process([row]))[0]
        >>> out["chosen"][-1]["content"], out["rejected"][-1]["content"]
        ('4', '6')
    """

    @property
    def inputs(self) -> dict[str, bool]:
        return {
            "system_prompt": False,
            "instruction": True,
            "generations": True,
            "generation_models": False,
            "ratings": True,
        }

    @property
    def optional_inputs(self) -> list[str]:
        """Inputs used when present: ``system_prompt``, ``generation_models``."""
        return ["system_prompt", "generation_models"]

    @property
    def outputs(self) -> list[str]:
        return list(_OUTPUTS)

    def format_row(self, row: dict[str, Any]) -> dict[str, Any]:
        """The formatted copy of one row."""
        formatted = dict(row)
        formatted["prompt"] = row["instruction"]
        formatted["prompt_id"] = prompt_id(row["instruction"], self.name)
        add_preference_pair(self, formatted, [*system_message(row), {"role": "user", "content": row["instruction"]}])
        return formatted

    def process(self, *inputs: StepInput) -> StepOutput:
        """Format the rows of the first predecessor (distilabel keeps only its first yield)."""
        yield [self.format_row(row) for row in inputs[0]]


class FormatChatGenerationDPO(Step):
    """Format a ``messages`` chat + rated ``generations`` for DPO.

    Input columns: ``messages``, ``generations``, ``generation_models`` (optional, used when
    present), ``ratings`` (one per generation).
    Output columns: ``prompt`` (the first user message), ``prompt_id`` (its SHA-256), ``chosen``
    and ``rejected`` (``messages`` + the generation as an assistant message), ``chosen_rating``,
    ``rejected_rating`` and, when ``generation_models`` is given, ``chosen_model``, ``rejected_model``.

    Examples:
        >>> step = FormatChatGenerationDPO()
        >>> row = {"messages": [{"role": "user", "content": "2+2?"}], "generations": ["4", "5"], "ratings": [5, 1]}
        >>> next(step.process([row]))[0]["rejected"]
        [{'role': 'user', 'content': '2+2?'}, {'role': 'assistant', 'content': '5'}]
    """

    @property
    def inputs(self) -> list[str]:
        return ["messages", "generations", "ratings"]

    @property
    def optional_inputs(self) -> list[str]:
        """Inputs used when present: ``generation_models``."""
        return ["generation_models"]

    @property
    def outputs(self) -> list[str]:
        return list(_OUTPUTS)

    def format_row(self, row: dict[str, Any]) -> dict[str, Any]:
        """The formatted copy of one row."""
        formatted = dict(row)
        formatted["prompt"] = first_user_content(row["messages"], self.name)
        formatted["prompt_id"] = prompt_id(formatted["prompt"], self.name)
        add_preference_pair(self, formatted, list(row["messages"]))
        return formatted

    def process(self, *inputs: StepInput) -> StepOutput:
        """Format the rows of the first predecessor (distilabel keeps only its first yield)."""
        yield [self.format_row(row) for row in inputs[0]]
