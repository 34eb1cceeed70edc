"""``@task``: turn an output-formatting function into a ``Task`` class (distilabel's decorator).

```python
@task(inputs=["text"], outputs=["summary"])
def Summarize(output: str | None, input: dict[str, Any] | None = None) -> dict[str, Any]:
    '''Summarize a text in one sentence.

    ---
    system_prompt: You write one-sentence summaries.
    user_message_template: "Summarize this text: {text}"
    ---
    '''
    return {"summary": output}
```

The prompt lives in the docstring, as YAML between two lines holding only ``---``: the
``system_prompt`` and the ``user_message_template`` are ``str.format`` templates whose placeholders
name input columns. Each row becomes a system and a user message; the function turns each
generation (and its row) into the output columns. The class is built as ``@step`` builds its own
(``function_class``), so workers and ``pipeline.yaml`` import it by module and name. A docstring
that does not give the prompt is refused when the function is decorated, every problem at once.
"""

from __future__ import annotations

import inspect
import re
import string
from collections.abc import Callable
from typing import Any

import yaml

from distil_dagster.models.llms.typing import ChatType
from distil_dagster.steps.decorator import columns_property, function_class
from distil_dagster.steps.tasks.base import Task
from distil_dagster.steps.typing import StepColumns

__all__ = ["task"]

_KEYS = ("system_prompt", "user_message_template")
_MARKER = "---"
_ROOT_NAME = re.compile(r"[^.\[]*")  # "{row.attr}" and "{row[0]}" read the column "row"
_EXAMPLE = '---\nsystem_prompt: You are a helpful assistant.\nuser_message_template: "Answer: {instruction}"\n---'


def task(inputs: StepColumns | None = None, outputs: StepColumns | None = None) -> Callable[..., type[Task]]:
    """Create a ``Task`` class from a function formatting one generation into output columns.

    Args:
        inputs: the columns the task reads (a list, or a mapping column -> required); the
            templates' placeholders must be among them.
        outputs: the columns the function returns (a list, or a mapping column -> always produced).

    Returns:
        A decorator: ``f(output, input) -> dict`` becomes the ``format_output`` of a ``Task``
        subclass named as ``f``, in ``f``'s module, whose prompt comes from ``f``'s docstring.

    Raises:
        ValueError: when decorating, if the docstring lacks the YAML prompt block, the block does
            not parse, a key is missing or not a string, a template is malformed, uses positional
            placeholders or names a column not among ``inputs``, or ``f`` cannot take
            ``(output, input)``. The message names the function and every problem.
    """

    def decorator(func: Callable[..., Any]) -> type[Task]:
        system_prompt, user_message_template = _prompt_of(func, _column_names(inputs))

        def format_input(self: Task, input: dict[str, Any]) -> ChatType:
            return [
                {"role": "system", "content": system_prompt.format(**input)},
                {"role": "user", "content": user_message_template.format(**input)},
            ]

        def format_output(self: Task, output: str | None, input: dict[str, Any] | None = None) -> dict[str, Any]:
            return dict(func(output, input))

        def signature_extra(self: Task) -> dict[str, Any]:
            # The prompt is the task's configuration: editing the docstring must not reuse the cache.
            prompt = {"system_prompt": system_prompt, "user_message_template": user_message_template}
            return {**Task.signature_extra(self), "prompt": prompt}

        namespace: dict[str, Any] = {
            "inputs": columns_property(inputs),
            "outputs": columns_property(outputs),
            "format_input": format_input,
            "format_output": format_output,
            "signature_extra": signature_extra,
        }
        return function_class(func, Task, namespace)

    return decorator


def _column_names(columns: StepColumns | None) -> list[str]:
    return list(columns or [])


def _prompt_of(func: Callable[..., Any], inputs: list[str]) -> tuple[str, str]:
    """The system prompt and user message template of ``func``'s docstring, checked against ``inputs``."""
    where = f"@task function {func.__name__!r}"
    problems = _call_problems(func)
    templates, found = _templates_of(inspect.getdoc(func))
    problems += found
    for key, template in templates.items():
        problems += _placeholder_problems(key, template, inputs)
    if problems:
        listed = "\n".join(f"  - {p}" for p in problems)
        raise ValueError(f"{where} cannot become a task:\n{listed}")
    return templates["system_prompt"], templates["user_message_template"]


def _call_problems(func: Callable[..., Any]) -> list[str]:
    try:
        inspect.signature(func).bind(None, None)
    except TypeError:
        return ["it must take the generation and its row as `(output, input)`."]
    except ValueError:  # no signature to read (a builtin): let the call tell
        pass
    return []


def _templates_of(doc: str | None) -> tuple[dict[str, str], list[str]]:
    """The string templates of the docstring's YAML block, and what is wrong with it."""
    fix = f"write the prompt in the docstring as YAML between two lines holding only `---`:\n{_EXAMPLE}"
    if not doc:
        return {}, [f"it has no docstring; {fix}"]
    lines = doc.splitlines()
    markers = [i for i, line in enumerate(lines) if line.rstrip() == _MARKER]
    if len(markers) != 2:
        return {}, [f"its docstring has {len(markers)} line(s) holding only `---` instead of 2; {fix}"]
    block = "\n".join(lines[markers[0] + 1 : markers[1]])
    try:
        data = yaml.safe_load(block)
    except yaml.YAMLError as exc:
        return {}, [f"the YAML between the `---` lines does not parse: {exc}"]
    if not isinstance(data, dict):
        return {}, [f"the YAML between the `---` lines must be a mapping with keys {list(_KEYS)}, got {data!r:.80}."]
    problems = []
    missing = [key for key in _KEYS if key not in data]
    if missing:
        problems.append(f"the YAML between the `---` lines lacks {missing}; it needs both {list(_KEYS)}.")
    templates: dict[str, str] = {}
    for key in _KEYS:
        if key in data and not isinstance(data[key], str):
            hint = (
                " (quote a template that starts with '{': YAML reads it as a mapping)"
                if isinstance(data[key], dict)
                else ""
            )
            problems.append(f"`{key}` must be a string, got {type(data[key]).__name__} ({data[key]!r:.80}){hint}.")
        elif key in data:
            templates[key] = data[key].strip()
    return templates, problems


def _placeholder_problems(key: str, template: str, inputs: list[str]) -> list[str]:
    """What keeps ``template.format(**row)`` from rendering a row holding ``inputs``."""
    try:
        fields = _fields(template)
    except ValueError as exc:
        return [f"`{key}` is not a valid str.format template ({exc}); write a literal brace as '{{{{' or '}}}}'."]
    problems = []
    positional = sorted({f for f in fields if not f or f.isdigit()})
    if positional:
        shown = ", ".join("{" + f + "}" for f in positional)
        problems.append(f"`{key}` has positional placeholder(s) {shown}; name an input column instead.")
    unknown = sorted({f for f in fields if f and not f.isdigit()} - set(inputs))
    if unknown:
        problems.append(
            f"`{key}` uses placeholder(s) {unknown} that are not among the task's inputs {inputs}; "
            "add them to `inputs` or fix the template."
        )
    return problems


def _fields(template: str) -> list[str]:
    """The column each replacement field of ``template`` reads, nested format specs included."""
    fields = []
    for _, field, spec, _ in string.Formatter().parse(template):
        if field is None:
            continue
        match = _ROOT_NAME.match(field)
        fields.append(match.group() if match else field)
        if spec:
            fields += _fields(spec)
    return fields
