"""``@task``: a formatting function and its docstring's prompt become a ``Task`` class that runs
on every executor, dumps to ``pipeline.yaml`` and comes back; a docstring without a usable prompt
is refused when the function is decorated."""

from __future__ import annotations

import importlib
import json
import pickle
from pathlib import Path
from typing import Any

import pytest

from distil_dagster.models import LLM, GenerateOutput
from distil_dagster.pipeline import Pipeline
from distil_dagster.steps import LoadDataFromDicts
from distil_dagster.steps.tasks import Task, task
from tests.steps.task_runs import run_task

META = "distilabel_metadata"


class PromptEchoLLM(LLM):
    """Answers with the conversation it was sent, as JSON ``[[role, content], ...]``."""

    @property
    def model_name(self) -> str:
        return "prompt-echo"

    def generate(self, inputs: list[Any], num_generations: int = 1, **kwargs: Any) -> list[GenerateOutput]:
        outputs: list[GenerateOutput] = []
        for conversation in inputs:
            text = json.dumps([[m["role"], m["content"]] for m in conversation])
            stats = {"input_tokens": [len(conversation)] * num_generations, "output_tokens": [1] * num_generations}
            outputs.append({"generations": [text] * num_generations, "statistics": stats})  # type: ignore[typeddict-item]
        return outputs


@task(inputs=["topic", "style"], outputs=["system", "user", "words"])
def WritePoem(output: str | None, input: dict[str, Any] | None = None) -> dict[str, Any]:
    """Write a short poem about a topic.

    ---
    system_prompt: You write {style} poems.
    user_message_template: |
      Write a poem about {topic}.
      Keep it {style}.
    ---
    """
    [[_, system], [_, user]] = json.loads(str(output))
    return {"system": system, "user": user, "words": len(user.split())}


ROWS = [{"topic": "rain", "style": "sad"}, {"topic": "sun", "style": "happy"}]


def expected(topic: str, style: str) -> dict[str, Any]:
    user = f"Write a poem about {topic}.\nKeep it {style}."
    return {"system": f"You write {style} poems.", "user": user, "words": len(user.split())}


def build(cache_dir: Path) -> Pipeline:
    with Pipeline(name="task-decorator", cache_dir=cache_dir, enable_metadata=True) as pipeline:
        LoadDataFromDicts(name="load", data=ROWS) >> WritePoem(name="poem", llm=PromptEchoLLM())
    return pipeline


# -- the class ------------------------------------------------------------------------------------
def test_the_class_is_a_task_named_and_placed_as_the_function() -> None:
    assert isinstance(WritePoem, type) and issubclass(WritePoem, Task)
    assert (WritePoem.__module__, WritePoem.__qualname__, WritePoem.__name__) == (__name__, "WritePoem", "WritePoem")
    assert getattr(importlib.import_module(WritePoem.__module__), WritePoem.__qualname__) is WritePoem
    assert "Write a short poem about a topic." in str(WritePoem.__doc__)
    poem = WritePoem(name="poem", llm=PromptEchoLLM())
    assert poem.inputs == ["topic", "style"] and poem.outputs == ["system", "user", "words"]
    again = pickle.loads(pickle.dumps(poem))  # what a worker process receives
    assert type(again) is WritePoem and again.format_input(ROWS[0]) == poem.format_input(ROWS[0])


def test_format_input_renders_a_system_and_a_user_message_from_the_row() -> None:
    poem = WritePoem(name="poem", llm=PromptEchoLLM())
    assert poem.format_input({"topic": "rain", "style": "sad", "other": 1}) == [
        {"role": "system", "content": "You write sad poems."},
        {"role": "user", "content": "Write a poem about rain.\nKeep it sad."},
    ]


def test_the_function_formats_each_generation_and_a_failing_row_fails_alone() -> None:
    rows = run_task(WritePoem(name="poem", llm=PromptEchoLLM()), [ROWS[0], {"topic": "no style"}])
    assert {k: rows[0][k] for k in ("system", "user", "words")} == expected("rain", "sad")
    assert rows[0]["model_name"] == "prompt-echo" and "error_poem" not in rows[0][META]
    assert rows[1]["system"] is None and rows[1][META]["error_poem"] == "format_input failed: KeyError: 'style'"


# -- pipelines ------------------------------------------------------------------------------------
def test_a_pipeline_runs_the_task(tmp_path: Path, executor: str, rows: Any) -> None:
    result = rows(build(tmp_path).run(use_cache=False, executor=executor))
    assert [{k: r[k] for k in ("topic", "style", "system", "user", "words", "model_name")} for r in result] == [
        {**row, **expected(row["topic"], row["style"]), "model_name": "prompt-echo"} for row in ROWS
    ]
    assert result[0][META]["raw_input_poem"] == [
        {"role": "system", "content": "You write sad poems."},
        {"role": "user", "content": "Write a poem about rain.\nKeep it sad."},
    ]


