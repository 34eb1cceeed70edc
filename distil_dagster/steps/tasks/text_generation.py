"""``TextGeneration``: one user message rendered from a Jinja2 template over row columns."""

from __future__ import annotations

import warnings
from typing import Any, ClassVar, Union

from jinja2 import Environment, StrictUndefined, Template, meta
from pydantic import Field, PrivateAttr, field_validator, model_validator

from distil_dagster.models.llms.typing import ChatType
from distil_dagster.steps.tasks.base import Task
from distil_dagster.steps.typing import StepColumns

__all__ = ["TextGeneration"]

_ENV = Environment(undefined=StrictUndefined, autoescape=False)


class TextGeneration(Task):
    """Generate text from a prompt rendered from the row's columns.

    Input columns: ``columns`` (default ``instruction``); ``system_prompt`` when present.
    Output columns: ``generation``, ``model_name``.

    Attributes:
        system_prompt: sent as the system message (a row's own ``system_prompt`` column wins).
        template: the user message, a Jinja2 template over ``columns``.
        columns: the columns the template uses.
        use_system_prompt: deprecated, without effect (as in distilabel 1.5): a system prompt, the
            row's or ``system_prompt``, is always sent. ``False`` warns.

    Examples:
        >>> TextGeneration(llm=llm, template="Translate to French: {{ text }}", columns="text")  # doctest: +SKIP
    """

    system_prompt: Union[str, None] = None
    template: str = Field(default="{{ instruction }}", description="The Jinja2 template of the user message.")
    columns: Union[str, list[str]] = Field(default="instruction", description="The columns used in the template.")
    use_system_prompt: bool = Field(default=True, description="Deprecated; has no effect.")

    signature_exclude: ClassVar[frozenset[str]] = Task.signature_exclude | {"use_system_prompt"}

    _template: Template | None = PrivateAttr(default=None)

    @field_validator("columns")
    @classmethod
    def _as_list(cls, value: str | list[str]) -> list[str]:
        return [value] if isinstance(value, str) else list(value)

    @model_validator(mode="after")
    def _check_template(self) -> TextGeneration:
        used = meta.find_undeclared_variables(_ENV.parse(self.template))
        columns = list(self.columns)
        problems = [f"column '{c}' is not used in the template" for c in columns if c not in used]
        problems += [f"template variable '{v}' is not in `columns`" for v in sorted(used) if v not in columns]
        if problems:
            raise ValueError(f"{type(self).__name__}: {'; '.join(problems)} (template: {self.template!r}).")
        return self

    @model_validator(mode="after")
    def _warn_use_system_prompt(self) -> TextGeneration:
        if not self.use_system_prompt:
            warnings.warn(
                f"{type(self).__name__}: `use_system_prompt` is deprecated and has no effect (as in distilabel 1.5); "
                "the system prompt is still sent. Leave `system_prompt` unset and drop the rows' "
                "`system_prompt` column to send none.",
                FutureWarning,
                stacklevel=2,
            )
        return self

    @property
    def inputs(self) -> StepColumns:
        return {**dict.fromkeys(self.columns, True), "system_prompt": False}

    @property
    def outputs(self) -> list[str]:
        return ["generation", "model_name"]

    def load(self) -> None:
        """Compile the template, then load the LLM."""
        self._template = _ENV.from_string(self.template)
        super().load()

    def unload(self) -> None:
        self._template = None
        super().unload()

    def format_input(self, input: dict[str, Any]) -> ChatType:
        """The (system and) user messages of one row."""
        if self.columns == ["instruction"] and not isinstance(input.get("instruction"), str):
            raise ValueError(f"`instruction` must be a string, got {type(input.get('instruction')).__name__}.")
        template = self._template or _ENV.from_string(self.template)
        messages: ChatType = [{"role": "user", "content": template.render(**{c: input[c] for c in self.columns})}]
        system_prompt = input.get("system_prompt") or self.system_prompt
        if system_prompt:
            messages.insert(0, {"role": "system", "content": system_prompt})
        return messages

    def format_output(self, output: str | None, input: dict[str, Any] | None = None) -> dict[str, Any]:
        return {"generation": output}
