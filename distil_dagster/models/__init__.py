"""Model backends: LLMs and embeddings used by tasks (backends are imported on first use)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from distil_dagster.lazy_exports import lazy_exports
from distil_dagster.models.llms import LLM, AsyncLLM, ChatType, GenerateOutput

if TYPE_CHECKING:
    from distil_dagster.models.embeddings import Embeddings, SentenceTransformerEmbeddings
    from distil_dagster.models.llms import (
        AnyscaleLLM,
        AzureOpenAILLM,
        ClientvLLM,
        InferenceEndpointsLLM,
        OllamaLLM,
        OpenAILLM,
        TogetherLLM,
        TransformersLLM,
    )

__all__ = [
    "LLM",
    "AnyscaleLLM",
    "AsyncLLM",
    "AzureOpenAILLM",
    "ChatType",
    "ClientvLLM",
    "Embeddings",
    "GenerateOutput",
    "InferenceEndpointsLLM",
    "OllamaLLM",
    "OpenAILLM",
    "SentenceTransformerEmbeddings",
    "TogetherLLM",
    "TransformersLLM",
]

_LAZY = {
    "AnyscaleLLM": "distil_dagster.models.llms",
    "AzureOpenAILLM": "distil_dagster.models.llms",
    "ClientvLLM": "distil_dagster.models.llms",
    "OllamaLLM": "distil_dagster.models.llms",
    "InferenceEndpointsLLM": "distil_dagster.models.llms",
    "OpenAILLM": "distil_dagster.models.llms",
    "TogetherLLM": "distil_dagster.models.llms",
    "TransformersLLM": "distil_dagster.models.llms",
    "Embeddings": "distil_dagster.models.embeddings",
    "SentenceTransformerEmbeddings": "distil_dagster.models.embeddings",
}


__getattr__ = lazy_exports(__name__, _LAZY)