def test_the_task_round_trips_through_pipeline_yaml(tmp_path: Path, rows: Any) -> None:
    pipeline = build(tmp_path)
    [entry] = [s["step"] for s in pipeline.dump()["pipeline"]["steps"] if s["name"] == "poem"]
    assert entry["type_info"] == {"module": __name__, "name": "WritePoem"}
    pipeline.save(tmp_path / "pipeline.yaml")
    again = Pipeline.from_yaml(tmp_path / "pipeline.yaml")
    step = again.dag.step("poem")
    assert type(step) is WritePoem and isinstance(step.llm, PromptEchoLLM)  # type: ignore[attr-defined]  # a Task
    assert again.signature == pipeline.signature
    result = rows(again.run(use_cache=False, executor="processes"))
    assert [r["user"] for r in result] == [expected(r["topic"], r["style"])["user"] for r in ROWS]


def poem_task(system_prompt: str) -> type[Task]:
    """A task class whose module and name do not depend on its prompt."""

    def Prompted(output: str | None, input: dict[str, Any] | None = None) -> dict[str, Any]:
        return {"text": output}

    Prompted.__doc__ = f"---\nsystem_prompt: {system_prompt}\nuser_message_template: 'About {{topic}}'\n---"
    return task(inputs=["topic"], outputs=["text"])(Prompted)


def test_editing_the_prompt_changes_the_cache_signature(tmp_path: Path) -> None:
    def signature(system_prompt: str) -> str:
        with Pipeline(name="prompted", cache_dir=tmp_path) as pipeline:
            LoadDataFromDicts(name="load", data=[{"topic": "x"}]) >> poem_task(system_prompt)(
                name="t", llm=PromptEchoLLM()
            )
        return pipeline.signature

    assert signature("Be brief.") == signature("Be brief.")
    assert signature("Be brief.") != signature("Be verbose.")


# -- decoration errors ----------------------------------------------------------------------------
def decorate(doc: str | None, inputs: Any = ("topic",)) -> type[Task]:
    def Broken(output: str | None, input: dict[str, Any] | None = None) -> dict[str, Any]:
        return {}

    Broken.__doc__ = doc
    return task(inputs=list(inputs) if not isinstance(inputs, dict) else inputs, outputs=["x"])(Broken)


def prompt(system: str = "Be kind.", user: str = "'About {topic}'") -> str:
    return f"Does a thing.\n\n---\nsystem_prompt: {system}\nuser_message_template: {user}\n---\n"


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        (None, r"it has no docstring; write the prompt in the docstring as YAML between two lines holding only `---`"),
        ("Does a thing.", r"its docstring has 0 line\(s\) holding only `---` instead of 2"),
        ("Does a thing.\n---\nsystem_prompt: x\n", r"its docstring has 1 line\(s\) holding only `---` instead of 2"),
        ("---\nsystem_prompt: [unclosed\n---", r"the YAML between the `---` lines does not parse"),
        ("---\n- a list\n---", r"must be a mapping with keys \['system_prompt', 'user_message_template'\]"),
        ("---\nsystem_prompt: Be kind.\n---", r"lacks \['user_message_template'\]; it needs both"),
        (prompt(system="42"), r"`system_prompt` must be a string, got int"),
        (prompt(user="{topic}"), r"`user_message_template` must be a string, got dict .*quote a template"),
        (prompt(user="'About {topic'"), r"`user_message_template` is not a valid str.format template"),
        (prompt(user="'About {} and {0}'"), r"`user_message_template` has positional placeholder\(s\) \{\}, \{0\}"),
        (
            prompt(system="'You like {colour}.'"),
            r"`system_prompt` uses placeholder\(s\) \['colour'\] that are not among the task's inputs \['topic'\]",
        ),
        (
            prompt(user="'About {topic} in {lang} for {reader.name}'"),
            r"`user_message_template` uses placeholder\(s\) \['lang', 'reader'\] that are not among",
        ),
    ],
)
def test_a_docstring_without_a_usable_prompt_is_refused_when_decorating(doc: str | None, message: str) -> None:
    with pytest.raises(ValueError, match=r"@task function 'Broken' cannot become a task:\n  - .*" + message):
        decorate(doc)


def test_every_problem_is_reported_at_once() -> None:
    doc = prompt(system="'{tone} voice'", user="'About {subject}'")
    with pytest.raises(ValueError) as caught:
        decorate(doc)
    assert "`system_prompt` uses placeholder(s) ['tone']" in str(caught.value)
    assert "`user_message_template` uses placeholder(s) ['subject']" in str(caught.value)


def test_placeholders_may_name_optional_inputs_and_escaped_braces_are_text() -> None:
    cls = decorate(prompt(user="'{{literal}} {topic} {note}'"), inputs={"topic": True, "note": False})
    instance = cls(name="t", llm=PromptEchoLLM())
    assert instance.format_input({"topic": "a", "note": "b"})[1]["content"] == "{literal} a b"


def test_a_function_that_cannot_take_output_and_input_is_refused() -> None:
    def OneArgument(output: str | None) -> dict[str, Any]:
        return {}

    OneArgument.__doc__ = prompt()
    with pytest.raises(
        ValueError, match=r"'OneArgument' cannot become a task:\n  - it must take .* `\(output, input\)`"
    ):
        task(inputs=["topic"], outputs=["x"])(OneArgument)
