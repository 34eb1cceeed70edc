"""``LLM`` and ``AsyncLLM``: the model backends tasks call (distilabel's ``distilabel.models.llms``).

An LLM is a pydantic model with runtime parameters (``generation_kwargs``, ``structured_output``,
...) that become nested runtime parameters of the task holding it. The task calls ``load()`` once
in the worker, ``generate_outputs(inputs, num_generations, **generation_kwargs)`` per batch (which
calls ``generate``) and ``unload()`` at the end. The accepted generation kwargs are the named
parameters of ``generate`` (``agenerate`` for an ``AsyncLLM``); ``get_runtime_parameters_info()``
lists them under ``generation_kwargs``, described by the method's ``Args:`` docstring section.
``AsyncLLM`` implements ``generate`` by running ``agenerate`` for every input on an event loop
owned by the instance (in a thread of its own), at most ``max_concurrency`` at a time; a failed
input becomes a ``None`` generation with its error text instead of failing the batch.
"""

from __future__ import annotations

import asyncio
import inspect
import re
import threading
from abc import abstractmethod
from collections.abc import Callable
from typing import Any, ClassVar

from pydantic import (
    BaseModel,
    Field,
    PositiveInt,
    PrivateAttr,
    field_validator,
)

from distil_dagster.mixins.runtime_parameters import (
    OptionalRuntimeParameter,
    RuntimeParameter,
    RuntimeParameterInfo,
)
from distil_dagster.models.base import Model
from distil_dagster.models.llms.typing import ChatType, GenerateOutput

__all__ = ["LLM", "AsyncLLM", "failed_output"]

#: Parameters of ``generate``/``agenerate`` that are not generation kwargs.
_NOT_GENERATION_KWARGS = frozenset({"self", "input", "inputs", "num_generations"})
_ARG_LINE = re.compile(r"\*{0,2}(\w+)(?:\s*\([^)]*\))?\s*:\s*(.*)")


def failed_output(num_generations: int, error: str) -> GenerateOutput:
    """The output of an input whose generation failed: ``None`` texts, the error, zero tokens."""
    return {
        "generations": [None] * num_generations,
        "statistics": {"input_tokens": [0] * num_generations, "output_tokens": [0] * num_generations},
        "errors": [error] * num_generations,
    }


class LLM(Model):
    """Base class of LLM backends.

    Subclasses implement ``model_name`` and ``generate`` (and ``load``/``unload`` when they hold
    live resources such as clients or weights). Live state lives in private attributes, which are
    reset when the LLM is pickled (steps travel to worker processes before ``load()``).

    Attributes:
        generation_kwargs: keyword arguments of every ``generate`` call (temperature, ...).
        structured_output: ``{"schema": <JSON schema or pydantic model class>}`` to constrain
            generations where the backend supports it.
    """

    generation_kwargs: RuntimeParameter[dict[str, Any]] = Field(
        default={}, description="The kwargs to be propagated to the `generate` method of the LLM."
    )
    structured_output: OptionalRuntimeParameter[dict[str, Any]] = Field(
        default=None, description="The JSON schema the generations must follow: {'schema': {...}}."
    )

    @field_validator("structured_output", mode="before")
    @classmethod
    def _schema_to_dict(cls, value: Any) -> Any:
        """Accept a pydantic model class as ``schema`` and store its JSON schema."""
        if isinstance(value, dict) and isinstance(value.get("schema"), type):
            schema_cls = value["schema"]
            if issubclass(schema_cls, BaseModel):
                return {**value, "schema": schema_cls.model_json_schema()}
        return value

    def get_generation_kwargs(self, **overrides: Any) -> dict[str, Any]:
        """``generation_kwargs`` updated with ``overrides``."""
        return {**(self.generation_kwargs or {}), **overrides}

    def generation_method(self) -> Callable[..., Any]:
        """The method whose named parameters are the generation kwargs (``generate``)."""
        return self.generate

    def generation_parameters(self) -> dict[str, inspect.Parameter]:
        """The generation kwargs the backend accepts, in the order of its method's signature."""
        params = inspect.signature(self.generation_method()).parameters
        return {
            name: p
            for name, p in params.items()
            if name not in _NOT_GENERATION_KWARGS and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        }

    def get_runtime_parameters_info(self) -> list[RuntimeParameterInfo]:
        """As every runtime-parameter owner, with ``generation_kwargs`` described as distilabel does:
        ``{"name", "description", "keys": [{"name", "optional", "description"?}, ...]}``, a key per
        named parameter of the generation method (``description`` from its ``Args:`` docstring)."""
        info = super().get_runtime_parameters_info()
        descriptions = _documented_args(self.generation_method())
        keys: list[RuntimeParameterInfo] = []
        for name, param in self.generation_parameters().items():
            key: RuntimeParameterInfo = {"name": name, "optional": param.default is not param.empty}
            if description := descriptions.get(name):
                key["description"] = description
            keys.append(key)
        for entry in info:
            if entry["name"] == "generation_kwargs" and "runtime_parameters_info" not in entry:
                entry.pop("optional", None)
                entry["keys"] = keys
        return info

    def check_generation_kwargs(self) -> None:
        """Raise ``ValueError`` naming the ``generation_kwargs`` the backend does not accept."""
        params = inspect.signature(self.generation_method()).parameters
        if any(p.kind is p.VAR_KEYWORD for p in params.values()):
            return
        accepted = list(self.generation_parameters())
        unknown = sorted(set(self.generation_kwargs or {}) - set(accepted))
        if unknown:
            raise ValueError(
                f"{type(self).__name__}: unknown generation_kwargs {unknown}; accepted: {sorted(accepted)}."
            )

    @abstractmethod
    def generate(self, inputs: list[ChatType], num_generations: int = 1, **kwargs: Any) -> list[GenerateOutput]:
        """Generate ``num_generations`` texts for each input conversation.

        Args:
            inputs: the conversations.
            num_generations: generations per input.
            **kwargs: generation keyword arguments (``generation_kwargs`` given by the task).

        Returns:
            One ``GenerateOutput`` per input, in order.
        """

    def generate_outputs(self, inputs: list[ChatType], num_generations: int = 1, **kwargs: Any) -> list[GenerateOutput]:
        """What tasks call for a batch: ``generate`` (distilabel's entry point, which also routes to
        offline batch generation there; override it to change how a batch is generated)."""
        return self.generate(inputs, num_generations=num_generations, **kwargs)


