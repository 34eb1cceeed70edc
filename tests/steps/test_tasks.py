"""LLM tasks: ``Task`` semantics with a scripted LLM, then full pipelines against a local server."""

from __future__ import annotations

import json
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from distil_dagster.models import LLM, GenerateOutput, OpenAILLM
from distil_dagster.models.llms.base import failed_output
from distil_dagster.pipeline import Pipeline
from distil_dagster.steps import LoadDataFromDicts
from distil_dagster.steps.tasks import ChatGeneration, GeneratorTask, Task, TextGeneration
from distil_dagster.steps.typing import GeneratorStepOutput
from tests.models.openai_server import FakeOpenAIServer
from tests.steps.task_runs import run_task

SECRET = "sk-pipeline-SECRET-9876"
META = "distilabel_metadata"


class ScriptedLLM(LLM):
    """Answers ``<last message>!<i>``; a message containing ``#fail`` fails."""

    model: str = "scripted"
    gpus: int = 0

    @property
    def model_name(self) -> str:
        return self.model

    def required_gpus(self) -> int:
        return self.gpus

    def generate(self, inputs: list[Any], num_generations: int = 1, **kwargs: Any) -> list[GenerateOutput]:
        outputs: list[GenerateOutput] = []
        for conversation in inputs:
            text = conversation[-1]["content"]
            if "#fail" in text:
                outputs.append(failed_output(num_generations, "scripted failure"))
                continue
            generations: list[str | None] = [f"{text}!{i}" for i in range(num_generations)]
            stats = {"input_tokens": [len(conversation)] * num_generations, "output_tokens": [1] * num_generations}
            outputs.append({"generations": generations, "statistics": stats})  # type: ignore[typeddict-item]
        return outputs


def test_text_generation_row_columns_and_metadata() -> None:
    task = TextGeneration(name="gen", llm=ScriptedLLM(), system_prompt="Be brief.")
    [row] = run_task(task, [{"instruction": "hi"}])
    assert row["generation"] == "hi!0" and row["model_name"] == "scripted" and row["instruction"] == "hi"
    assert row[META] == {
        "raw_output_gen": "hi!0",
        "raw_input_gen": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}],
        "statistics_gen": {"input_tokens": 2, "output_tokens": 1},
    }


def test_a_row_system_prompt_wins_and_raw_fields_can_be_dropped() -> None:
    task = TextGeneration(name="gen", llm=ScriptedLLM(), system_prompt="default", add_raw_output=False)
    [row] = run_task(task, [{"instruction": "hi", "system_prompt": "mine"}])
    assert row[META]["raw_input_gen"][0] == {"role": "system", "content": "mine"}
    assert "raw_output_gen" not in row[META]


def test_template_renders_the_declared_columns() -> None:
    task = TextGeneration(name="t", llm=ScriptedLLM(), template="{{ text }} -> {{ lang }}", columns=["text", "lang"])
    assert task.inputs == {"text": True, "lang": True, "system_prompt": False}
    [row] = run_task(task, [{"text": "cat", "lang": "fr"}])
    assert row["generation"] == "cat -> fr!0"


