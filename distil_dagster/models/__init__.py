"""Model backends: LLMs and embeddings used by tasks (backends are imported on first use)."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from distil_dagster.models.llms import LLM, AsyncLLM, ChatType, GenerateOutput

if TYPE_CHECKING:
    from distil_dagster.models.embeddings import Embeddings, SentenceTransformerEmbeddings
    from distil_dagster.models.llms import OpenAILLM, TransformersLLM

__all__ = [
    "LLM",
    "AsyncLLM",
    "ChatType",
    "Embeddings",
    "GenerateOutput",
    "OpenAILLM",
    "SentenceTransformerEmbeddings",
    "TransformersLLM",
]

_LAZY = {
    "OpenAILLM": "distil_dagster.models.llms",
    "TransformersLLM": "distil_dagster.models.llms",
    "Embeddings": "distil_dagster.models.embeddings",
    "SentenceTransformerEmbeddings": "distil_dagster.models.embeddings",
}


def __getattr__(name: str) -> Any:
    """Import a backend only when used, so a missing extra fails only for that backend."""
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
