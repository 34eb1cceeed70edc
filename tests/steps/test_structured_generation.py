"""``StructuredGeneration``: each row's JSON schema goes to the server as that request's
``response_format``; the answers follow it. Against the local OpenAI-compatible server."""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from distil_dagster.models import LLM, GenerateOutput, OllamaLLM, OpenAILLM
from distil_dagster.pipeline import Pipeline
from distil_dagster.steps import LoadDataFromDicts
from distil_dagster.steps.tasks import StructuredGeneration
from tests.models.openai_server import FakeOpenAIServer
from tests.steps.task_runs import run_task

META = "distilabel_metadata"
CHARACTER = {
    "title": "Character",
    "type": "object",
    "properties": {"name": {"type": "string"}, "level": {"type": "integer"}},
    "required": ["name", "level"],
}
WEATHER = {
    "title": "Weather report",
    "type": "object",
    "properties": {"celsius": {"type": "number"}, "sunny": {"type": "boolean"}},
    "required": ["celsius", "sunny"],
}
ROWS = [
    {"instruction": "Make a hero", "structured_output": {"format": "json", "schema": CHARACTER}},
    {"instruction": "Weather?", "structured_output": {"format": "json", "schema": WEATHER}},
    {"instruction": "Plain text", "structured_output": None},
    {"instruction": "Make a villain", "structured_output": {"format": "json", "schema": CHARACTER}},
]


def json_schema_format(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"type": "json_schema", "json_schema": {"name": name, "schema": schema}}


@pytest.fixture
def server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer() as running:
        yield running


def openai_llm(server: FakeOpenAIServer, **kwargs: Any) -> OpenAILLM:
    return OpenAILLM(model="fake", base_url=server.base_url, api_key="sk-test", **kwargs)


def received(server: FakeOpenAIServer) -> dict[str, Any]:
    """The ``response_format`` of each request, by its last user message."""
    return {body["messages"][-1]["content"]: body.get("response_format") for body in server.bodies}


# -- a pipeline, on every executor ----------------------------------------------------------------
def test_a_pipeline_sends_each_row_its_schema_and_gets_answers_following_it(
    server: FakeOpenAIServer, tmp_path: Path, executor: str, rows: Any
) -> None:
    with Pipeline(name="structured", cache_dir=tmp_path, enable_metadata=True) as pipeline:
        generate = StructuredGeneration(name="generate", llm=openai_llm(server), input_batch_size=4)
        LoadDataFromDicts(name="load", data=ROWS) >> generate
    result = rows(pipeline.run(use_cache=False, executor=executor))

    assert [r["instruction"] for r in result] == [r["instruction"] for r in ROWS]
    hero, weather, plain, villain = (r["generation"] for r in result)
    assert json.loads(hero) == json.loads(villain) == {"name": "text", "level": 1}
    assert json.loads(weather) == {"celsius": 1.5, "sunny": True}
    assert plain == "echo: Plain text"
    assert {r["model_name"] for r in result} == {"fake"}
    assert not any("error_generate" in r[META] for r in result)
    assert received(server) == {
        "Make a hero": json_schema_format("Character", CHARACTER),
        "Weather?": json_schema_format("Weather_report", WEATHER),
        "Plain text": None,
        "Make a villain": json_schema_format("Character", CHARACTER),
    }


def test_the_task_round_trips_through_pipeline_yaml(tmp_path: Path) -> None:
    with Pipeline(name="structured-yaml", cache_dir=tmp_path) as pipeline:
        llm = OpenAILLM(model="m", base_url="http://127.0.0.1:9/v1", api_key="k")
        step = StructuredGeneration(name="generate", llm=llm, use_system_prompt=True)
        LoadDataFromDicts(name="load", data=[{**ROWS[0], "system_prompt": "Be terse."}]) >> step
    pipeline.save(tmp_path / "pipeline.yaml")
    again = Pipeline.from_yaml(tmp_path / "pipeline.yaml")
    reloaded = again.dag.step("generate")
    assert isinstance(reloaded, StructuredGeneration) and reloaded.use_system_prompt
    assert isinstance(reloaded.llm, OpenAILLM)
    assert again.signature == pipeline.signature


# -- rows -----------------------------------------------------------------------------------------
class Sighting(BaseModel):
    species: str
    count: int


def test_a_schema_may_be_a_pydantic_model_or_json_text_and_format_may_be_left_out(server: FakeOpenAIServer) -> None:
    rows = [
        {"instruction": "model", "structured_output": {"format": "json", "schema": Sighting}},
        {"instruction": "text", "structured_output": {"schema": json.dumps(WEATHER)}},
    ]
    result = run_task(StructuredGeneration(name="s", llm=openai_llm(server)), rows)
    assert received(server) == {
        "model": json_schema_format("Sighting", Sighting.model_json_schema()),
        "text": json_schema_format("Weather_report", WEATHER),
    }
    assert Sighting.model_validate_json(result[0]["generation"]) == Sighting(species="text", count=1)