@pytest.mark.parametrize(
    ("template", "columns", "message"),
    [
        ("{{ text }}", ["text", "lang"], r"column 'lang' is not used in the template"),
        ("{{ text }} {{ lang }}", "text", r"template variable 'lang' is not in `columns`"),
    ],
)
def test_template_and_columns_must_agree(template: str, columns: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        TextGeneration(llm=ScriptedLLM(), template=template, columns=columns)


def test_num_generations_give_a_row_each_or_grouped_lists() -> None:
    rows = run_task(TextGeneration(name="g", llm=ScriptedLLM(), num_generations=2), [{"instruction": "a"}])
    assert [r["generation"] for r in rows] == ["a!0", "a!1"]
    task = TextGeneration(name="g", llm=ScriptedLLM(), num_generations=2, group_generations=True)
    [row] = run_task(task, [{"instruction": "a"}])
    assert row["generation"] == ["a!0", "a!1"]
    assert [m["raw_output_g"] for m in row[META]] == ["a!0", "a!1"]


def test_failures_stay_in_their_rows(caplog: pytest.LogCaptureFixture) -> None:
    rows = run_task(
        TextGeneration(name="g", llm=ScriptedLLM()),
        [{"instruction": "ok"}, {"instruction": "x #fail"}, {"instruction": 42}],
    )
    assert [r["generation"] for r in rows] == ["ok!0", None, None]
    assert "error_g" not in rows[0][META]
    assert rows[1][META]["error_g"] == "scripted failure"
    assert rows[2][META]["error_g"] == "format_input failed: ValueError: `instruction` must be a string, got int."
    assert rows[2][META]["raw_input_g"] is None
    assert "Task 'g': 2 of 3 generations failed; first error: scripted failure" in caplog.text


class JsonTask(Task):
    """Parses the generation as JSON into ``value``."""

    @property
    def inputs(self) -> list[str]:
        return ["instruction"]

    @property
    def outputs(self) -> list[str]:
        return ["value", "model_name"]

    def format_input(self, input: dict[str, Any]) -> list[dict[str, str]]:
        return [{"role": "user", "content": input["instruction"]}]

    def format_output(self, output: str | None, input: dict[str, Any] | None = None) -> dict[str, Any]:
        return {"value": json.loads(str(output).rsplit("!", 1)[0])}


def test_a_format_output_failure_keeps_the_raw_output() -> None:
    rows = run_task(JsonTask(name="j", llm=ScriptedLLM()), [{"instruction": "[1]"}, {"instruction": "nope"}])
    assert rows[0]["value"] == [1]
    assert rows[1]["value"] is None and rows[1]["model_name"] == "scripted"
    assert rows[1][META]["raw_output_j"] == "nope!0"
    assert rows[1][META]["error_j"].startswith("format_output failed: JSONDecodeError")


class ForgetfulLLM(ScriptedLLM):
    def generate(self, inputs: list[Any], num_generations: int = 1, **kwargs: Any) -> list[GenerateOutput]:
        return super().generate(inputs[1:], num_generations)


def test_an_llm_answering_the_wrong_number_of_inputs_fails_the_batch() -> None:
    with pytest.raises(ValueError, match=r"ForgetfulLLM.generate returned 1 outputs for 2 inputs"):
        run_task(TextGeneration(llm=ForgetfulLLM()), [{"instruction": "a"}, {"instruction": "b"}])


def test_upstream_metadata_is_kept() -> None:
    [row] = run_task(TextGeneration(name="g", llm=ScriptedLLM()), [{"instruction": "a", META: {"from_up": 1}}])
    assert row[META]["from_up"] == 1 and row[META]["raw_output_g"] == "a!0"


def test_chat_generation_checks_the_conversation() -> None:
    good = [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}]
    rows = run_task(
        ChatGeneration(name="c", llm=ScriptedLLM()),
        [{"messages": good}, {"messages": [{"role": "assistant", "content": "a"}]}, {"messages": "text"}],
    )
    assert rows[0]["generation"] == "u!0"
    assert rows[1][META]["error_c"].endswith("the last message of `messages` must be from the user.")
    assert "must be a list of {'role', 'content'} dicts" in rows[2][META]["error_c"]


def test_llm_runtime_parameters_nest_and_gpus_delegate() -> None:
    task = TextGeneration(llm=OpenAILLM(model="m", api_key="k"))
    llm_names = task.runtime_parameters_names["llm"]
    assert isinstance(llm_names, dict)
    assert {"generation_kwargs", "max_concurrency", "timeout", "max_retries", "base_url"} <= set(llm_names)
    task.set_runtime_parameters({"llm": {"generation_kwargs": {"temperature": 0.1}, "max_concurrency": 3}})
    assert task.llm.generation_kwargs == {"temperature": 0.1} and task.llm.max_concurrency == 3
    assert TextGeneration(llm=ScriptedLLM(gpus=2)).required_gpus() == 2


