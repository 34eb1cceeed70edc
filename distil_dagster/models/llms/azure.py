"""``AzureOpenAILLM``: distilabel's Azure OpenAI LLM, ``OpenAILLM`` on an Azure OpenAI resource.

Azure names a deployment, not a model, and shapes its URLs and auth its own way: a chat request
goes to ``{endpoint}/openai/deployments/{deployment}/chat/completions?api-version={version}``
with the key in an ``api-key`` header. ``openai.AsyncAzureOpenAI`` knows that shape, so each
client of the load is one of those, given the endpoint, the deployment (``model``), the API
version and the key explicitly; everything above the client (requests, generation kwargs,
retries, bounded concurrency, the lean transport, the key's masking) is ``OpenAILLM``'s.

Defaults, as distilabel: ``base_url`` (the endpoint) from ``$AZURE_OPENAI_ENDPOINT``, ``api_key``
from ``$AZURE_OPENAI_API_KEY``, ``api_version`` from ``$OPENAI_API_VERSION``. All three are needed;
one that is missing fails ``load()`` with the others that are.

Azure AD (Entra ID) tokens are not supported, as in distilabel, which always authenticates with
the key. Because the key is always passed, the ``openai`` client never falls back to
``$AZURE_OPENAI_AD_TOKEN`` either, so no credential reaches a request that this LLM does not mask.
"""

from __future__ import annotations

from typing import ClassVar

import httpx2
import openai
from pydantic import Field, SecretStr

from distil_dagster.mixins.runtime_parameters import OptionalRuntimeParameter
from distil_dagster.models.llms.env_defaults import env_secret, env_str
from distil_dagster.models.llms.openai import OpenAILLM

__all__ = ["AzureOpenAILLM"]

_ENDPOINT_ENV = "AZURE_OPENAI_ENDPOINT"
_API_KEY_ENV = "AZURE_OPENAI_API_KEY"
_API_VERSION_ENV = "OPENAI_API_VERSION"


class AzureOpenAILLM(OpenAILLM):
    """A deployment of an Azure OpenAI resource.

    Attributes:
        model: the deployment's name (Azure routes by deployment; it is also ``model_name``).
        base_url: the resource's endpoint, e.g. ``https://<resource>.openai.azure.com``
            (default ``$AZURE_OPENAI_ENDPOINT``).
        api_key: the resource's key, sent as the ``api-key`` header (default ``$AZURE_OPENAI_API_KEY``).
        api_version: the Azure OpenAI API version, e.g. ``2024-10-21`` (default ``$OPENAI_API_VERSION``).

    Examples:
        >>> llm = AzureOpenAILLM(
        ...     model="my-gpt-4o",
        ...     base_url="https://my-resource.openai.azure.com",
        ...     api_key="...",
        ...     api_version="2024-10-21",
        ... )
    """

    base_url: OptionalRuntimeParameter[str] = Field(
        default_factory=env_str(_ENDPOINT_ENV),
        description=f"The Azure OpenAI endpoint (default: ${_ENDPOINT_ENV}).",
    )
    api_key: OptionalRuntimeParameter[SecretStr] = Field(
        default_factory=env_secret(_API_KEY_ENV), description=f"The Azure OpenAI API key (default: ${_API_KEY_ENV})."
    )
    api_version: OptionalRuntimeParameter[str] = Field(
        default_factory=env_str(_API_VERSION_ENV),
        description=f"The Azure OpenAI API version (default: ${_API_VERSION_ENV}).",
    )

    api_key_env: ClassVar[str] = _API_KEY_ENV

    def missing_settings(self) -> list[str]:
        """The endpoint, the API version and the key, whichever are missing."""
        missing = []
        if not self.base_url:
            missing.append(f"no endpoint; pass `base_url=` or set ${_ENDPOINT_ENV}")
        if not self.api_version:
            missing.append(f"no API version; pass `api_version=` or set ${_API_VERSION_ENV}")
        if self.api_key is None:
            missing.append(f"no API key; pass `api_key=` or set ${_API_KEY_ENV}")
        return missing

    def make_client(self, base_url: str | None, http_client: httpx2.AsyncClient) -> openai.AsyncOpenAI:
        """An ``AsyncAzureOpenAI`` client for the deployment ``model`` at the endpoint ``base_url``."""
        assert self._key is not None and base_url, "resolve_target() first"
        return openai.AsyncAzureOpenAI(
            azure_endpoint=base_url,
            azure_deployment=self._model,
            api_version=self.api_version,
            api_key=self._key.get_secret_value(),
            timeout=self.timeout,
            max_retries=0,
            default_headers=self.default_headers,
            http_client=http_client,
        )
