"""``OllamaLLM``: distilabel's Ollama LLM, over Ollama's OpenAI-compatible API (``<host>/v1``).

The constructor and the generation kwargs are distilabel's (``model``, ``host``, ``timeout``;
``format``, ``options``, ``keep_alive`` per request). ``options`` are Ollama's sampling options:
those the OpenAI-compatible API has (``temperature``, ``top_p``, ``seed``, ``stop``,
``num_predict`` as ``max_tokens``, ``frequency_penalty``, ``presence_penalty``) are sent; Ollama's
own (``top_k``, ``num_ctx``, ...) have no field there and are refused by name when the step loads
rather than silently dropped. ``format="json"`` asks for a JSON object. One request per generation,
as distilabel. ``tokenizer_id`` and ``follow_redirects`` are accepted for compatibility: Ollama
applies the model's chat template.
"""

from __future__ import annotations

import os
from typing import Any, ClassVar, Literal

from pydantic import Field, SecretStr

from distil_dagster.mixins.runtime_parameters import OptionalRuntimeParameter
from distil_dagster.models.llms.openai import OpenAILLM
from distil_dagster.models.llms.typing import ChatType, GenerateOutput

__all__ = ["OllamaLLM"]

_DEFAULT_HOST = "http://localhost:11434"
#: Ollama options the OpenAI-compatible API carries, and the request field each becomes.
_OPTIONS = {
    "temperature": "temperature",
    "top_p": "top_p",
    "seed": "seed",
    "stop": "stop",
    "num_predict": "max_tokens",
    "frequency_penalty": "frequency_penalty",
    "presence_penalty": "presence_penalty",
}


class OllamaLLM(OpenAILLM):
    """A model served by Ollama.

    Attributes:
        model: the Ollama model (``llama3``, ``qwen2.5:0.5b``, ...).
        host: the Ollama server (default ``$OLLAMA_HOST``, else ``http://localhost:11434``).
        follow_redirects: accepted for distilabel compatibility.
        tokenizer_id: accepted for distilabel compatibility; Ollama applies the chat template.

    Examples:
        >>> llm = OllamaLLM(model="llama3", generation_kwargs={"options": {"temperature": 0.2}})
    """

    host: OptionalRuntimeParameter[str] = Field(default=None, description="The host of the Ollama API.")
    base_url: OptionalRuntimeParameter[str] = Field(  # Ollama's is `host`
        default=None, exclude=True, description="Not used: set `host`."
    )
    api_key: OptionalRuntimeParameter[SecretStr] = Field(  # not $OPENAI_API_KEY: it is not Ollama's
        default=None, description="Sent as the bearer token if given (Ollama checks none)."
    )
    follow_redirects: bool = True
    tokenizer_id: OptionalRuntimeParameter[str] = Field(
        default=None, description="Accepted for distilabel compatibility; Ollama applies the chat template."
    )

    signature_exclude: ClassVar[frozenset[str]] = OpenAILLM.signature_exclude | {
        "base_url",
        "follow_redirects",
        "tokenizer_id",
    }

    def resolve_target(self) -> tuple[str | None, str, SecretStr]:
        """``<host>/v1``, the model, and the key (Ollama checks none)."""
        host = (self.host or os.getenv("OLLAMA_HOST") or _DEFAULT_HOST).rstrip("/")
        if "://" not in host:
            host = f"http://{host}"
        return f"{host}/v1", self.model, self.api_key or SecretStr("ollama")

    def check_generation_kwargs(self) -> None:
        """distilabel's kwargs only, and of ``options`` only those the OpenAI-compatible API carries."""
        super().check_generation_kwargs()
        options = (self.generation_kwargs or {}).get("options") or {}
        unknown = sorted(set(options) - set(_OPTIONS))
        if unknown:
            raise ValueError(
                f"OllamaLLM: options {unknown} have no field in Ollama's OpenAI-compatible API; "
                f"supported: {sorted(_OPTIONS)}."
            )

    async def agenerate(  # type: ignore[override]  # distilabel's generation kwargs
        self,
        input: ChatType,
        num_generations: int = 1,
        format: Literal["", "json"] = "",  # distilabel's name
        options: dict[str, Any] | None = None,
        keep_alive: bool | None = None,
    ) -> GenerateOutput:
        """Generate ``num_generations`` answers to one conversation, one request each.

        Args:
            input: the conversation.
            num_generations: the answers to generate (one request each).
            format: ``"json"`` for a JSON object answer.
            options: Ollama sampling options (``temperature``, ``top_p``, ``seed``, ``stop``,
                ``num_predict``, ``frequency_penalty``, ``presence_penalty``).
            keep_alive: accepted for distilabel compatibility (the server keeps its own setting).
        """
        if not self._clients:
            raise RuntimeError("OllamaLLM: call load() before generating.")
        request: dict[str, Any] = {"model": self._model, "messages": input}
        request.update({_OPTIONS[k]: v for k, v in (options or {}).items() if k in _OPTIONS and v is not None})
        response_format = self.response_format() or ({"type": "json_object"} if format == "json" else None)
        if response_format is not None:
            request["response_format"] = response_format
        return await self._one_request_per_generation(request, num_generations)
