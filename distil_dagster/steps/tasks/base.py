"""``Task``: a step that formats rows into conversations, asks its LLM, and formats the answers.

Per batch: ``format_input(row)`` builds each row's conversation, ``llm.generate`` answers them
all, ``format_output(text, row)`` turns each generation into output columns. Rows get
``model_name`` and, in ``distilabel_metadata``, ``raw_output_<task>``, ``raw_input_<task>`` and
``statistics_<task>`` (token usage), as in distilabel 1.5. A row whose input, generation or
output formatting fails keeps its output columns ``None`` with ``error_<task>`` in
``distilabel_metadata``; the other rows of the batch are unaffected.
"""

from __future__ import annotations

import logging
import math
from abc import abstractmethod
from typing import Any, ClassVar

from pydantic import Field, PositiveInt, field_validator

from distil_dagster.mixins.runtime_parameters import RuntimeParameter
from distil_dagster.models.llms.base import LLM, AsyncLLM, failed_output
from distil_dagster.models.llms.typing import ChatType, GenerateOutput
from distil_dagster.steps.base import Step, StepInput
from distil_dagster.steps.typing import StepOutput

__all__ = ["Task", "group_dicts"]

METADATA = "distilabel_metadata"
_LOGGER = logging.getLogger("distil_dagster.steps.tasks")
#: Upper bound of ``Task.concurrent_batches`` (batches held in memory by one replica at once).
_MAX_CONCURRENT_BATCHES = 8


def group_dicts(*dicts: dict[str, Any]) -> dict[str, list[Any]]:
    """Combine dicts into one dict of lists (a missing key gives ``None`` in its list)."""
    keys = dict.fromkeys(k for d in dicts for k in d)
    return {k: [d.get(k) for d in dicts] for k in keys}


class Task(Step):
    """Base class of LLM tasks; subclasses implement ``format_input`` and ``format_output``.

    Attributes:
        llm: the model that answers (its runtime parameters nest under ``llm``).
        num_generations: generations per input row.
        group_generations: one row per input with a list per output column (instead of one row
            per generation).
        add_raw_output: keep the generated text in ``raw_output_<task>`` of ``distilabel_metadata``.
        add_raw_input: keep the conversation sent in ``raw_input_<task>`` of ``distilabel_metadata``.
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

    # The LLM enters the signature through ``signature_extra`` (without its execution settings).
    signature_exclude: ClassVar[frozenset[str]] = frozenset({"llm"})

    @field_validator("llm", mode="before")
    @classmethod
    def _llm_from_dict(cls, value: Any) -> Any:
        """Rebuild the LLM from its dump (``pipeline.yaml``), which names its class."""
        return LLM.from_dict(value) if isinstance(value, dict) else value

    @abstractmethod
    def format_input(self, input: dict[str, Any]) -> ChatType:
        """The conversation sent to the LLM for one row."""

    @abstractmethod
    def format_output(self, output: str | None, input: dict[str, Any] | None = None) -> dict[str, Any]:
        """The output columns of one generation of ``input``."""

    def signature_extra(self) -> dict[str, Any]:
        return {**super().signature_extra(), "llm": self.llm.signature_fields()}

    def required_gpus(self) -> int:
        """GPUs per replica: the LLM's (or ``resources.gpus`` when larger)."""
        return max(super().required_gpus(), self.llm.required_gpus())

    def concurrent_batches(self) -> int:
        """With an ``AsyncLLM``: enough batches to keep ``max_concurrency`` requests in flight, plus
        one, so that no batch boundary leaves the server idle (the LLM's semaphore bounds requests)."""
        if not isinstance(self.llm, AsyncLLM):
            return 1
        rows = self.input_batch_size or 1
        return min(math.ceil((self.llm.max_concurrency or 1) / rows) + 1, _MAX_CONCURRENT_BATCHES)

    def load(self) -> None:
        """Check the generation kwargs and load the LLM."""
        super().load()
        self.llm.check_generation_kwargs()
        self.llm.load()

    def unload(self) -> None:
        """Unload the LLM."""
        try:
            self.llm.unload()
        finally:
            super().unload()

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
        kwargs = self.llm.get_generation_kwargs()
        outputs = self.llm.generate(valid, num_generations=n, **kwargs) if valid else []
        if len(outputs) != len(valid):
            raise ValueError(
                f"{type(self.llm).__name__}.generate returned {len(outputs)} outputs for {len(valid)} inputs."
            )
        generated = iter(outputs)
        rows: list[dict[str, Any]] = []
        failures: list[str] = []
        for i, (row, conversation) in enumerate(zip(inputs, conversations)):
            output = next(generated) if conversation is not None else failed_output(n, errors[i])
            formatted = [self._format_generation(row, conversation, output, g) for g in range(n)]
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

    def failed_rows(self, rows: list[dict[str, Any]]) -> int:
        """Rows whose generation or formatting failed (``error_<task>`` in their metadata)."""
        key = self._error_key
        return sum(1 for row in rows if key in (row.get(METADATA) or {}))

    @property
    def _error_key(self) -> str:
        return f"error_{self.name}"

    def _format_generation(
        self, row: dict[str, Any], conversation: ChatType | None, output: GenerateOutput, index: int
    ) -> dict[str, Any]:
        """Output columns and metadata of one generation."""
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
        return columns

    def _empty_outputs(self) -> dict[str, Any]:
        return {column: None for column in self.outputs if column != "model_name"}

    def _rows_for(self, row: dict[str, Any], formatted: list[dict[str, Any]]) -> list[dict[str, Any]]:
        model = {"model_name": self.llm.model_name}
        if self.group_generations:
            return [{**row, **group_dicts(*formatted), **model}]
        return [{**row, **f, **model} for f in formatted]
