"""Type aliases of the LLM API (distilabel's ``distilabel.typing`` model types)."""

from __future__ import annotations

from typing import Any, Union

from typing_extensions import NotRequired, TypedDict

__all__ = [
    "ChatItem",
    "ChatType",
    "GenerateOutput",
    "LLMLogprobs",
    "LLMOutput",
    "Logprob",
    "StructuredOutputType",
    "TokenCount",
]

ChatItem = dict[str, str]
"""One message: ``{"role": "user", "content": "..."}``."""

ChatType = list[ChatItem]
"""A conversation in the OpenAI chat format."""

LLMOutput = list[Union[str, None]]
"""The generations for one input; ``None`` where a generation failed."""


class Logprob(TypedDict):
    """One candidate token at one position of a generation and its log probability."""

    token: str
    logprob: float


LLMLogprobs = list[Union[list[list[Logprob]], None]]
"""Log probabilities of the generations for one input: per generation (``None`` where the backend
gave none), per generated token, the top candidate tokens."""


class TokenCount(TypedDict):
    """Token usage of the generations for one input (one entry per generation)."""

    input_tokens: list[int]
    output_tokens: list[int]


class GenerateOutput(TypedDict):
    """What an LLM returns for one input.

    Keys other than ``generations``, ``statistics`` and ``errors`` (such as ``logprobs``) hold one
    value per generation; a task writes them to the column ``llm_<task name>_<key>``.

    Attributes:
        generations: ``num_generations`` texts (``None`` where generation failed).
        statistics: token usage, one entry per generation.
        errors: per generation, the error text of a failed generation (``None`` when it worked).
        logprobs: per generation, the log probabilities of its tokens (when asked for).
    """

    generations: LLMOutput
    statistics: TokenCount
    errors: NotRequired[list[Union[str, None]]]
    logprobs: NotRequired[LLMLogprobs]


class StructuredOutputType(TypedDict):
    """Structured output request: the JSON schema the generation must follow."""

    schema: dict[str, Any]
    format: NotRequired[str]