def build(base_url: str, cache_dir: Path, **llm: Any) -> Pipeline:
    data = [{"instruction": f"q{i}"} for i in range(9)] + [{"instruction": "bad #status=401"}]
    with Pipeline(name="llm-tasks", cache_dir=cache_dir, enable_metadata=True) as pipeline:
        settings: dict[str, Any] = {"model": "fake", "base_url": base_url, "api_key": SECRET, "max_concurrency": 3}
        generate = TextGeneration(name="generate", llm=OpenAILLM(**{**settings, **llm}), input_batch_size=4)
        LoadDataFromDicts(name="load", data=data, batch_size=5) >> generate
    return pipeline


def test_signature_follows_the_model_not_execution_settings(tmp_path: Path) -> None:
    base = build("http://127.0.0.1:9/v1", tmp_path).signature
    assert build("http://127.0.0.1:9/v1", tmp_path, max_concurrency=50, timeout=3.0).signature == base
    assert build("http://127.0.0.1:9/v1", tmp_path, api_key="other").signature == base
    assert build("http://127.0.0.1:9/v1", tmp_path, model="other").signature != base
    assert build("http://127.0.0.1:9/v1", tmp_path, generation_kwargs={"temperature": 0}).signature != base


def test_yaml_round_trip_rebuilds_the_llm(tmp_path: Path) -> None:
    pipeline = build("http://127.0.0.1:9/v1", tmp_path, generation_kwargs={"temperature": 0.5})
    pipeline.save(tmp_path / "pipeline.yaml")
    assert SECRET not in (tmp_path / "pipeline.yaml").read_text()
    again = Pipeline.from_yaml(tmp_path / "pipeline.yaml")
    llm = again.dag.step("generate").llm  # type: ignore[attr-defined]  # a TextGeneration
    assert isinstance(llm, OpenAILLM) and llm.generation_kwargs == {"temperature": 0.5}
    assert again.signature == pipeline.signature


def test_pipeline_generates_and_keeps_the_key_secret(
    server: FakeOpenAIServer, tmp_path: Path, executor: str, cache: Any, rows: Any
) -> None:
    pipeline = build(server.base_url, tmp_path / "cache", max_retries=1, retry_backoff=0.01)
    params = {"generate": {"llm": {"generation_kwargs": {"temperature": 0.0}}}}
    distiset = pipeline.run(parameters=params, use_cache=False, executor=executor)
    result = rows(distiset)
    assert [r["generation"] for r in result] == [f"echo: q{i}" for i in range(9)] + [None]
    assert {r["model_name"] for r in result} == {"fake"}
    assert (
        result[-1][META]["error_generate"]
        == "AuthenticationError: Error code: 401 - invalid credentials: Bearer **********"
    )
    assert result[0][META]["statistics_generate"] == {"input_tokens": 1, "output_tokens": 2}
    assert server.max_in_flight <= 3 and server.authorizations == {f"Bearer {SECRET}"}
    folder = cache(pipeline)
    assert "1 of 2 generations failed" in folder.log_text
    for path in [folder.root / "pipeline.yaml", folder.root / "pipeline.log"]:
        assert SECRET not in path.read_text(encoding="utf-8"), path
    assert SECRET not in json.dumps(result)
    assert all(SECRET.encode() not in p.read_bytes() for p in folder.root.rglob("*") if p.is_file())


# -- extra keys of the LLM's output -------------------------------------------------------------
def logprob(text: str, i: int) -> list[list[dict[str, Any]]]:
    return [[{"token": text, "logprob": -float(i)}]]


