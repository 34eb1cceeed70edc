"""``OpenAILLM`` against a real OpenAI-compatible HTTP server on 127.0.0.1 (``openai_server.py``)."""

from __future__ import annotations

import asyncio
import copy
import json
import pickle
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from distil_dagster.models import OpenAILLM
from distil_dagster.pipeline import Pipeline
from distil_dagster.steps import LoadDataFromDicts
from distil_dagster.steps.tasks import TextGeneration
from tests.models.openai_server import FakeOpenAIServer

pytestmark = pytest.mark.timeout(30)

SECRET = "sk-test-DO-NOT-LEAK-1234"


def make_llm(server: FakeOpenAIServer, **kwargs: Any) -> OpenAILLM:
    settings: dict[str, Any] = {"model": "fake-model", "base_url": server.base_url, "api_key": SECRET}
    settings.update({"timeout": 5.0, "max_retries": 2, "retry_backoff": 0.01, **kwargs})
    llm = OpenAILLM(**settings)
    llm.load()
    return llm


def chat(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


def generate(llm: OpenAILLM, *texts: str, **kwargs: Any) -> list[Any]:
    try:
        return llm.generate([chat(t) for t in texts], **kwargs)
    finally:
        llm.unload()


def test_generates_in_order_with_token_usage(server: FakeOpenAIServer) -> None:
    outputs = generate(make_llm(server), "one two", "three")
    assert [o["generations"] for o in outputs] == [["echo: one two"], ["echo: three"]]
    assert outputs[0]["statistics"] == {"input_tokens": [2], "output_tokens": [3]}
    assert "errors" not in outputs[0]
    assert server.authorizations == {f"Bearer {SECRET}"}


def test_num_generations_uses_n(server: FakeOpenAIServer) -> None:
    [output] = generate(make_llm(server), "q", num_generations=3)
    assert output["generations"] == ["echo: q (0)", "echo: q (1)", "echo: q (2)"]
    assert server.requests == 1


def test_missing_choices_are_recorded_as_errors(server: FakeOpenAIServer) -> None:
    [output] = generate(make_llm(server), "q #ignore-n", num_generations=2)
    assert output["generations"] == ["echo: q #ignore-n", None]
    assert output["errors"] == [None, "the server returned 1 of 2 generations"]


def test_429_is_retried_then_succeeds(server: FakeOpenAIServer) -> None:
    [output] = generate(make_llm(server, max_retries=3), "hi #flaky=429x2")
    assert output["generations"] == ["echo: hi #flaky=429x2"]
    assert server.attempts["hi #flaky=429x2"] == 3


@pytest.mark.parametrize("status", [500, 503])
def test_5xx_is_retried_then_recorded_per_row(server: FakeOpenAIServer, status: int) -> None:
    bad = f"boom #status={status}"
    outputs = generate(make_llm(server, max_retries=2), "fine", bad, num_generations=2)
    assert outputs[0]["generations"] == ["echo: fine (0)", "echo: fine (1)"]
    assert outputs[1]["generations"] == [None, None]
    assert outputs[1]["errors"] == [f"InternalServerError: Error code: {status} - fake error {status}"] * 2
    assert server.attempts[bad] == 3


def test_4xx_is_not_retried(server: FakeOpenAIServer) -> None:
    [output] = generate(make_llm(server), "x #status=400")
    assert output["errors"][0].startswith("BadRequestError")
    assert server.attempts["x #status=400"] == 1


def test_malformed_json_is_a_row_error(server: FakeOpenAIServer) -> None:
    outputs = generate(make_llm(server), "#malformed", "ok")
    assert outputs[0]["generations"] == [None]
    assert outputs[0]["errors"][0].startswith("JSONDecodeError")
    assert outputs[1]["generations"] == ["echo: ok"]


def test_a_stalled_server_times_out_and_is_retried(server: FakeOpenAIServer) -> None:
    outputs = generate(make_llm(server, timeout=0.2, max_retries=1), "#stall", "ok")
    assert outputs[0]["errors"] == ["APITimeoutError: Request timed out."]
    assert server.attempts["#stall"] == 2
    assert outputs[1]["generations"] == ["echo: ok"]


@pytest.mark.parametrize("limit", [4, 20])  # 20: split over two clients of 10 connections
def test_in_flight_requests_never_exceed_max_concurrency(server: FakeOpenAIServer, limit: int) -> None:
    server.latency = 0.02
    outputs = generate(make_llm(server, max_concurrency=limit), *[f"q{i}" for i in range(3 * limit)])
    assert [o["generations"][0] for o in outputs] == [f"echo: q{i}" for i in range(3 * limit)]
    assert server.max_in_flight == limit


def test_requests_reach_the_server_in_the_order_of_their_inputs(server: FakeOpenAIServer) -> None:
    """Requests over the limit wait with their bytes ready and go out in order (the first ones too:
    the client's platform lookup happens at load, not in a thread per early request)."""
    server.latency = 0.02
    texts = [f"q{i}" for i in range(24)]
    outputs = generate(make_llm(server, max_concurrency=4), *texts)
    assert [o["generations"][0] for o in outputs] == [f"echo: {t}" for t in texts]
    assert list(server.attempts) == texts  # first arrival order
    assert server.max_in_flight == 4


def test_batches_generated_from_several_threads_share_one_concurrency_limit(server: FakeOpenAIServer) -> None:
    server.latency = 0.02
    llm = make_llm(server, max_concurrency=6)
    batches = [[chat(f"b{b}-q{i}") for i in range(10)] for b in range(4)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(llm.generate, batches))
    for b, outputs in enumerate(results):
        assert [o["generations"][0] for o in outputs] == [f"echo: b{b}-q{i}" for i in range(10)]
    assert server.max_in_flight == 6
    llm.unload()


def test_a_task_with_an_async_llm_computes_enough_batches_at_once_to_stay_busy(server: FakeOpenAIServer) -> None:
    llm = OpenAILLM(model="m", base_url=server.base_url, api_key=SECRET, max_concurrency=10)
    assert TextGeneration(name="t", llm=llm, input_batch_size=10).concurrent_batches() == 2
    assert TextGeneration(name="t", llm=llm, input_batch_size=4).concurrent_batches() == 4
    assert TextGeneration(name="t", llm=llm, input_batch_size=1).concurrent_batches() == 8


class User(BaseModel):
    name: str
    age: int


def test_structured_output_sends_the_json_schema(server: FakeOpenAIServer) -> None:
    [output] = generate(make_llm(server, structured_output={"schema": User}), "make a user")
    assert User.model_validate_json(output["generations"][0]) == User(name="text", age=1)
    [response_format] = server.response_formats
    assert response_format["type"] == "json_schema"
    assert response_format["json_schema"]["name"] == "User"
    assert response_format["json_schema"]["schema"] == User.model_json_schema()


def test_the_api_key_is_masked_in_errors(server: FakeOpenAIServer) -> None:
    [output] = generate(make_llm(server), "who am i #status=401")
    assert "invalid credentials: Bearer **********" in output["errors"][0]
    assert SECRET not in json.dumps(output)


def test_the_api_key_stays_out_of_dumps_and_signature(server: FakeOpenAIServer) -> None:
    llm = OpenAILLM(model="m", base_url=server.base_url, api_key=SECRET, max_concurrency=3)
    assert SECRET not in repr(llm) + str(llm) + json.dumps(llm.model_dump(mode="json"))
    assert set(llm.signature_fields()) == {"model", "base_url", "generation_kwargs", "structured_output", "type_info"}


def test_api_key_and_base_url_default_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    llm = OpenAILLM(model="m")
    assert llm.api_key is not None and llm.api_key.get_secret_value() == SECRET
    assert llm.base_url == "http://127.0.0.1:9/v1"


def test_a_missing_api_key_fails_at_load(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(ValueError, match=r"no API key; pass `api_key=` or set \$OPENAI_API_KEY"):
        OpenAILLM(model="m").load()


def test_unknown_generation_kwargs_are_named() -> None:
    llm = OpenAILLM(model="m", api_key="k", generation_kwargs={"temperature": 0.2, "max_tokenz": 5})
    with pytest.raises(ValueError, match=r"unknown generation_kwargs \['max_tokenz'\]"):
        llm.check_generation_kwargs()


def test_generation_kwargs_reach_the_request(server: FakeOpenAIServer) -> None:
    llm = make_llm(server, generation_kwargs={"max_new_tokens": 7})
    [output] = generate(llm, "q", **llm.get_generation_kwargs())
    assert output["generations"] == ["echo: q"]


def test_pickling_drops_the_live_client(server: FakeOpenAIServer) -> None:
    llm = make_llm(server)
    copy = pickle.loads(pickle.dumps(llm))
    llm.unload()
    assert copy._clients == [] and copy._free is None and copy._event_loop is None
    copy.load()
    assert generate(copy, "again")[0]["generations"] == ["echo: again"]


def test_deep_copy_starts_the_live_state_fresh(server: FakeOpenAIServer) -> None:
    # The Dagster layer deep-copies the pipeline of every run; the lock, loop and clients cannot be copied.
    llm = make_llm(server)
    generate(llm, "warm up")
    copied = copy.deepcopy(llm)
    assert copied._clients == [] and copied._free is None and copied._event_loop is None
    assert copied._loop_lock is not llm._loop_lock and copied.api_key == llm.api_key
    copied.load()
    assert generate(copied, "again")[0]["generations"] == ["echo: again"]


def test_generate_works_inside_a_running_event_loop(server: FakeOpenAIServer) -> None:
    llm = make_llm(server)

    async def caller() -> list[Any]:
        return llm.generate([chat("from a notebook")])

    outputs = asyncio.run(caller())
    llm.unload()
    assert outputs[0]["generations"] == ["echo: from a notebook"]


@pytest.mark.parametrize("executor", ["processes", "inline"])
def test_a_pipeline_keeps_the_server_busy_across_batch_boundaries(
    server: FakeOpenAIServer, executor: str, tmp_path: Path
) -> None:
    server.latency = 0.05
    rows = [{"instruction": f"q{i}"} for i in range(40)]
    with Pipeline(name="busy", cache_dir=tmp_path) as pipeline:
        load = LoadDataFromDicts(name="load", data=rows, batch_size=40)
        llm = OpenAILLM(model="m", base_url=server.base_url, api_key=SECRET, max_concurrency=8)
        load >> TextGeneration(name="gen", llm=llm, input_batch_size=4)
    out = pipeline.run(executor=executor)["default"]["train"]
    assert out["generation"] == [f"echo: q{i}" for i in range(40)]
    # Processes: 3 batches of 4 rows at once, capped by the LLM's 8; inline: one batch at a time.
    assert server.max_in_flight == (8 if executor == "processes" else 4)


def test_logprobs_come_back_per_generation_with_their_top_candidates(server: FakeOpenAIServer) -> None:
    [output] = generate(make_llm(server), "q", num_generations=2, logprobs=True, top_logprobs=2)
    assert output["generations"] == ["echo: q (0)", "echo: q (1)"]
    assert [body["logprobs"] for body in server.bodies] == [True]
    assert [body["top_logprobs"] for body in server.bodies] == [2]

    def top(word: str) -> list[dict[str, Any]]:
        return [{"token": word, "logprob": -0.5}, {"token": f"{word}~1", "logprob": -2.0}]

    assert output["logprobs"] == [
        [top("echo:"), top("q"), top("(0)")],
        [top("echo:"), top("q"), top("(1)")],
    ]


def test_without_logprobs_none_are_asked_for_or_returned(server: FakeOpenAIServer) -> None:
    [output] = generate(make_llm(server), "q")
    assert "logprobs" not in output
    assert not {"logprobs", "top_logprobs", "echo"} & set(server.bodies[0])


def test_logprobs_of_missing_choices_are_none(server: FakeOpenAIServer) -> None:
    [output] = generate(make_llm(server), "q #ignore-n", num_generations=2, logprobs=True, top_logprobs=1)
    assert output["logprobs"] == [[[{"token": w, "logprob": -0.5}] for w in ("echo:", "q", "#ignore-n")], None]


def test_a_prompt_string_goes_to_the_completions_endpoint_with_echo(server: FakeOpenAIServer) -> None:
    llm = make_llm(server)
    try:
        [output] = llm.generate(["say hi"], echo=True, top_logprobs=1)  # type: ignore[list-item]  # a prompt string
    finally:
        llm.unload()
    assert output["generations"] == ["say hi echo: say hi"]
    [body] = server.bodies
    assert body["prompt"] == "say hi" and body["echo"] is True and body["logprobs"] == 1 and "messages" not in body
    one = [[{"token": w, "logprob": -0.5}] for w in ("hi", "echo:", "say", "hi")]
    assert output["logprobs"] == [[[], *one]]  # the first echoed token has no candidates


def test_default_headers_are_sent_with_every_request(server: FakeOpenAIServer) -> None:
    outputs = generate(make_llm(server, default_headers={"X-Team": "data-1"}), "a", "b")
    assert [o["generations"] for o in outputs] == [["echo: a"], ["echo: b"]]
    assert [h.get("x-team") for h in server.headers] == ["data-1", "data-1"]


def test_default_headers_stay_out_of_the_signature_and_the_pipeline_file() -> None:
    llm = OpenAILLM(model="m", api_key="k", default_headers={"Authorization-Extra": "secret"})
    assert "default_headers" not in llm.signature_fields()
    with Pipeline(name="headers") as pipeline:
        LoadDataFromDicts(data=[{"instruction": "a"}]) >> TextGeneration(name="gen", llm=llm)
    assert "secret" not in json.dumps(pipeline.dump())


def test_output_tokens_split_the_request_total_over_its_generations() -> None:
    """The API counts completion tokens per request; each generation gets its share (the shares add
    up to the total: summing a dataset's statistics gives the tokens used)."""
    from distil_dagster.models.llms.openai import completion_output

    choices = [{"index": i, "message": {"content": f"c{i}"}} for i in range(3)]
    output = completion_output({"choices": choices, "usage": {"prompt_tokens": 4, "completion_tokens": 11}}, 3)
    assert output["statistics"] == {"input_tokens": [4, 4, 4], "output_tokens": [4, 4, 3]}
    short = completion_output({"choices": choices[:1], "usage": {"prompt_tokens": 4, "completion_tokens": 5}}, 2)
    assert short["statistics"]["output_tokens"] == [5, 0]  # a generation the server did not return used none


def test_generation_kwargs_are_listed_in_the_runtime_parameters_info() -> None:
    info = OpenAILLM(model="m", api_key="k").get_runtime_parameters_info()
    [entry] = [e for e in info if e["name"] == "generation_kwargs"]
    assert list(entry) == ["name", "description", "keys"]
    assert [k["name"] for k in entry["keys"]] == [
        "max_new_tokens",
        "logprobs",
        "top_logprobs",
        "echo",
        "frequency_penalty",
        "presence_penalty",
        "temperature",
        "top_p",
        "stop",
        "response_format",
        "extra_body",
        "seed",
    ]
    assert all(k["optional"] is True and k["description"] for k in entry["keys"])
    assert {"name": "default_headers", "optional": True, "description": "HTTP headers sent with every request."} in info


def test_distilabel_generation_kwargs_are_accepted() -> None:
    kwargs = {"logprobs": True, "top_logprobs": 3, "echo": False, "max_new_tokens": 8, "stop": ["\n"]}
    OpenAILLM(model="m", api_key="k", generation_kwargs=kwargs).check_generation_kwargs()
