"""The ``LLM`` API shared by every backend: generation kwargs as runtime parameters, ``generate_outputs``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from distil_dagster.dagster import build_run_config
from distil_dagster.models import LLM, GenerateOutput, OpenAILLM, TransformersLLM
from distil_dagster.pipeline import Pipeline
from distil_dagster.steps import LoadDataFromDicts
from distil_dagster.steps.tasks import TextGeneration


class StyledLLM(LLM):
    """Answers in a style; ``style`` must be given, extra keyword arguments are accepted."""

    @property
    def model_name(self) -> str:
        return "styled"

    def generate(  # type: ignore[override]  # named generation kwargs
        self, inputs: list[Any], num_generations: int = 1, *, style: str, loud: bool = False, **kwargs: Any
    ) -> list[GenerateOutput]:
        """Answer every conversation.

        Args:
            inputs: the conversations.
            num_generations: texts per conversation.
            style: the style of the answers, e.g. ``terse``
                or ``verbose``.
            loud (bool): shout.

        Returns:
            One output per conversation.
        """
        text = f"{style}{'!' if loud else ''}"
        return [{"generations": [text] * num_generations, "statistics": {}} for _ in inputs]  # type: ignore[typeddict-item]


def generation_kwargs_info(llm: LLM) -> dict[str, Any]:
    [entry] = [e for e in llm.get_runtime_parameters_info() if e["name"] == "generation_kwargs"]
    return entry


def test_generation_kwargs_info_lists_the_named_parameters_with_their_docstring() -> None:
    entry = generation_kwargs_info(StyledLLM())
    assert entry == {
        "name": "generation_kwargs",
        "description": "The kwargs to be propagated to the `generate` method of the LLM.",
        "keys": [
            {
                "name": "style",
                "optional": False,
                "description": "the style of the answers, e.g. ``terse`` or ``verbose``.",
            },
            {"name": "loud", "optional": True, "description": "shout."},
        ],
    }


def test_transformers_generation_kwargs_are_distilabels() -> None:
    entry = generation_kwargs_info(TransformersLLM(model="some/model"))
    assert list(entry) == ["name", "description", "keys"]
    assert [(k["name"], k["optional"]) for k in entry["keys"]] == [
        ("max_new_tokens", True),
        ("temperature", True),
        ("repetition_penalty", True),
        ("top_p", True),
        ("top_k", True),
        ("do_sample", True),
    ]
    assert all(k["description"] for k in entry["keys"])


def test_generation_kwargs_stay_one_runtime_parameter() -> None:
    """Setting them at run time replaces the dict (they are not a nested parameter group)."""
    task = TextGeneration(name="t", llm=StyledLLM(generation_kwargs={"style": "terse"}))
    assert task.runtime_parameters_names["llm"] == {"generation_kwargs": True, "structured_output": True}
    task.set_runtime_parameters({"llm": {"generation_kwargs": {"style": "verbose", "loud": True}}})
    assert task.llm.generation_kwargs == {"style": "verbose", "loud": True}


def test_the_run_config_of_a_pipeline_with_llms_builds(tmp_path: Path) -> None:
    with Pipeline(name="llms", cache_dir=tmp_path) as pipeline:
        llm = OpenAILLM(model="m", api_key="k", default_headers={"X-Team": "a"}, generation_kwargs={"logprobs": True})
        LoadDataFromDicts(name="load", data=[{"instruction": "q"}]) >> TextGeneration(name="gen", llm=llm)
    run_config = build_run_config(pipeline)
    defaults = run_config.config_class().model_dump()
    assert defaults["gen"]["llm"]["generation_kwargs"] == {"logprobs": True}
    assert defaults["gen"]["llm"]["default_headers"] == {"X-Team": "a"}
    values = run_config.config_class().model_dump()
    values["gen"]["llm"]["default_headers"] = {"X-Team": "b"}
    assert run_config.parameters(values) == {"gen": {"llm": {"default_headers": {"X-Team": "b"}}}}


class CountingLLM(StyledLLM):
    calls: int = 0

    def generate_outputs(self, inputs: list[Any], num_generations: int = 1, **kwargs: Any) -> list[GenerateOutput]:
        self.calls += 1
        return super().generate_outputs(inputs, num_generations, **kwargs)


def test_generate_outputs_generates_and_is_what_tasks_call() -> None:
    llm = CountingLLM(generation_kwargs={"style": "terse"})
    assert llm.generate_outputs([[{"role": "user", "content": "q"}]], num_generations=2, style="calm") == [
        {"generations": ["calm", "calm"], "statistics": {}}
    ]
    task = TextGeneration(name="t", llm=llm)
    task.load()
    [row] = next(iter(task.process([{"instruction": "q"}])))
    task.unload()
    assert row["generation"] == "terse" and llm.calls == 2


def test_unknown_generation_kwargs_are_accepted_by_a_generate_with_var_keywords() -> None:
    StyledLLM(generation_kwargs={"style": "x", "anything": 1}).check_generation_kwargs()
