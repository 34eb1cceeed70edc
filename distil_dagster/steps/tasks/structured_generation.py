"""``StructuredGeneration``: generate from an instruction, each row constrained by its own JSON schema.

A row's ``structured_output`` (``{"format": "json", "schema": {...}}``) reaches the LLM the way an
OpenAI-compatible request constrains one answer: as its ``response_format`` generation kwarg. One
``generate_outputs`` call goes to the LLM per distinct schema of a batch; with an ``AsyncLLM`` those
calls run at once, from threads (its ``generate`` is thread-safe and its semaphore still bounds
the requests in flight), so that rows with different schemas do not wait for each other. An LLM
whose generation method takes no ``response_format`` (nor ``**kwargs``) is refused when the task
is created.
"""

from __future__ import annotations

import inspect
import json
import re
import warnings
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from pydantic import BaseModel, model_validator

from distil_dagster.models.llms.base import LLM, AsyncLLM
from distil_dagster.models.llms.typing import ChatType, GenerateOutput
from distil_dagster.steps.tasks.base import Task
from distil_dagster.steps.tasks.chat_generation import is_openai_format
from distil_dagster.steps.typing import StepColumns

__all__ = ["StructuredGeneration", "response_format_of"]

_KWARG = "response_format"
#: Threads sending the schema groups of one batch at once (the LLM's semaphore bounds the
#: requests; more threads would only wait on it).
_MAX_GROUP_THREADS = 16
_NAME_UNSAFE = re.compile(r"[^a-zA-Z0-9_-]")


def response_format_of(structured_output: Any) -> dict[str, Any] | None:
    """The ``response_format`` of a row's ``structured_output`` (``None``: the row has none).

    Accepts ``{"format": "json", "schema": <JSON schema>}``; ``format`` may be left out, and the
    schema may be a pydantic model class or a JSON string. Raises ``ValueError`` for anything else
    (a ``"regex"`` format included: an OpenAI-compatible ``response_format`` takes a JSON schema).
    """
    if structured_output is None:
        return None
    if not isinstance(structured_output, dict):
        raise ValueError(
            "`structured_output` must be a dict like {'format': 'json', 'schema': {...}}, "
            f"got {type(structured_output).__name__}."
        )
    kind = structured_output.get("format") or "json"
    if kind != "json":
        raise ValueError(
            f"`structured_output` has format {kind!r}; only 'json' (a JSON schema) can be sent as a response_format."
        )
    schema = structured_output.get("schema")
    if isinstance(schema, type) and issubclass(schema, BaseModel):
        schema = schema.model_json_schema()
    elif isinstance(schema, str):
        try:
            schema = json.loads(schema)
        except ValueError as exc:
            raise ValueError(f"`structured_output['schema']` is a string but not JSON: {exc}.") from exc
    if not isinstance(schema, dict) or not schema:
        raise ValueError(
            f"`structured_output['schema']` must be a JSON schema (a non-empty dict), got {schema!r:.100}."
        )
    name = _NAME_UNSAFE.sub("_", str(schema.get("title") or "output"))[:64]
    return {"type": "json_schema", "json_schema": {"name": name, "schema": schema}}


def takes_response_format(llm: LLM) -> bool:
    """Whether ``llm``'s generation method accepts a ``response_format`` kwarg (named, or ``**kwargs``)."""
    params = inspect.signature(llm.generation_method()).parameters
    return _KWARG in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