class LogprobLLM(ScriptedLLM):
    """A ``ScriptedLLM`` that also returns log probabilities (none for a failed input)."""

    def generate(self, inputs: list[Any], num_generations: int = 1, **kwargs: Any) -> list[GenerateOutput]:
        outputs = super().generate(inputs, num_generations)
        for output in outputs:
            if output.get("errors") is None:
                texts = [str(g) for g in output["generations"]]
                output["logprobs"] = [logprob(t, i) for i, t in enumerate(texts)]
        return outputs


def test_extra_llm_output_keys_become_a_column_per_generation() -> None:
    task = TextGeneration(name="g", llm=LogprobLLM(), num_generations=2)
    rows = run_task(task, [{"instruction": "a"}, {"instruction": "x #fail"}])
    assert [r["llm_g_logprobs"] for r in rows] == [logprob("a!0", 0), logprob("a!1", 1), None, None]
    assert list(rows[0]) == ["instruction", "generation", META, "llm_g_logprobs", "model_name"]
    assert not any("llm_g_errors" in r or "llm_g_statistics" in r for r in rows)


def test_extra_llm_output_keys_are_grouped_with_the_generations() -> None:
    task = TextGeneration(name="g", llm=LogprobLLM(), num_generations=2, group_generations=True)
    [row] = run_task(task, [{"instruction": "a"}])
    assert row["llm_g_logprobs"] == [logprob("a!0", 0), logprob("a!1", 1)]


def test_without_extra_keys_there_is_no_llm_column() -> None:
    [row] = run_task(TextGeneration(name="g", llm=ScriptedLLM()), [{"instruction": "a"}])
    assert not [c for c in row if c.startswith("llm_")]


# -- generate_outputs ---------------------------------------------------------------------------
class ReversingLLM(ScriptedLLM):
    """Overrides ``generate_outputs`` (the entry point tasks call), not ``generate``."""

    def generate_outputs(self, inputs: list[Any], num_generations: int = 1, **kwargs: Any) -> list[GenerateOutput]:
        outputs = self.generate(inputs, num_generations, **kwargs)
        for output in outputs:
            output["generations"] = [str(g)[::-1] for g in output["generations"]]
        return outputs


def test_tasks_generate_through_generate_outputs() -> None:
    [row] = run_task(TextGeneration(name="g", llm=ReversingLLM()), [{"instruction": "ab"}])
    assert row["generation"] == "0!ba"


# -- default structured output ------------------------------------------------------------------
class Rating(BaseModel):
    score: int


class Rate(Task):
    """Rates the instruction; its answers follow ``Rating``."""

    @property
    def inputs(self) -> list[str]:
        return ["instruction"]

    @property
    def outputs(self) -> list[str]:
        return ["score", "model_name"]

    def format_input(self, input: dict[str, Any]) -> list[dict[str, str]]:
        return [{"role": "user", "content": input["instruction"]}]

    def format_output(self, output: str | None, input: dict[str, Any] | None = None) -> dict[str, Any]:
        return {"score": Rating.model_validate_json(str(output)).score}

    def get_structured_output(self) -> dict[str, Any]:
        return Rating.model_json_schema()


@pytest.fixture
def server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer(latency=0.02) as running:
        yield running


def fake_llm(server: FakeOpenAIServer, **kwargs: Any) -> OpenAILLM:
    return OpenAILLM(model="fake", base_url=server.base_url, api_key=SECRET, **kwargs)


def test_the_default_structured_output_constrains_the_llm_while_the_task_is_loaded(server: FakeOpenAIServer) -> None:
    llm = fake_llm(server)
    rows = run_task(Rate(name="r", llm=llm, use_default_structured_output=True), [{"instruction": "rate it"}])
    assert rows[0]["score"] == 1 and "error_r" not in rows[0][META]
    [response_format] = server.response_formats
    assert response_format["json_schema"]["schema"] == Rating.model_json_schema()
    assert llm.structured_output is None  # given back at unload


