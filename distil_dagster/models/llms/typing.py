"""Type aliases of the LLM API (distilabel's ``distilabel.typing`` model types)."""

from __future__ import annotations

from typing import Any, Union

from typing_extensions import NotRequired, TypedDict

__all__ = ["ChatItem", "ChatType", "GenerateOutput", "LLMOutput", "StructuredOutputType", "TokenCount"]

ChatItem = dict[str, str]
"""One message: ``{"role": "user", "content": "..."}``."""

ChatType = list[ChatItem]
"""A conversation in the OpenAI chat format."""

LLMOutput = list[Union[str, None]]
"""The generations for one input; ``None`` where a generation failed."""


class TokenCount(TypedDict):
    """Token usage of the generations for one input (one entry per generation)."""

    input_tokens: list[int]
    output_tokens: list[int]


class GenerateOutput(TypedDict):
    """What an LLM returns for one input.

    Attributes:
        generations: ``num_generations`` texts (``None`` where generation failed).
        statistics: token usage, one entry per generation.
        errors: per generation, the error text of a failed generation (``None`` when it worked).
    """

    generations: LLMOutput
    statistics: TokenCount
    errors: NotRequired[list[Union[str, None]]]


class StructuredOutputType(TypedDict):
    """Structured output request: the JSON schema the generation must follow."""

    schema: dict[str, Any]
    format: NotRequired[str]
