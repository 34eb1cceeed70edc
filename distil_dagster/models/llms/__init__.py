"""LLM backends: the base classes and the backends (imported on first use: each needs an extra)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from distil_dagster.lazy_exports import lazy_exports
from distil_dagster.models.llms.base import LLM, AsyncLLM
from distil_dagster.models.llms.typing import ChatType, GenerateOutput

if TYPE_CHECKING:
    from distil_dagster.models.llms.anyscale import AnyscaleLLM
    from distil_dagster.models.llms.azure import AzureOpenAILLM
    from distil_dagster.models.llms.inference_endpoints import InferenceEndpointsLLM
    from distil_dagster.models.llms.ollama import OllamaLLM
    from distil_dagster.models.llms.openai import OpenAILLM
    from distil_dagster.models.llms.together import TogetherLLM
    from distil_dagster.models.llms.transformers import TransformersLLM
    from distil_dagster.models.llms.vllm_client import ClientvLLM

__all__ = [
    "LLM",
    "AnyscaleLLM",
    "AsyncLLM",
    "AzureOpenAILLM",
    "ChatType",
    "ClientvLLM",
    "GenerateOutput",
    "InferenceEndpointsLLM",
    "OllamaLLM",
    "OpenAILLM",
    "TogetherLLM",
    "TransformersLLM",
]

_BACKENDS = {
    "AnyscaleLLM": "distil_dagster.models.llms.anyscale",
    "AzureOpenAILLM": "distil_dagster.models.llms.azure",
    "ClientvLLM": "distil_dagster.models.llms.vllm_client",
    "OllamaLLM": "distil_dagster.models.llms.ollama",
    "InferenceEndpointsLLM": "distil_dagster.models.llms.inference_endpoints",
    "OpenAILLM": "distil_dagster.models.llms.openai",
    "TogetherLLM": "distil_dagster.models.llms.together",
    "TransformersLLM": "distil_dagster.models.llms.transformers",
}


__getattr__ = lazy_exports(__name__, _BACKENDS)