def test_without_the_flag_the_task_schema_is_not_used(server: FakeOpenAIServer) -> None:
    rows = run_task(Rate(name="r", llm=fake_llm(server)), [{"instruction": "rate it"}])
    assert server.response_formats == [None]
    assert rows[0]["score"] is None and "error_r" in rows[0][META]


def test_the_llm_structured_output_wins_over_the_default(server: FakeOpenAIServer) -> None:
    class Other(BaseModel):
        label: str

    llm = fake_llm(server, structured_output={"schema": Other})
    run_task(Rate(name="r", llm=llm, use_default_structured_output=True), [{"instruction": "rate it"}])
    assert server.response_formats[0]["json_schema"]["schema"] == Other.model_json_schema()


def signature_of(task_class: type[Task], tmp_path: Path, **kwargs: Any) -> str:
    with Pipeline(name="sig", cache_dir=tmp_path) as pipeline:
        task = task_class(
            name="task", llm=OpenAILLM(model="m", base_url="http://127.0.0.1:9/v1", api_key="k"), **kwargs
        )
        LoadDataFromDicts(name="load", data=[{"instruction": "q"}]) >> task
    return pipeline.signature


def test_the_default_structured_output_takes_part_in_the_signature(tmp_path: Path) -> None:
    plain = signature_of(Rate, tmp_path)
    constrained = signature_of(Rate, tmp_path, use_default_structured_output=True)
    assert constrained != plain
    # The same generations as with the schema set on the LLM by hand: the same signature.
    with Pipeline(name="sig", cache_dir=tmp_path) as pipeline:
        llm = OpenAILLM(model="m", base_url="http://127.0.0.1:9/v1", api_key="k", structured_output={"schema": Rating})
        LoadDataFromDicts(name="load", data=[{"instruction": "q"}]) >> Rate(name="task", llm=llm)
    assert pipeline.signature == constrained
    # A task without a schema generates the same either way.
    assert signature_of(TextGeneration, tmp_path, use_default_structured_output=True) == signature_of(
        TextGeneration, tmp_path
    )


# -- TextGeneration(use_system_prompt=...) ------------------------------------------------------
def test_use_system_prompt_is_accepted_without_effect_as_in_distilabel(tmp_path: Path) -> None:
    with pytest.warns(FutureWarning, match=r"`use_system_prompt` is deprecated and has no effect"):
        task = TextGeneration(name="g", llm=ScriptedLLM(), system_prompt="S", use_system_prompt=False)
    [row] = run_task(task, [{"instruction": "hi"}])
    assert row[META]["raw_input_g"][0] == {"role": "system", "content": "S"}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        TextGeneration(llm=ScriptedLLM(), use_system_prompt=True)
    assert signature_of(TextGeneration, tmp_path) == signature_of(TextGeneration, tmp_path, use_system_prompt=True)


# -- print --------------------------------------------------------------------------------------
def test_print_shows_the_prompt_of_a_placeholder_row(capsys: pytest.CaptureFixture[str]) -> None:
    TextGeneration(llm=ScriptedLLM()).print()
    out = capsys.readouterr().out
    assert "Prompt: TextGeneration" in out
    assert out.index("System Message") < out.index("<PLACEHOLDER_SYSTEM_PROMPT>") < out.index("User Message")
    assert out.index("User Message") < out.index("<PLACEHOLDER_INSTRUCTION>")
    ChatGeneration(llm=ScriptedLLM()).print([{"role": "user", "content": "hello there"}])
    out = capsys.readouterr().out
    assert "Prompt: ChatGeneration" in out and "hello there" in out and "System Message" not in out


def test_print_falls_back_to_plain_text_without_rich(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "rich.console", None)  # importing it now raises ImportError
    ChatGeneration(llm=ScriptedLLM()).print()
    assert capsys.readouterr().out == "Prompt: ChatGeneration\n--- User Message ---\n<PLACEHOLDER_MESSAGES>\n"


