"""``ChatGeneration``: the next assistant message of a conversation in a ``messages`` column."""

from __future__ import annotations

from typing import Any

from distil_dagster.models.llms.typing import ChatType
from distil_dagster.steps.tasks.base import Task

__all__ = ["ChatGeneration"]


def is_openai_format(messages: Any) -> bool:
    """Whether ``messages`` is a list of ``{"role": ..., "content": ...}`` dicts."""
    return (
        isinstance(messages, list)
        and bool(messages)
        and all(isinstance(m, dict) and "role" in m and "content" in m for m in messages)
    )


class ChatGeneration(Task):
    """Generate the assistant's reply to a conversation.

    Input columns: ``messages`` (OpenAI chat format, last message from the user).
    Output columns: ``generation``, ``model_name``.
    """

    @property
    def inputs(self) -> list[str]:
        return ["messages"]

    @property
    def outputs(self) -> list[str]:
        return ["generation", "model_name"]

    def format_input(self, input: dict[str, Any]) -> ChatType:
        """The row's ``messages``, checked."""
        messages = input["messages"]
        if not is_openai_format(messages):
            raise ValueError(f"`messages` must be a list of {{'role', 'content'}} dicts, got {messages!r:.200}.")
        if messages[-1]["role"] != "user":
            raise ValueError("the last message of `messages` must be from the user.")
        return [{"role": m["role"], "content": m["content"]} for m in messages]

    def format_output(self, output: str | None, input: dict[str, Any] | None = None) -> dict[str, Any]:
        return {"generation": output}

    def _sample_input(self) -> ChatType:
        """A one-message conversation, for ``print()``."""
        return self.format_input({"messages": [{"role": "user", "content": "<PLACEHOLDER_MESSAGES>"}]})
