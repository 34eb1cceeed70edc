"""LLM tasks: ``Task`` semantics with a scripted LLM, then full pipelines against a local server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from distil_dagster.models import LLM, GenerateOutput, OpenAILLM
from distil_dagster.models.llms.base import failed_output
from distil_dagster.pipeline import Pipeline
from distil_dagster.steps import LoadDataFromDicts
from distil_dagster.steps.tasks import ChatGeneration, Task, TextGeneration
from tests.models.openai_server import FakeOpenAIServer

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


def run_task(task: Task, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    task.load()
    try:
        return next(iter(task.process([dict(r) for r in rows])))
    finally:
        task.unload()


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


@pytest.fixture
def server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer(latency=0.02) as running:
        yield running


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