# -- GeneratorTask ------------------------------------------------------------------------------
class Brainstorm(GeneratorTask):
    """Asks the LLM for ideas about each topic."""

    topics: list[str]

    @property
    def outputs(self) -> list[str]:
        return ["topic", "idea", "model_name"]

    def format_input(self, input: dict[str, Any]) -> list[dict[str, str]]:
        return [{"role": "user", "content": f"ideas about {input['topic']}"}]

    def format_output(self, output: str | None, input: dict[str, Any] | None = None) -> dict[str, Any]:
        return {"idea": output}

    def process(self, offset: int = 0) -> GeneratorStepOutput:
        prompts = [{"topic": t} for t in self.topics[offset:]]
        conversations = [self.format_input(p) for p in prompts]
        outputs = self.llm.generate_outputs(
            conversations, self.num_generations or 1, **self.llm.get_generation_kwargs()
        )
        rows = []
        for prompt, output in zip(prompts, outputs):
            rows.extend(self._rows_for(prompt, self._format_outputs(output, prompt)))
        yield rows, True


def test_a_generator_task_starts_a_pipeline(tmp_path: Path, executor: str, rows: Any) -> None:
    with Pipeline(name="brainstorm", cache_dir=tmp_path, enable_metadata=True) as pipeline:
        ideas = Brainstorm(name="ideas", llm=LogprobLLM(), topics=["cats", "dogs"], num_generations=2)
        ideas >> TextGeneration(name="expand", llm=ScriptedLLM(), columns="idea", template="{{ idea }}")
    assert ideas.is_generator and ideas.get_outputs() == {"topic": True, "idea": True, "model_name": True}
    result = rows(pipeline.run(use_cache=False, executor=executor))
    assert [(r["topic"], r["idea"], r["generation"]) for r in result] == [
        ("cats", "ideas about cats!0", "ideas about cats!0!0"),
        ("cats", "ideas about cats!1", "ideas about cats!1!0"),
        ("dogs", "ideas about dogs!0", "ideas about dogs!0!0"),
        ("dogs", "ideas about dogs!1", "ideas about dogs!1!0"),
    ]
    assert result[1]["llm_ideas_logprobs"] == logprob("ideas about cats!1", 1)
    assert result[0][META]["raw_input_ideas"] == [{"role": "user", "content": "ideas about cats"}]
    assert result[0][META]["statistics_ideas"] == {"input_tokens": 1, "output_tokens": 1}


def test_a_generator_task_loads_its_llm_with_the_default_structured_output(server: FakeOpenAIServer) -> None:
    class RatedIdeas(Brainstorm):
        def get_structured_output(self) -> type[BaseModel]:
            return Rating

    task = RatedIdeas(name="ideas", llm=fake_llm(server), topics=["cats"], use_default_structured_output=True)
    task.load()
    try:
        [(rows, last)] = list(task.process())
    finally:
        task.unload()
    assert last and rows[0]["idea"] == '{"score": 1}' and rows[0]["model_name"] == "fake"
    assert server.response_formats[0]["json_schema"]["schema"] == Rating.model_json_schema()
    assert task.llm.structured_output is None


# -- a pipeline keeps the LLM's log probabilities ------------------------------------------------
def test_a_pipeline_keeps_the_openai_logprobs(
    server: FakeOpenAIServer, tmp_path: Path, executor: str, rows: Any
) -> None:
    llm = fake_llm(server, generation_kwargs={"logprobs": True, "top_logprobs": 1})
    with Pipeline(name="logprobs", cache_dir=tmp_path) as pipeline:
        LoadDataFromDicts(name="load", data=[{"instruction": "hi"}]) >> TextGeneration(name="gen", llm=llm)
    [row] = rows(pipeline.run(use_cache=False, executor=executor))
    assert row["generation"] == "echo: hi"
    assert row["llm_gen_logprobs"] == [[{"token": "echo:", "logprob": -0.5}], [{"token": "hi", "logprob": -0.5}]]
