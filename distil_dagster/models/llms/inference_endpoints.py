"""``InferenceEndpointsLLM``: distilabel's Hugging Face LLM, over the OpenAI-compatible chat API.

Three ways to reach a model, as in distilabel:

- ``model_id`` alone: Hugging Face's serverless inference (the router's OpenAI-compatible API,
  ``https://router.huggingface.co/v1``, or ``$HF_INFERENCE_BASE_URL``), the model named per request.
- ``base_url``: a Text Generation Inference (TGI) server or any server with ``/v1/chat/completions``
  under that root (vLLM, a dedicated endpoint's URL).
- ``endpoint_name`` (and ``endpoint_namespace``): a dedicated Inference Endpoint, whose URL is
  looked up on the Hub when the step loads.

The token is ``api_key``, else ``$HF_TOKEN``, else the saved ``hf auth login`` token; a local server
that checks none accepts any value. Requests, retries and bounded concurrency are ``OpenAILLM``'s.

What differs from distilabel: the conversation always goes to the chat API, so the server applies
the model's chat template; ``tokenizer_id`` (distilabel's switch to templating locally and calling
the raw text-generation API) is accepted but changes nothing, and the text-generation-only kwargs
(``do_sample``, ``repetition_penalty``, ``top_k``, ``typical_p``, ``watermark``, ``top_n_tokens``,
``return_full_text``) are accepted and not sent, as distilabel does on its chat path. Each
generation is its own request (TGI's chat API has no ``n``), as distilabel does, and a request
carries only the kwargs that are set (besides ``max_tokens`` and ``temperature``): TGI refuses
``top_p=1.0`` and turns any ``presence_penalty`` p, 0.0 included, into a repetition penalty p + 2.
"""

from __future__ import annotations

import os
from typing import Any, ClassVar

from pydantic import Field, SecretStr, model_validator

from distil_dagster.mixins.runtime_parameters import OptionalRuntimeParameter
from distil_dagster.models.llms.openai import OpenAILLM
from distil_dagster.models.llms.typing import ChatType, GenerateOutput

__all__ = ["InferenceEndpointsLLM"]

_ROUTER = "https://router.huggingface.co/v1"
_ROUTER_ENV = "HF_INFERENCE_BASE_URL"
_LOCAL_MODEL = "tgi"  # the model name TGI's chat API expects


def _hf_token() -> SecretStr | None:
    value = os.getenv("HF_TOKEN")
    return SecretStr(value) if value else None


