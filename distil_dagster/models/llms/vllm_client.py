"""``ClientvLLM``: distilabel's client of a vLLM server (its OpenAI-compatible API).

As in distilabel, ``model`` may be left empty: the first model the server lists (``GET /models``)
is used. The conversation goes to the chat API, so the server applies the model's chat template
(distilabel templates it locally with ``tokenizer`` and calls the completions API; ``tokenizer``
and ``tokenizer_revision`` are accepted and change nothing here). Requests, retries and bounded
concurrency are ``OpenAILLM``'s.
"""

from __future__ import annotations

import json
import urllib.request
from typing import Any, ClassVar

from pydantic import Field, SecretStr

from distil_dagster.mixins.runtime_parameters import OptionalRuntimeParameter
from distil_dagster.models.llms.openai import OpenAILLM
from distil_dagster.models.llms.typing import ChatType, GenerateOutput

__all__ = ["ClientvLLM"]


class ClientvLLM(OpenAILLM):
    """A model served by vLLM (``vllm serve``), through its OpenAI-compatible API.

    Attributes:
        model: the served model (default: the first one the server lists).
        tokenizer: accepted for distilabel compatibility; the server applies the chat template.
        tokenizer_revision: accepted for distilabel compatibility.

    Examples:
        >>> llm = ClientvLLM(base_url="http://localhost:8000/v1")
    """

    model: str = ""
    api_key: OptionalRuntimeParameter[SecretStr] = Field(  # not $OPENAI_API_KEY: it is not this server's
        default=None, description="The server's key (`vllm serve --api-key`); default: `EMPTY`."
    )
    tokenizer: str | None = None
    tokenizer_revision: str | None = None

    signature_exclude: ClassVar[frozenset[str]] = OpenAILLM.signature_exclude | {"tokenizer", "tokenizer_revision"}

    @property
    def model_name(self) -> str:
        return self._model or self.model

    def resolve_target(self) -> tuple[str | None, str, SecretStr]:
        """The server, the model (asked of the server when not given) and the key (any value: vLLM
        checks one only when started with ``--api-key``)."""
        key = self.api_key or SecretStr("EMPTY")
        return self.base_url, self.model or self._served_model(key), key

    def _served_model(self, key: SecretStr) -> str:
        url = f"{(self.base_url or '').rstrip('/')}/models"
        request = urllib.request.Request(url, headers={"Authorization": f"Bearer {key.get_secret_value()}"})
        with urllib.request.urlopen(request, timeout=self.timeout) as answer:
            models = json.loads(answer.read()).get("data") or []
        if not models:
            raise ValueError(f"ClientvLLM: the server at {self.base_url} lists no model.")
        return str(models[0]["id"])

    async def agenerate(  # type: ignore[override]  # distilabel's generation kwargs
        self,
        input: ChatType,
        num_generations: int = 1,
        max_new_tokens: int = 128,
        frequency_penalty: float = 0.0,
        logit_bias: dict[str, int] | None = None,
        presence_penalty: float = 0.0,
        temperature: float = 1.0,
        top_p: float = 1.0,
    ) -> GenerateOutput:
        """Generate ``num_generations`` answers to one conversation (the request's ``n``).

        Args:
            input: the conversation.
            num_generations: the answers to generate.
            max_new_tokens: the most tokens an answer may have.
            frequency_penalty: penalise tokens by how often they already appear.
            logit_bias: biases of the tokens' likelihoods, by token id.
            presence_penalty: penalise tokens that already appear.
            temperature: the sampling temperature.
            top_p: nucleus sampling: keep the tokens within this probability mass.
        """
        extra: dict[str, Any] | None = {"logit_bias": logit_bias} if logit_bias else None
        return await super().agenerate(
            input,
            num_generations=num_generations,
            max_new_tokens=max_new_tokens,
            frequency_penalty=frequency_penalty,
            presence_penalty=presence_penalty,
            temperature=temperature,
            top_p=top_p,
            extra_body=extra,
        )
