"""``Task`` and ``GeneratorTask``: steps that ask an LLM and format its answers into columns.

A ``Task`` formats each row into a conversation (``format_input(row)``), asks its LLM for the
whole batch (``llm.generate_outputs``), and turns each generation into output columns
(``format_output(text, row)``). Rows get ``model_name`` and, in ``distilabel_metadata``,
``raw_output_<task>``, ``raw_input_<task>`` and ``statistics_<task>`` (token usage), as in
distilabel 1.5. Other keys of the LLM's output (such as ``logprobs``) become the columns
``llm_<task>_<key>``, one value per generation (a list per row with ``group_generations``). A row
whose input, generation or output formatting fails keeps its output columns ``None`` with
``error_<task>`` in ``distilabel_metadata``; the other rows of the batch are unaffected.

A ``GeneratorTask`` is a generator step holding an LLM: its ``process(offset)`` builds the
conversations itself and uses ``_format_outputs`` to turn each input's output into rows.
"""

from __future__ import annotations

import logging
import math
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from typing import Any, ClassVar

from pydantic import BaseModel, Field, PositiveInt, PrivateAttr, field_validator

from distil_dagster.mixins.runtime_parameters import RuntimeParameter
from distil_dagster.models.llms.base import LLM, AsyncLLM, failed_output
from distil_dagster.models.llms.typing import ChatType, GenerateOutput
from distil_dagster.steps.base import GeneratorStep, Step, StepInput, _Step
from distil_dagster.steps.typing import StepOutput

__all__ = ["GeneratorTask", "Task", "group_dicts"]

METADATA = "distilabel_metadata"
_LOGGER = logging.getLogger("distil_dagster.steps.tasks")
#: Upper bound of ``Task.concurrent_batches`` (batches held in memory by one replica at once).
_MAX_CONCURRENT_BATCHES = 8
#: Keys of a ``GenerateOutput`` that are not extra columns.
_OWN_OUTPUT_KEYS = frozenset({"generations", "statistics", "errors"})


def group_dicts(*dicts: dict[str, Any]) -> dict[str, list[Any]]:
    """Combine dicts into one dict of lists (a missing key gives ``None`` in its list)."""
    keys = dict.fromkeys(k for d in dicts for k in d)
    return {k: [d.get(k) for d in dicts] for k in keys}


def extra_output_keys(outputs: Iterable[GenerateOutput]) -> list[str]:
    """The keys of the outputs beyond generations, statistics and errors (e.g. ``logprobs``), in order."""
    return list(dict.fromkeys(k for output in outputs for k in output if k not in _OWN_OUTPUT_KEYS))


def _nth(values: Any, index: int) -> Any:
    """The value of generation ``index`` of an extra output key (one value per generation)."""
    if isinstance(values, (list, tuple)):
        return values[index] if index < len(values) else None
    return values