class InferenceEndpointsLLM(OpenAILLM):
    """A model on Hugging Face inference (serverless, a dedicated endpoint) or on a TGI server.

    Attributes:
        model_id: the Hub model (serverless inference, or the model a multi-model server serves).
        endpoint_name: a dedicated Inference Endpoint's name (its URL is looked up when loading).
        endpoint_namespace: the user or organisation owning ``endpoint_name``.
        base_url: a server's root (``http://localhost:8080``); ``/v1`` is added when missing.
        api_key: the Hugging Face token (default ``$HF_TOKEN``, else the saved login).
        tokenizer_id: accepted for distilabel compatibility; the server applies the chat template.
        model_display_name: the ``model_name`` written to rows (default: ``model_id`` or the endpoint).

    Examples:
        >>> llm = InferenceEndpointsLLM(model_id="meta-llama/Llama-3.1-8B-Instruct")
        >>> local = InferenceEndpointsLLM(base_url="http://localhost:8080")
    """

    model: str = Field(default="", exclude=True)  # OpenAILLM's; sent as ``model_id`` (or ``tgi``)
    model_id: str | None = None
    endpoint_name: OptionalRuntimeParameter[str] = Field(
        default=None, description="The name of the Inference Endpoint to use for the LLM."
    )
    endpoint_namespace: OptionalRuntimeParameter[str] = Field(
        default=None, description="The namespace of the Inference Endpoint to use for the LLM."
    )
    base_url: OptionalRuntimeParameter[str] = Field(  # no OpenAI default here
        default=None, description="The base URL to use for the Inference Endpoints API requests."
    )
    api_key: OptionalRuntimeParameter[SecretStr] = Field(
        default_factory=_hf_token,
        description="The API key to authenticate the requests to the Inference Endpoints API.",
    )
    tokenizer_id: str | None = None
    model_display_name: str | None = None

    signature_exclude: ClassVar[frozenset[str]] = OpenAILLM.signature_exclude | {
        "tokenizer_id",
        "model_display_name",
        "model",
    }

    @model_validator(mode="after")
    def _one_target(self) -> InferenceEndpointsLLM:
        given = [n for n in ("model_id", "endpoint_name", "base_url") if getattr(self, n)]
        if not given:
            raise ValueError("InferenceEndpointsLLM: give `model_id`, `endpoint_name` or `base_url`.")
        if self.endpoint_name and (self.base_url or self.model_id):
            raise ValueError("InferenceEndpointsLLM: give `endpoint_name` alone, not with `base_url` or `model_id`.")
        return self

    @property
    def model_name(self) -> str:
        return self.model_display_name or self.model_id or self.endpoint_name or self.base_url or _LOCAL_MODEL

    def resolve_target(self) -> tuple[str | None, str, SecretStr]:
        """The server (the router, ``base_url`` or the endpoint's URL), the model name sent
        (``model_id``, else TGI's ``tgi``) and the token (``api_key``, ``$HF_TOKEN``, the saved login;
        any value for a server that checks none)."""
        key = self.api_key
        if key is None:
            from huggingface_hub import get_token

            token = get_token()
            key = SecretStr(token) if token else None
        if self.endpoint_name:
            base_url = _with_v1(self._endpoint_url(key))
        elif self.base_url:
            base_url = _with_v1(self.base_url)
        else:
            base_url = os.getenv(_ROUTER_ENV) or _ROUTER
            if key is None:
                raise ValueError(
                    "InferenceEndpointsLLM: serverless inference needs a Hugging Face token; pass `api_key=`, "
                    "set $HF_TOKEN or run `hf auth login`."
                )
        return base_url, self.model_id or _LOCAL_MODEL, key or SecretStr("-")

    def _endpoint_url(self, key: SecretStr | None) -> str:
        from huggingface_hub import get_inference_endpoint

        token = key.get_secret_value() if key is not None else None
        assert self.endpoint_name is not None
        endpoint = get_inference_endpoint(self.endpoint_name, namespace=self.endpoint_namespace, token=token)
        if not endpoint.url:
            raise ValueError(
                f"InferenceEndpointsLLM: Inference Endpoint '{self.endpoint_name}' has no URL "
                f"(status {endpoint.status!r}); start it first."
            )
        return str(endpoint.url)

    async def agenerate(  # type: ignore[override]  # distilabel's generation kwargs
        self,
        input: ChatType,
        num_generations: int = 1,
        max_new_tokens: int = 128,
        frequency_penalty: float | None = None,
        logit_bias: list[float] | None = None,
        logprobs: bool = False,
        presence_penalty: float | None = None,
        seed: int | None = None,
        stop_sequences: list[str] | None = None,
        temperature: float = 1.0,
        tool_choice: dict[str, str] | str | None = None,
        tool_prompt: str | None = None,
        tools: list[dict[str, Any]] | None = None,
        top_logprobs: int | None = None,
        top_n_tokens: int | None = None,
        top_p: float | None = None,
        do_sample: bool = False,
        repetition_penalty: float | None = None,
        return_full_text: bool = False,
        top_k: int | None = None,
        typical_p: float | None = None,
        watermark: bool = False,
    ) -> GenerateOutput:
        """Generate ``num_generations`` answers to one conversation, one request each.

        Args:
            input: the conversation.
            num_generations: the answers to generate (one request each).
            max_new_tokens: the most tokens an answer may have.
            frequency_penalty: penalise tokens by how often they already appear (-2.0 to 2.0).
            logit_bias: biases of the tokens' likelihoods.
            logprobs: return the log probabilities of the generated tokens.
            presence_penalty: penalise tokens that already appear (-2.0 to 2.0).
            seed: a sampling seed.
            stop_sequences: sequences that end an answer.
            temperature: the sampling temperature.
            tool_choice: which tool the model should call.
            tool_prompt: the prompt appended before the tools.
            tools: tools the model may call.
            top_logprobs: how many of the most likely tokens to return per position.
            top_n_tokens: text-generation API only: not sent.
            top_p: nucleus sampling: keep the tokens within this probability mass.
            do_sample: text-generation API only: not sent.
            repetition_penalty: text-generation API only: not sent.
            return_full_text: text-generation API only: not sent.
            top_k: text-generation API only: not sent.
            typical_p: text-generation API only: not sent.
            watermark: text-generation API only: not sent.
        """
        if not self._clients:
            raise RuntimeError("InferenceEndpointsLLM: call load() before generating.")
        # Only what is set, as huggingface_hub's chat_completion sends: TGI refuses top_p=1.0 and
        # turns any presence_penalty p (0.0 included) into a repetition penalty of p + 2.
        optional = {
            "frequency_penalty": frequency_penalty,
            "logit_bias": logit_bias,
            "logprobs": logprobs or None,
            "presence_penalty": presence_penalty,
            "seed": seed,
            "stop": stop_sequences,
            "tool_choice": tool_choice,
            "tool_prompt": tool_prompt,
            "tools": tools,
            "top_logprobs": top_logprobs,
            "top_p": top_p,
            "response_format": self.response_format(),
        }
        request = {"model": self._model, "messages": input, "max_tokens": max_new_tokens, "temperature": temperature}
        request.update({k: v for k, v in optional.items() if v is not None})
        return await self._one_request_per_generation(request, num_generations)


def _with_v1(url: str) -> str:
    root = url.rstrip("/")
    return root if root.endswith("/v1") else f"{root}/v1"
