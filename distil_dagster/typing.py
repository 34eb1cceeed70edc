"""distilabel 1.5's ``distilabel.typing`` names: steps' (also at ``distil_dagster.steps.typing``),
models' (also at ``distil_dagster.models.llms.typing``) and the pipeline's."""

from __future__ import annotations

from typing import Any, Union

from distil_dagster.models.llms.typing import (
    ChatItem,
    ChatType,
    GenerateOutput,
    LLMLogprobs,
    LLMOutput,
    Logprob,
    StructuredOutputType,
    TokenCount,
)
from distil_dagster.pipeline.load_groups import LoadGroups
from distil_dagster.steps.typing import GeneratorStepOutput, StepColumns, StepOutput

__all__ = [
    "ChatItem",
    "ChatType",
    "FormattedInput",
    "GenerateOutput",
    "GeneratorStepOutput",
    "LLMLogprobs",
    "LLMOutput",
    "LLMStatistics",
    "LoadGroups",
    "Logprob",
    "StandardInput",
    "StepColumns",
    "StepOutput",
    "StructuredInput",
    "StructuredOutputType",
    "TokenCount",
]

StandardInput = ChatType
"""What a task's ``format_input`` returns: a conversation."""

StructuredInput = tuple[StandardInput, Union[StructuredOutputType, None]]
"""A conversation with the structured output it asks for."""

FormattedInput = Union[StandardInput, StructuredInput]
"""What an LLM's ``generate`` takes per input."""

LLMStatistics = Union[TokenCount, dict[str, Any]]
"""The ``statistics`` of a ``GenerateOutput``."""