def _documented_args(func: Callable[..., Any]) -> dict[str, str]:
    """The parameter descriptions of a Google-style ``Args:`` docstring section."""
    lines = (inspect.getdoc(func) or "").splitlines()
    start = next((i + 1 for i, line in enumerate(lines) if line.strip() in ("Args:", "Arguments:")), None)
    if start is None:
        return {}
    args: dict[str, str] = {}
    indent: int | None = None
    current: str | None = None
    for line in lines[start:]:
        text = line.strip()
        if not text:
            continue
        depth = len(line) - len(line.lstrip())
        if depth == 0:  # the next section
            break
        indent = depth if indent is None else indent
        match = _ARG_LINE.fullmatch(text) if depth == indent else None
        if match:
            current = match.group(1)
            args[current] = match.group(2)
        elif current is not None:
            args[current] = f"{args[current]} {text}".strip()
    return args


class AsyncLLM(LLM):
    """An LLM whose requests run concurrently on an event loop owned by the instance.

    Subclasses implement ``agenerate`` for one input. ``generate`` runs a batch through it and
    may be called from several threads at once (a worker computing several batches of one step
    concurrently): every call runs on the instance's loop, in a thread of its own, and one
    semaphore keeps at most ``admitted()`` calls of ``agenerate`` running across all of them
    (``max_concurrency``, unless the backend bounds its requests in flight itself).

    Attributes:
        max_concurrency: the most requests in flight at once.
    """

    max_concurrency: RuntimeParameter[PositiveInt] = Field(
        default=64, description="The maximum number of requests in flight at once."
    )

    signature_exclude: ClassVar[frozenset[str]] = frozenset({"max_concurrency"})

    _event_loop: asyncio.AbstractEventLoop | None = PrivateAttr(default=None)
    _loop_thread: threading.Thread | None = PrivateAttr(default=None)
    _loop_lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)
    _semaphore: asyncio.Semaphore | None = PrivateAttr(default=None)

    @property
    def event_loop(self) -> asyncio.AbstractEventLoop:
        """This instance's event loop, running in its own thread (started on first use, and again
        after ``unload()``)."""
        with self._loop_lock:
            if self._event_loop is None or self._event_loop.is_closed():
                loop = asyncio.new_event_loop()
                thread = threading.Thread(target=loop.run_forever, name=f"{type(self).__name__}-loop", daemon=True)
                thread.start()
                self._event_loop, self._loop_thread, self._semaphore = loop, thread, None
            return self._event_loop

    @abstractmethod
    async def agenerate(self, input: ChatType, num_generations: int = 1, **kwargs: Any) -> GenerateOutput:
        """Generate ``num_generations`` texts for one conversation."""

    def generation_method(self) -> Callable[..., Any]:
        """``agenerate``: its named parameters are the generation kwargs."""
        return self.agenerate

    def generate(self, inputs: list[ChatType], num_generations: int = 1, **kwargs: Any) -> list[GenerateOutput]:
        """Run ``agenerate`` for every input, ``max_concurrency`` at a time; failures become errors."""
        return self.run_in_loop(self._agenerate_all(inputs, num_generations, **kwargs))

    def run_in_loop(self, coro: Any) -> Any:
        """Run ``coro`` to completion on this instance's loop and return its result (thread-safe)."""
        return asyncio.run_coroutine_threadsafe(coro, self.event_loop).result()

    async def _agenerate_all(self, inputs: list[ChatType], num_generations: int, **kwargs: Any) -> list[GenerateOutput]:
        if self._semaphore is None:  # created on the loop's thread, shared by every call
            self._semaphore = asyncio.Semaphore(self.admitted())
        semaphore = self._semaphore

        async def one(conversation: ChatType) -> GenerateOutput:
            async with semaphore:
                try:
                    return await self.agenerate(conversation, num_generations, **kwargs)
                except Exception as exc:  # one failed request must not fail the batch
                    return failed_output(num_generations, self.describe_error(exc))

        return list(await asyncio.gather(*(one(c) for c in inputs)))

    def admitted(self) -> int:
        """How many ``agenerate`` calls may run at once: ``max_concurrency``, unless the backend
        keeps the requests on the wire to ``max_concurrency`` itself and lets more get ready."""
        return self.max_concurrency or 1

    def describe_error(self, exc: BaseException) -> str:
        """The error text recorded for a failed input (subclasses scrub secrets here)."""
        return f"{type(exc).__name__}: {exc}"

    def unload(self) -> None:
        """Stop and close the event loop (subclasses close their clients first)."""
        with self._loop_lock:
            loop, thread = self._event_loop, self._loop_thread
            self._event_loop, self._loop_thread, self._semaphore = None, None, None
        if loop is not None and not loop.is_closed():
            asyncio.run_coroutine_threadsafe(loop.shutdown_asyncgens(), loop).result()
            loop.call_soon_threadsafe(loop.stop)
            if thread is not None:
                thread.join()
            loop.close()
        super().unload()
