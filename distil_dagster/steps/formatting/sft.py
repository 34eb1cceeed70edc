"""SFT formatting: ``prompt``, ``prompt_id`` and a ``messages`` chat from a generation.

The layout is the one of ``HuggingFaceH4/ultrachat_200k`` (used by axolotl and the alignment
handbook). ``prompt_id`` is the hex SHA-256 of the UTF-8 prompt, so rows of the same prompt share
it across datasets. Rows the format cannot be computed for (a prompt that is not a string) raise
``ValueError``: the engine then sets the step's outputs of that batch to ``None``, as distilabel does.
"""

from __future__ import annotations

import hashlib
from typing import Any

from distil_dagster.steps.base import Step, StepInput
from distil_dagster.steps.typing import StepOutput

__all__ = ["FormatChatGenerationSFT", "FormatTextGenerationSFT", "first_user_content", "prompt_id"]


def prompt_id(prompt: Any, step: str | None) -> str:
    """The hex SHA-256 of the UTF-8 encoded ``prompt``; ``step`` names the step in the error."""
    if not isinstance(prompt, str):
        raise ValueError(
            f"Step '{step}': the prompt must be a string to compute prompt_id, got {type(prompt).__name__} "
            "(a chat without a user message has no prompt)."
        )
    return hashlib.sha256(prompt.encode("utf-8")).hexdigest()


def first_user_content(messages: Any, step: str | None) -> Any:
    """The content of the first ``user`` message of a chat (``None`` if there is none)."""
    if not isinstance(messages, list):
        raise ValueError(
            f"Step '{step}': messages must be a list of {{'role', 'content'}} dicts, got {type(messages).__name__}."
        )
    return next((turn["content"] for turn in messages if turn["role"] == "user"), None)


def system_message(row: dict[str, Any]) -> list[dict[str, Any]]:
    """``[system message]`` when the row has a non-empty string ``system_prompt``, else ``[]``."""
    system = row.get("system_prompt")
    return [{"role": "system", "content": system}] if isinstance(system, str) and system else []


class FormatTextGenerationSFT(Step):
    """Format ``instruction`` + ``generation`` (a ``TextGeneration`` output) for SFT.

    Input columns: ``system_prompt`` (optional), ``instruction``, ``generation``.
    Output columns: ``prompt`` (the instruction), ``prompt_id`` (its SHA-256) and ``messages``:
    ``[system?, user: instruction, assistant: generation]``; the system message is there only
    when ``system_prompt`` is a non-empty string.

    Examples:
        >>> step = FormatTextGenerationSFT()
        >>> next(step.process([{"instruction": "What's 2+2?", "generation": "4"}]))[0]["messages"]
        [{'role': 'user', 'content': "What's 2+2?"}, {'role': 'assistant', 'content': '4'}]
    """

    @property
    def inputs(self) -> dict[str, bool]:
        return {"system_prompt": False, "instruction": True, "generation": True}

    @property
    def optional_inputs(self) -> list[str]:
        """Inputs used when present: ``system_prompt``."""
        return ["system_prompt"]

    @property
    def outputs(self) -> list[str]:
        return ["prompt", "prompt_id", "messages"]

    def format_row(self, row: dict[str, Any]) -> dict[str, Any]:
        """The formatted copy of one row."""
        formatted = dict(row)
        formatted["prompt"] = row["instruction"]
        formatted["prompt_id"] = prompt_id(row["instruction"], self.name)
        formatted["messages"] = [
            *system_message(row),
            {"role": "user", "content": row["instruction"]},
            {"role": "assistant", "content": row["generation"]},
        ]
        return formatted

    def process(self, *inputs: StepInput) -> StepOutput:
        """Format the rows of the first predecessor (distilabel keeps only its first yield)."""
        yield [self.format_row(row) for row in inputs[0]]


class FormatChatGenerationSFT(Step):
    """Format ``messages`` + ``generation`` (a ``ChatGeneration`` output) for SFT.

    Input columns: ``messages``, ``generation``. Output columns: ``prompt`` (the content of the
    first user message), ``prompt_id`` (its SHA-256) and ``messages`` with the generation
    appended as an assistant message.

    Examples:
        >>> step = FormatChatGenerationSFT()
        >>> row = {"messages": [{"role": "user", "content": "What's 2+2?"}], "generation": "4"}
        >>> next(step.process([row]))[0]["messages"][-1]
        {'role': 'assistant', 'content': '4'}
    """

    @property
    def inputs(self) -> list[str]:
        return ["messages", "generation"]

    @property
    def outputs(self) -> list[str]:
        return ["prompt", "prompt_id", "messages"]

    def format_row(self, row: dict[str, Any]) -> dict[str, Any]:
        """The formatted copy of one row."""
        formatted = dict(row)
        formatted["prompt"] = first_user_content(row["messages"], self.name)
        formatted["prompt_id"] = prompt_id(formatted["prompt"], self.name)
        formatted["messages"] = [*row["messages"], {"role": "assistant", "content": row["generation"]}]
        return formatted

    def process(self, *inputs: StepInput) -> StepOutput:
        """Format the rows of the first predecessor (distilabel keeps only its first yield)."""
        yield [self.format_row(row) for row in inputs[0]]
