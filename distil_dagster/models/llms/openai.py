"""``OpenAILLM``: chat completions from OpenAI or any OpenAI-compatible server (vLLM, TGI, ollama).

Requests go through the official ``openai`` async client, at most ``max_concurrency`` in flight.
Retries are ours, not the client's (its ``max_retries`` is 0): a 408/409/429/5xx answer, a timeout
or a connection error is retried up to ``max_retries`` times after an exponential backoff
(``retry_backoff`` * 2**attempt, capped at 8 s, minus up to 25 % jitter; a server's
``Retry-After`` up to 60 s wins). What still fails becomes that input's error; the batch goes on.
The API key is a ``SecretStr``: never in the signature, ``pipeline.yaml``, logs or error texts.

The generation kwargs are distilabel's (``max_new_tokens``, ``logprobs``, ``top_logprobs``, ``echo``,
sampling settings, ``stop``, ``response_format``, ``extra_body``) plus ``seed``. Log probabilities
come back under the output's ``logprobs`` key, which a task turns into a ``llm_<task>_logprobs``
column. A prompt string instead of a conversation goes to the legacy ``/completions`` endpoint.

Under the client, connections go through ``LeanAsyncTransport`` (``http_transport``): httpx's
default connection layer costs about half of the client's CPU per request. Where a proxy is
configured the client keeps httpx's transport; its connections are then split over several
clients of at most 16 connections each, and a request borrows a client with a free connection:
httpx's pool scans all its connections on every request and every release, which at 50+
connections costs a third of the client's CPU per request.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import re
from typing import Any, ClassVar

import httpx2
import openai
from pydantic import Field, NonNegativeFloat, NonNegativeInt, PositiveFloat, PrivateAttr, SecretStr

from distil_dagster.mixins.runtime_parameters import OptionalRuntimeParameter
from distil_dagster.models.llms.base import AsyncLLM
from distil_dagster.models.llms.env_defaults import env_secret, env_str
from distil_dagster.models.llms.http_transport import lean_transport
from distil_dagster.models.llms.openai_outputs import completion_output, concatenated_outputs
from distil_dagster.models.llms.typing import ChatType, GenerateOutput
from distil_dagster.secrets import mask_secret

__all__ = ["OpenAILLM", "completion_output", "concatenated_outputs"]

_LOGGER = logging.getLogger("distil_dagster.models.openai")
_API_KEY_ENV = "OPENAI_API_KEY"
_BASE_URL_ENV = "OPENAI_BASE_URL"
_MAX_BACKOFF = 8.0
_MAX_RETRY_AFTER = 60.0
_RETRY_STATUS = frozenset({408, 409, 429})
_CONNECTIONS_PER_CLIENT = 16


def _retry_delay(exc: Exception, attempt: int, backoff: float) -> float | None:
    """Seconds to wait before retrying after ``exc`` (``None``: do not retry)."""
    if isinstance(exc, openai.APIStatusError):
        if exc.status_code not in _RETRY_STATUS and exc.status_code < 500:
            return None
        header = exc.response.headers.get("retry-after")
        try:
            after = float(header) if header is not None else None
        except ValueError:
            after = None
        if after is not None and 0 <= after <= _MAX_RETRY_AFTER:
            return after
    elif not isinstance(exc, openai.APIConnectionError):  # timeouts are connection errors
        return None
    return min(backoff * 2.0**attempt, _MAX_BACKOFF) * (1 - 0.25 * random.random())


class OpenAILLM(AsyncLLM):
    """Chat completions from an OpenAI-compatible HTTP API.

    Attributes:
        model: the model name sent with every request.
        base_url: the API root (default ``$OPENAI_BASE_URL``, else ``https://api.openai.com/v1``).
        api_key: the API key (default ``$OPENAI_API_KEY``); servers that do not check keys accept
            any value.
        timeout: seconds each attempt may take (connect, read, write, pool).
        max_retries: retries of a failed request (429, 5xx, timeouts, connection errors).
        retry_backoff: seconds before the first retry; doubled for each further one.
        default_headers: HTTP headers sent with every request (e.g. a gateway's routing or auth
            headers). A header may carry a credential, so they are left out of the cache signature
            and of ``pipeline.yaml`` (distilabel writes them there): give them again, e.g. as a
            runtime parameter, to a pipeline rebuilt from its file.

    Examples:
        >>> llm = OpenAILLM(model="gpt-4o-mini", base_url="http://localhost:8000/v1", api_key="-")
    """

    model: str
    base_url: OptionalRuntimeParameter[str] = Field(
        default_factory=env_str(_BASE_URL_ENV, "https://api.openai.com/v1"),
        description="The base URL of the OpenAI-compatible API.",
    )
    api_key: OptionalRuntimeParameter[SecretStr] = Field(
        default_factory=env_secret(_API_KEY_ENV), description=f"The API key (default: ${_API_KEY_ENV})."
    )
    timeout: OptionalRuntimeParameter[PositiveFloat] = Field(
        default=120.0, description="Seconds each request attempt may take."
    )
    max_retries: OptionalRuntimeParameter[NonNegativeInt] = Field(
        default=6, description="Retries of a request failing with 429, 5xx, a timeout or a connection error."
    )
    retry_backoff: OptionalRuntimeParameter[NonNegativeFloat] = Field(
        default=0.5, description="Seconds before the first retry; doubled for each further retry."
    )
    default_headers: OptionalRuntimeParameter[dict[str, str]] = Field(
        default=None, exclude=True, description="HTTP headers sent with every request."
    )

    signature_exclude: ClassVar[frozenset[str]] = frozenset(
        {"max_concurrency", "api_key", "timeout", "max_retries", "retry_backoff", "default_headers"}
    )
    api_key_env: ClassVar[str] = _API_KEY_ENV
    """The variable ``api_key`` defaults to (a provider's subclass names its own), named when it is missing."""

    _clients: list[openai.AsyncOpenAI] = PrivateAttr(default_factory=list)
    _free: asyncio.Queue[int] | None = PrivateAttr(default=None)
    _lean: bool = PrivateAttr(default=False)
    _model: str = PrivateAttr(default="")
    _key: SecretStr | None = PrivateAttr(default=None)

    @property
    def model_name(self) -> str:
        return self.model

    def missing_settings(self) -> list[str]:
        """What this LLM lacks to load, one phrase per setting (subclasses add theirs); ``resolve_target``
        raises them together."""
        if self.api_key is not None:
            return []
        return [
            f"no API key; pass `api_key=` or set ${self.api_key_env} "
            "(any non-empty value for servers that do not check keys)"
        ]

    def resolve_target(self) -> tuple[str | None, str, SecretStr]:
        """The API root, the model name sent and the key of this load (subclasses that find
        them elsewhere override it; the fields themselves are left as they are).

        Raises:
            ValueError: naming this class and every missing setting (``missing_settings``).
        """
        missing = self.missing_settings()
        if missing:
            raise ValueError(f"{type(self).__name__}: {'; '.join(missing)}.")
        assert self.api_key is not None, "missing_settings() names a missing key"
        return self.base_url, self.model, self.api_key

    def load(self) -> None:
        """Create the async clients: ``max_concurrency`` connections in all, no retries of their own."""
        super().load()
        base_url, self._model, self._key = self.resolve_target()
        concurrency = self.max_concurrency or 1
        transport = lean_transport(concurrency)
        if transport is not None:
            count, http_clients = 1, [openai.DefaultAsyncHttpxClient(transport=transport)]
        else:
            count = math.ceil(concurrency / _CONNECTIONS_PER_CLIENT)
            size = math.ceil(concurrency / count)
            limits = httpx2.Limits(max_connections=size, max_keepalive_connections=size)
            http_clients = [openai.DefaultAsyncHttpxClient(limits=limits) for _ in range(count)]
        self._clients = [self.make_client(base_url, http_client) for http_client in http_clients]
        for client in self._clients:
            _find_platform(client)
        self._lean = transport is not None
        if not self._lean:  # a request borrows a client with a free connection
            self._free = asyncio.Queue()
            for slot in range(concurrency):
                self._free.put_nowait(slot % count)

    def make_client(self, base_url: str | None, http_client: httpx2.AsyncClient) -> openai.AsyncOpenAI:
        """One async client of this load on ``http_client``, with the key of ``resolve_target`` and no
        retries of its own (a subclass for an API of another shape returns that API's client)."""
        assert self._key is not None, "resolve_target() first"
        return openai.AsyncOpenAI(
            api_key=self._key.get_secret_value(),
            base_url=base_url,
            timeout=self.timeout,
            max_retries=0,
            default_headers=self.default_headers,
            http_client=http_client,
        )

    def admitted(self) -> int:
        """Twice ``max_concurrency`` on the lean transport: it keeps ``max_concurrency`` requests on
        the wire and hands a finished request's connection to a waiting one whose bytes are ready."""
        return (self.max_concurrency or 1) * (2 if self._lean else 1)

    def unload(self) -> None:
        """Close the clients' connections, then the event loop."""
        clients, self._clients, self._free, self._lean = self._clients, [], None, False
        for client in clients:
            self.run_in_loop(client.close())
        super().unload()

    def describe_error(self, exc: BaseException) -> str:
        text = super().describe_error(exc)
        key = self._key or self.api_key
        return mask_secret(text, key.get_secret_value()) if key is not None else text

    def response_format(self) -> dict[str, Any] | None:
        """``response_format`` of the requests, from ``structured_output`` (a JSON schema)."""
        if not self.structured_output:
            return None
        schema = self.structured_output["schema"]
        name = re.sub(r"[^a-zA-Z0-9_-]", "_", str(schema.get("title") or "output"))[:64]
        return {"type": "json_schema", "json_schema": {"name": name, "schema": schema}}

    async def agenerate(  # type: ignore[override]  # explicit generation kwargs, as distilabel
        self,
        input: ChatType | str,
        num_generations: int = 1,
        max_new_tokens: int = 128,
        logprobs: bool = False,
        top_logprobs: int | None = None,
        echo: bool = False,
        frequency_penalty: float = 0.0,
        presence_penalty: float = 0.0,
        temperature: float = 1.0,
        top_p: float = 1.0,
        stop: str | list[str] | None = None,
        response_format: dict[str, Any] | None = None,
        extra_body: dict[str, Any] | None = None,
        seed: int | None = None,
    ) -> GenerateOutput:
        """Generate ``num_generations`` completions for one input (``n`` of one request).

        A conversation goes to ``/chat/completions``; a prompt string to the legacy ``/completions``.

        Args:
            input: the conversation (or a prompt string).
            num_generations: the completions to generate (the request's ``n``).
            max_new_tokens: the most tokens a completion may have (``max_tokens``).
            logprobs: return the log probabilities of the generated tokens (chat only; with
                ``top_logprobs`` candidates per token, under the output's ``logprobs`` key).
            top_logprobs: how many of the most likely tokens to return per position (for a prompt
                string it alone asks for log probabilities).
            echo: return the prompt before the completion (prompt strings only).
            frequency_penalty: penalise tokens by how often they already appear (-2.0 to 2.0).
            presence_penalty: penalise tokens that already appear (-2.0 to 2.0).
            temperature: the sampling temperature.
            top_p: nucleus sampling: keep the tokens within this probability mass.
            stop: a sequence, or a list of sequences, that ends a completion.
            response_format: the request's ``response_format`` (default: from ``structured_output``).
            extra_body: fields added to the request body as they are.
            seed: a sampling seed, for servers that honour it.
        """
        if not self._clients:
            raise RuntimeError("OpenAILLM: call load() before generating.")
        request: dict[str, Any]
        optional: dict[str, Any]
        if isinstance(input, str):
            path, request = "/completions", {"prompt": input}
            optional = {"stop": stop, "logprobs": top_logprobs, "echo": echo or None, "seed": seed}
        else:
            path, request = "/chat/completions", {"messages": input}
            optional = {
                "stop": None if _has_content_parts(input) else stop,  # refused along with images
                "logprobs": logprobs or None,
                "top_logprobs": top_logprobs,
                "seed": seed,
                "response_format": response_format or self.response_format(),
            }
        request.update(
            model=self._model,
            n=num_generations,
            max_tokens=max_new_tokens,
            temperature=temperature,
            top_p=top_p,
            frequency_penalty=frequency_penalty,
            presence_penalty=presence_penalty,
        )
        request.update({k: v for k, v in optional.items() if v is not None})
        request.update(extra_body or {})
        completion = await self._create(request, path)
        return completion_output(completion, num_generations, chat=path == "/chat/completions")

    async def _one_request_per_generation(self, request: dict[str, Any], num_generations: int) -> GenerateOutput:
        """``num_generations`` chat completions of ``request``, one request each, for servers
        without ``n`` (TGI, Ollama), as one output."""
        outputs = [completion_output(await self._create(request), 1) for _ in range(num_generations)]
        return concatenated_outputs(outputs)

    async def _create(self, request: dict[str, Any], path: str = "/chat/completions") -> Any:
        """POST the request on a client with a free connection, retrying as the module docstring says.

        ``client.post`` (the client's documented way to send a raw body) answering the parsed JSON,
        rather than ``chat.completions.create``: that one walks every parameter through a
        type-driven transform and builds a typed model of the answer, together half of the
        client's CPU per request, which caps throughput at high concurrency. Auth, timeouts and
        error types are the client's either way.
        """
        if self._free is None:  # one client: its transport keeps the limit
            return await self._post(self._clients[0], request, path)
        index = await self._free.get()
        try:
            return await self._post(self._clients[index], request, path)
        finally:
            self._free.put_nowait(index)

    async def _post(self, client: openai.AsyncOpenAI, request: dict[str, Any], path: str) -> Any:
        attempt = 0
        while True:
            try:
                return await client.post(path, body=request, cast_to=object)
            except openai.OpenAIError as exc:
                delay = (
                    _retry_delay(exc, attempt, self.retry_backoff or 0.0) if attempt < (self.max_retries or 0) else None
                )
                if delay is None:
                    raise
                _LOGGER.debug("OpenAILLM retry %d in %.2fs after %s", attempt + 1, delay, type(exc).__name__)
                attempt += 1
                await asyncio.sleep(delay)


def _find_platform(client: openai.AsyncOpenAI) -> None:
    """Let the client know its platform headers before the first request.

    Otherwise each request started before the first one returns looks them up in a thread of its
    own, and the requests reach the transport in the order those threads end: requests of a later
    batch then take connections ahead of an earlier batch's, which finishes a round trip later.
    (``openai`` keeps them in a private attribute, hence the guard: a client without it is left be.)
    """
    from openai import _base_client

    if getattr(client, "_platform", "unknown") is None and hasattr(_base_client, "get_platform"):
        client._platform = _base_client.get_platform()


def _has_content_parts(conversation: ChatType) -> bool:
    """Whether a user message's content is a list of parts (text and images) rather than text."""
    return any(m.get("role") == "user" and isinstance(m.get("content"), list) for m in conversation)
