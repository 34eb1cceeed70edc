"""LLM backends: the base classes and the backends (imported on first use: each needs an extra)."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from distil_dagster.models.llms.base import LLM, AsyncLLM
from distil_dagster.models.llms.typing import ChatType, GenerateOutput

if TYPE_CHECKING:
    from distil_dagster.models.llms.openai import OpenAILLM
    from distil_dagster.models.llms.transformers import TransformersLLM

__all__ = ["LLM", "AsyncLLM", "ChatType", "GenerateOutput", "OpenAILLM", "TransformersLLM"]

_BACKENDS = {
    "OpenAILLM": "distil_dagster.models.llms.openai",
    "TransformersLLM": "distil_dagster.models.llms.transformers",
}


def __getattr__(name: str) -> Any:
    """Import a backend only when used, so a missing extra fails only for that backend."""
    if name in _BACKENDS:
        return getattr(importlib.import_module(_BACKENDS[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