class _Task(_Step, ABC):
    """What ``Task`` and ``GeneratorTask`` share: the LLM, its lifecycle and the output formatting.

    Attributes:
        llm: the model that answers (its runtime parameters nest under ``llm``).
        num_generations: generations per input row.
        group_generations: one row per input with a list per output column (instead of one row
            per generation).
        add_raw_output: keep the generated text in ``raw_output_<task>`` of ``distilabel_metadata``.
        add_raw_input: keep the conversation sent in ``raw_input_<task>`` of ``distilabel_metadata``.
        use_default_structured_output: when the LLM has no ``structured_output``, constrain it to
            the task's own schema (``get_structured_output()``) while the task is loaded.
    """

    llm: LLM
    group_generations: bool = False
    num_generations: RuntimeParameter[PositiveInt] = Field(
        default=1, description="The number of generations to be produced per input."
    )
    add_raw_output: RuntimeParameter[bool] = Field(
        default=True,
        description="Whether to include the raw output of the LLM in the key `raw_output_<TASK_NAME>` "
        "of the `distilabel_metadata` dictionary output column",
    )
    add_raw_input: RuntimeParameter[bool] = Field(
        default=True,
        description="Whether to include the raw input of the LLM in the key `raw_input_<TASK_NAME>` "
        "of the `distilabel_metadata` dictionary column",
    )
    use_default_structured_output: bool = False

    # The LLM enters the signature through ``signature_extra`` (without its execution settings),
    # with the structured output ``use_default_structured_output`` gives it, when it gives one.
    signature_exclude: ClassVar[frozenset[str]] = frozenset({"llm", "use_default_structured_output"})

    _structured_output_set: bool = PrivateAttr(default=False)

    @field_validator("llm", mode="before")
    @classmethod
    def _llm_from_dict(cls, value: Any) -> Any:
        """Rebuild the LLM from its dump (``pipeline.yaml``), which names its class."""
        return LLM.from_dict(value) if isinstance(value, dict) else value

    def format_input(self, input: dict[str, Any]) -> ChatType:
        """The conversation sent to the LLM for one row (``Task`` subclasses must implement it)."""
        raise NotImplementedError(f"{type(self).__name__} does not format inputs into conversations.")

    @abstractmethod
    def format_output(self, output: str | None, input: dict[str, Any] | None = None) -> dict[str, Any]:
        """The output columns of one generation of ``input``."""

    # -- structured output ---------------------------------------------------------------------
    def get_structured_output(self) -> dict[str, Any] | type[BaseModel] | None:
        """The JSON schema (or pydantic model) the task's answers follow, for tasks that have one;
        used with ``use_default_structured_output``. ``None``: the task has none."""
        return None

    def default_structured_output(self) -> dict[str, Any] | None:
        """The ``structured_output`` that ``load()`` gives the LLM: ``{"schema": <the task's schema>}``
        with ``use_default_structured_output`` when the task has a schema and the LLM has none."""
        if not self.use_default_structured_output or self.llm.structured_output:
            return None
        schema = self.get_structured_output()
        if isinstance(schema, type) and issubclass(schema, BaseModel):
            schema = schema.model_json_schema()
        return {"schema": schema} if schema else None

    # -- signature, resources --------------------------------------------------------------------
    def signature_extra(self) -> dict[str, Any]:
        llm = self.llm.signature_fields()
        if (default := self.default_structured_output()) is not None:
            llm["structured_output"] = default  # as if set on the LLM: the same generations
        return {**super().signature_extra(), "llm": llm}

    def required_gpus(self) -> int:
        """GPUs per replica: the LLM's (or ``resources.gpus`` when larger)."""
        return max(super().required_gpus(), self.llm.required_gpus())

    # -- lifecycle -------------------------------------------------------------------------------
    def load(self) -> None:
        """Check the generation kwargs, give the LLM the task's default structured output (see
        ``use_default_structured_output``) and load the LLM."""
        super().load()
        self.llm.check_generation_kwargs()
        if (default := self.default_structured_output()) is not None:
            self.llm.structured_output = default
            self._structured_output_set = True
        self.llm.load()

    def unload(self) -> None:
        """Unload the LLM and take back the structured output ``load()`` gave it."""
        try:
            self.llm.unload()
        finally:
            if self._structured_output_set:
                self.llm.structured_output = None
                self._structured_output_set = False
            super().unload()

    # -- outputs ---------------------------------------------------------------------------------
    def failed_rows(self, rows: list[dict[str, Any]]) -> int:
        """Rows whose generation or formatting failed (``error_<task>`` in their metadata)."""
        key = self._error_key
        return sum(1 for row in rows if key in (row.get(METADATA) or {}))

    @property
    def _error_key(self) -> str:
        return f"error_{self.name}"

    def _format_outputs(self, outputs: GenerateOutput, input: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """Output columns, metadata and extra LLM columns of each generation of one input (as in
        distilabel; what a ``GeneratorTask``'s ``process`` uses to build its rows)."""
        conversation: ChatType | None = None
        if input:
            try:
                conversation = self.format_input(input)
            except NotImplementedError:
                conversation = None
        keys = extra_output_keys([outputs])
        row = input or {}
        return [
            self._format_generation(row, conversation, outputs, g, keys) for g in range(len(outputs["generations"]))
        ]

    def _format_generation(
        self,
        row: dict[str, Any],
        conversation: ChatType | None,
        output: GenerateOutput,
        index: int,
        extra_keys: Sequence[str] = (),
    ) -> dict[str, Any]:
        """Output columns and metadata of one generation, then its ``llm_<task>_<key>`` columns."""
        text = output["generations"][index]
        error = (output.get("errors") or [None] * (index + 1))[index]
        columns: dict[str, Any]
        if text is None and error is not None:
            columns = self._empty_outputs()
        else:
            try:
                columns = dict(self.format_output(text, row))
            except Exception as exc:
                columns, error = self._empty_outputs(), f"format_output failed: {type(exc).__name__}: {exc}"
        metadata: dict[str, Any] = dict(row.get(METADATA) or {})
        if self.add_raw_output:
            metadata[f"raw_output_{self.name}"] = text
        if self.add_raw_input:
            metadata[f"raw_input_{self.name}"] = conversation
        # Counts may be per request rather than per generation: repeat them, as distilabel does.
        stats: dict[str, Any] = dict(output.get("statistics") or {})
        if counts := {k: v[index % len(v)] for k, v in stats.items() if v}:
            metadata[f"statistics_{self.name}"] = counts
        if error is not None:
            metadata[self._error_key] = error
        columns[METADATA] = metadata
        extra: dict[str, Any] = output  # type: ignore[assignment]  # keys beyond the TypedDict's
        for key in extra_keys:
            columns[f"llm_{self.name}_{key}"] = _nth(extra.get(key), index)
        return columns

    def _empty_outputs(self) -> dict[str, Any]:
        return {column: None for column in self.outputs if column != "model_name"}

    def _rows_for(self, row: dict[str, Any], formatted: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The output rows of one input: a row per generation, or one row of lists when grouped."""
        model = {"model_name": self.llm.model_name}
        if self.group_generations:
            return [{**row, **group_dicts(*formatted), **model}]
        return [{**row, **f, **model} for f in formatted]

    # -- prompt preview ----------------------------------------------------------------------------
    def _sample_input(self) -> ChatType:
        """The conversation of a row whose input columns hold ``<PLACEHOLDER_<COLUMN>>`` (tasks whose
        ``format_input`` needs more than strings override it)."""
        return self.format_input({column: f"<PLACEHOLDER_{column.upper()}>" for column in self.inputs})

    def print(self, sample_input: ChatType | None = None) -> None:
        """Print the prompt the task sends, one panel per message (plain text without ``rich``).

        Args:
            sample_input: the conversation to show (default: ``_sample_input()``, the prompt of a
                row whose columns hold ``<PLACEHOLDER_<COLUMN>>``).
        """
        messages = sample_input or self._sample_input()
        title = f"Prompt: {type(self).__name__}"
        try:
            from rich.console import Console, Group
            from rich.panel import Panel
            from rich.text import Text
        except ImportError:
            lines = [title]
            for message in messages:
                lines += [
                    f"--- {str(message.get('role', '')).capitalize()} Message ---",
                    str(message.get("content", "")),
                ]
            print("\n".join(lines))
            return
        panels = [
            Panel(
                Text(str(message.get("content", ""))),
                title=f"[bold magenta]{str(message.get('role', '')).capitalize()} Message[/]",
                border_style="cyan",
            )
            for message in messages
        ]
        Console().print(Panel(Group(*panels), title=f"[bold magenta]{title}[/]", border_style="cyan", expand=False))


class Task(_Task, Step):
    """Base class of LLM tasks; subclasses implement ``format_input`` and ``format_output``.

    Its fields (``llm``, ``num_generations``, ``group_generations``, ``add_raw_output``,
    ``add_raw_input``, ``use_default_structured_output``) are described on ``_Task``.
    """

    @abstractmethod
    def format_input(self, input: dict[str, Any]) -> ChatType:
        """The conversation sent to the LLM for one row."""

    def concurrent_batches(self) -> int:
        """With an ``AsyncLLM``: enough batches to keep ``max_concurrency`` requests in flight, plus
        one, so that no batch boundary leaves the server idle (the LLM's semaphore bounds requests)."""
        if not isinstance(self.llm, AsyncLLM):
            return 1
        rows = self.input_batch_size or 1
        return min(math.ceil((self.llm.max_concurrency or 1) / rows) + 1, _MAX_CONCURRENT_BATCHES)

    def _generate(
        self,
        rows: list[dict[str, Any]],
        conversations: list[ChatType],
        num_generations: int,
        generation_kwargs: dict[str, Any],
    ) -> list[GenerateOutput]:
        """The LLM's outputs for ``conversations``, one per conversation, in order (``rows`` are the
        rows they were formatted from): one ``generate_outputs`` call for the batch. Tasks that send
        settings per row (``StructuredGeneration``) override it."""
        return self.llm.generate_outputs(conversations, num_generations=num_generations, **generation_kwargs)

    def process(self, inputs: StepInput) -> StepOutput:  # type: ignore[override]  # one input, as distilabel
        """Generate for every row of the batch and yield the formatted rows."""
        n = self.num_generations or 1
        conversations: list[ChatType | None] = []
        errors: dict[int, str] = {}
        for i, row in enumerate(inputs):
            try:
                conversations.append(self.format_input(row))
            except Exception as exc:  # a malformed row fails alone
                conversations.append(None)
                errors[i] = f"format_input failed: {type(exc).__name__}: {exc}"
        valid = [c for c in conversations if c is not None]
        valid_rows = [row for row, c in zip(inputs, conversations) if c is not None]
        kwargs = self.llm.get_generation_kwargs()
        outputs = self._generate(valid_rows, valid, n, kwargs) if valid else []
        if len(outputs) != len(valid):
            raise ValueError(
                f"{type(self.llm).__name__}.generate returned {len(outputs)} outputs for {len(valid)} inputs."
            )
        extra_keys = extra_output_keys(outputs)  # every row of the batch gets the same columns
        generated = iter(outputs)
        rows: list[dict[str, Any]] = []
        failures: list[str] = []
        for i, (row, conversation) in enumerate(zip(inputs, conversations)):
            output = next(generated) if conversation is not None else failed_output(n, errors[i])
            formatted = [self._format_generation(row, conversation, output, g, extra_keys) for g in range(n)]
            failures.extend(f[METADATA][self._error_key] for f in formatted if self._error_key in f[METADATA])
            rows.extend(self._rows_for(row, formatted))
        if failures:
            _LOGGER.warning(
                "Task '%s': %d of %d generations failed; first error: %s",
                self.name,
                len(failures),
                len(inputs) * n,
                failures[0],
            )
        yield rows


class GeneratorTask(_Task, GeneratorStep):
    """A generator step that asks an LLM: it produces rows without inputs (distilabel's ``GeneratorTask``).

    Subclasses implement ``outputs``, ``format_output`` and ``process(offset)``, which builds the
    conversations, calls ``self.llm.generate_outputs(...)`` and yields ``(rows, is_last_batch)``;
    ``self._format_outputs(output, input)`` gives the columns and metadata of each generation and
    ``self._rows_for(input, formatted)`` the rows (honouring ``group_generations``). Its fields
    are ``Task``'s, described on ``_Task``, plus the generator's ``batch_size``.
    """