def test_a_malformed_structured_output_fails_its_row_alone(server: FakeOpenAIServer) -> None:
    rows = [
        {"instruction": "fine", "structured_output": {"format": "json", "schema": CHARACTER}},
        {"instruction": "regex", "structured_output": {"format": "regex", "schema": r"\d+"}},
        {"instruction": "not a dict", "structured_output": "json please"},
        {"instruction": "no schema", "structured_output": {"format": "json"}},
        {"instruction": 42, "structured_output": None},
    ]
    result = run_task(StructuredGeneration(name="s", llm=openai_llm(server)), rows)
    assert json.loads(result[0]["generation"]) == {"name": "text", "level": 1}
    assert [r["generation"] for r in result[1:]] == [None] * 4
    errors = [r[META]["error_s"] for r in result[1:]]
    assert errors == [
        "format_input failed: ValueError: `structured_output` has format 'regex'; only 'json' (a JSON schema) "
        "can be sent as a response_format.",
        "format_input failed: ValueError: `structured_output` must be a dict like "
        "{'format': 'json', 'schema': {...}}, got str.",
        "format_input failed: ValueError: `structured_output['schema']` must be a JSON schema (a non-empty dict), "
        "got None.",
        "format_input failed: ValueError: `instruction` must be a string or a list of {'role', 'content'} dicts, "
        "got int.",
    ]
    assert list(received(server)) == ["fine"]


def test_the_row_schema_wins_over_the_llm_one_which_serves_rows_without(server: FakeOpenAIServer) -> None:
    llm = openai_llm(server, structured_output={"schema": WEATHER})
    result = run_task(StructuredGeneration(name="s", llm=llm), [ROWS[0], ROWS[2]])
    assert received(server) == {
        "Make a hero": json_schema_format("Character", CHARACTER),
        "Plain text": json_schema_format("Weather_report", WEATHER),
    }
    assert json.loads(result[1]["generation"]) == {"celsius": 1.5, "sunny": True}


def test_rows_with_different_schemas_are_requested_at_once() -> None:
    schemas = [{"title": f"S{i}", "type": "object", "properties": {f"f{i}": {"type": "integer"}}} for i in range(4)]
    rows = [{"instruction": f"q{i}", "structured_output": {"schema": s}} for i, s in enumerate(schemas)]
    with FakeOpenAIServer(latency=0.3) as server:
        result = run_task(StructuredGeneration(name="s", llm=openai_llm(server)), rows)
    assert [json.loads(r["generation"]) for r in result] == [{f"f{i}": 1} for i in range(4)]
    assert server.max_in_flight == 4


def test_a_system_prompt_and_a_conversation(server: FakeOpenAIServer) -> None:
    task = StructuredGeneration(name="s", llm=openai_llm(server), use_system_prompt=True)
    assert task.inputs == {"system_prompt": True, "instruction": True, "structured_output": False}
    assert StructuredGeneration(name="t", llm=openai_llm(server)).inputs == {
        "instruction": True,
        "structured_output": False,
    }
    chat = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}, {"role": "user", "content": "q"}]
    rows = [
        {"instruction": "a", "system_prompt": "Be terse.", "structured_output": None},
        {"instruction": chat, "system_prompt": "Be terse.", "structured_output": None},
    ]
    result = run_task(task, rows)
    assert [body["messages"] for body in server.bodies] == [
        [{"role": "system", "content": "Be terse."}, {"role": "user", "content": "a"}],
        [{"role": "system", "content": "Be terse."}, *chat],
    ]
    assert result[1][META]["raw_input_s"] == [{"role": "system", "content": "Be terse."}, *chat]
    with pytest.warns(UserWarning, match=r"StructuredGeneration 's': `use_system_prompt` is set but a row has no"):
        assert task.format_input({"instruction": "b", "system_prompt": None}) == [{"role": "user", "content": "b"}]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert StructuredGeneration(name="u", llm=openai_llm(server)).format_input(rows[0]) == [
            {"role": "user", "content": "a"}
        ]


def test_print_shows_the_prompt_of_a_placeholder_row(capsys: pytest.CaptureFixture[str]) -> None:
    llm = OpenAILLM(model="m", base_url="http://127.0.0.1:9/v1", api_key="k")
    StructuredGeneration(name="s", llm=llm, use_system_prompt=True).print()
    out = capsys.readouterr().out
    assert "<PLACEHOLDER_SYSTEM_PROMPT>" in out and "<PLACEHOLDER_INSTRUCTION>" in out


# -- LLMs that cannot take a schema per row -------------------------------------------------------
class FixedKwargsLLM(LLM):
    """An LLM whose generation kwargs are named and include no ``response_format``."""

    @property
    def model_name(self) -> str:
        return "fixed"

    def generate(  # type: ignore[override]  # named generation kwargs
        self, inputs: list[Any], num_generations: int = 1, temperature: float = 1.0
    ) -> list[GenerateOutput]:
        raise AssertionError("never called: the task is refused when created")


@pytest.mark.parametrize("llm", [FixedKwargsLLM(), OllamaLLM(model="m", host="http://127.0.0.1:9")])
def test_an_llm_without_a_response_format_is_refused_when_the_task_is_created(llm: LLM) -> None:
    name = type(llm).__name__
    with pytest.raises(
        ValueError,
        match=rf"StructuredGeneration 'sg': {name} cannot take a schema per row \(its generation method has no "
        r"`response_format` parameter\)\. Use an LLM that has one, such as OpenAILLM",
    ):
        StructuredGeneration(name="sg", llm=llm)
