"""``AnyscaleLLM``: distilabel's Anyscale Endpoints LLM, ``OpenAILLM`` on Anyscale's OpenAI-compatible API.

Only the defaults differ from ``OpenAILLM``: the API root is ``$ANYSCALE_BASE_URL``, else
``https://api.endpoints.anyscale.com/v1``, and the key is ``$ANYSCALE_API_KEY`` (never ``$OPENAI_API_KEY``).
Requests, generation kwargs, retries and the key's masking are ``OpenAILLM``'s.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, SecretStr

from distil_dagster.mixins.runtime_parameters import OptionalRuntimeParameter
from distil_dagster.models.llms.env_defaults import env_secret, env_str
from distil_dagster.models.llms.openai import OpenAILLM

__all__ = ["AnyscaleLLM"]

_API_KEY_ENV = "ANYSCALE_API_KEY"


class AnyscaleLLM(OpenAILLM):
    """A model served by Anyscale Endpoints.

    Attributes:
        model: the Anyscale model (e.g. ``google/gemma-7b-it``).
        base_url: the API root (default ``$ANYSCALE_BASE_URL``, else ``https://api.endpoints.anyscale.com/v1``).
        api_key: the Anyscale API key (default ``$ANYSCALE_API_KEY``).

    Examples:
        >>> llm = AnyscaleLLM(model="google/gemma-7b-it", api_key="...")
    """

    base_url: OptionalRuntimeParameter[str] = Field(
        default_factory=env_str("ANYSCALE_BASE_URL", "https://api.endpoints.anyscale.com/v1"),
        description="The base URL of the Anyscale API.",
    )
    api_key: OptionalRuntimeParameter[SecretStr] = Field(
        default_factory=env_secret(_API_KEY_ENV), description=f"The Anyscale API key (default: ${_API_KEY_ENV})."
    )

    api_key_env: ClassVar[str] = _API_KEY_ENV