class StructuredGeneration(Task):
    """Generate text for an instruction, following the JSON schema of the row's ``structured_output``.

    Input columns: ``instruction`` (a string, or a conversation of ``{"role", "content"}`` dicts);
    ``structured_output`` (optional; ``{"format": "json", "schema": {...}}``, the schema a dict, a
    pydantic model class or a JSON string); ``system_prompt`` with ``use_system_prompt``.
    Output columns: ``generation`` (the text as generated: parse it downstream), ``model_name``.

    A row without ``structured_output`` is generated with the LLM's own settings (its
    ``structured_output``, if any); a malformed one fails that row alone (``error_<task>``).

    Attributes:
        use_system_prompt: send the row's ``system_prompt`` column as the system message (a
            conversation that starts with a system message keeps its own).

    Examples:
        >>> StructuredGeneration(llm=OpenAILLM(model="gpt-4o-mini"))  # doctest: +SKIP
    """

    use_system_prompt: bool = False

    @model_validator(mode="after")
    def _check_llm_takes_a_schema(self) -> StructuredGeneration:
        if not takes_response_format(self.llm):
            llm = type(self.llm).__name__
            raise ValueError(
                f"StructuredGeneration '{self.name}': {llm} cannot take a schema per row (its generation "
                f"method has no `{_KWARG}` parameter). Use an LLM that has one, such as OpenAILLM for any "
                "OpenAI-compatible server, or, for one schema for every row, set the LLM's "
                "`structured_output` and use TextGeneration."
            )
        return self

    @property
    def inputs(self) -> StepColumns:
        columns = {"instruction": True, "structured_output": False}
        return {"system_prompt": True, **columns} if self.use_system_prompt else columns

    @property
    def outputs(self) -> list[str]:
        return ["generation", "model_name"]

    def format_input(self, input: dict[str, Any]) -> ChatType:
        """The conversation of one row (its ``structured_output`` is checked here: a malformed one
        fails the row)."""
        instruction = input.get("instruction")
        if isinstance(instruction, str):
            messages: ChatType = [{"role": "user", "content": instruction}]
        elif isinstance(instruction, list) and is_openai_format(instruction):
            messages = [{"role": m["role"], "content": m["content"]} for m in instruction]
        else:
            raise ValueError(
                "`instruction` must be a string or a list of {'role', 'content'} dicts, "
                f"got {type(instruction).__name__}."
            )
        response_format_of(input.get("structured_output"))
        if self.use_system_prompt and messages[0]["role"] != "system":
            system_prompt = input.get("system_prompt")
            if system_prompt:
                messages.insert(0, {"role": "system", "content": system_prompt})
            else:
                warnings.warn(
                    f"StructuredGeneration '{self.name}': `use_system_prompt` is set but a row has no "
                    "`system_prompt`; it is sent without a system message.",
                    UserWarning,
                    stacklevel=2,
                )
        return messages

    def format_output(self, output: str | None, input: dict[str, Any] | None = None) -> dict[str, Any]:
        """The generated text as it is (as distilabel: no parsing)."""
        return {"generation": output}

    def _sample_input(self) -> ChatType:
        """The conversation of a placeholder row without a schema, for ``print()``."""
        row = {"instruction": "<PLACEHOLDER_INSTRUCTION>", "system_prompt": "<PLACEHOLDER_SYSTEM_PROMPT>"}
        return self.format_input(row)

    def _generate(
        self,
        rows: list[dict[str, Any]],
        conversations: list[ChatType],
        num_generations: int,
        generation_kwargs: dict[str, Any],
    ) -> list[GenerateOutput]:
        """One ``generate_outputs`` call per distinct schema (concurrent for an ``AsyncLLM``), the
        row's schema as ``response_format``; the outputs back in the rows' order."""
        groups: dict[str, tuple[dict[str, Any], list[int]]] = {}
        for index, row in enumerate(rows):
            response_format = response_format_of(row.get("structured_output"))
            kwargs = generation_kwargs if response_format is None else {**generation_kwargs, _KWARG: response_format}
            key = json.dumps(response_format, sort_keys=True, default=str)
            groups.setdefault(key, (kwargs, []))[1].append(index)

        def generate(group: tuple[dict[str, Any], list[int]]) -> list[GenerateOutput]:
            kwargs, indices = group
            batch = [conversations[i] for i in indices]
            return self.llm.generate_outputs(batch, num_generations=num_generations, **kwargs)

        if len(groups) > 1 and isinstance(self.llm, AsyncLLM):
            with ThreadPoolExecutor(
                min(len(groups), _MAX_GROUP_THREADS), thread_name_prefix=f"{self.name}-schemas"
            ) as pool:
                results = list(pool.map(generate, groups.values()))
        else:
            results = [generate(group) for group in groups.values()]
        outputs: list[GenerateOutput | None] = [None] * len(rows)
        for (_, indices), result in zip(groups.values(), results):
            if len(result) != len(indices):
                raise ValueError(
                    f"{type(self.llm).__name__}.generate returned {len(result)} outputs for {len(indices)} inputs."
                )
            for index, output in zip(indices, result):
                outputs[index] = output
        return [output for output in outputs if output is not None]
