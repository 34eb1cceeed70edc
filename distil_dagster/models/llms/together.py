"""``TogetherLLM``: distilabel's Together AI LLM, ``OpenAILLM`` on Together's OpenAI-compatible API.

Only the defaults differ from ``OpenAILLM``: the API root is ``$TOGETHER_BASE_URL``, else
``https://api.together.xyz/v1``, and the key is ``$TOGETHER_API_KEY`` (never ``$OPENAI_API_KEY``).
Requests, generation kwargs, retries and the key's masking are ``OpenAILLM``'s.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, SecretStr

from distil_dagster.mixins.runtime_parameters import OptionalRuntimeParameter
from distil_dagster.models.llms.env_defaults import env_secret, env_str
from distil_dagster.models.llms.openai import OpenAILLM

__all__ = ["TogetherLLM"]

_API_KEY_ENV = "TOGETHER_API_KEY"


class TogetherLLM(OpenAILLM):
    """A model served by Together AI.

    Attributes:
        model: the Together model (e.g. ``mistralai/Mixtral-8x7B-Instruct-v0.1``).
        base_url: the API root (default ``$TOGETHER_BASE_URL``, else ``https://api.together.xyz/v1``).
        api_key: the Together API key (default ``$TOGETHER_API_KEY``).

    Examples:
        >>> llm = TogetherLLM(model="mistralai/Mixtral-8x7B-Instruct-v0.1", api_key="...")
    """

    base_url: OptionalRuntimeParameter[str] = Field(
        default_factory=env_str("TOGETHER_BASE_URL", "https://api.together.xyz/v1"),
        description="The base URL of the Together API.",
    )
    api_key: OptionalRuntimeParameter[SecretStr] = Field(
        default_factory=env_secret(_API_KEY_ENV), description=f"The Together API key (default: ${_API_KEY_ENV})."
    )

    api_key_env: ClassVar[str] = _API_KEY_ENV
