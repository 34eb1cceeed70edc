"""``OllamaLLM`` and ``ClientvLLM`` (distilabel's constructors) against the OpenAI-compatible server
on 127.0.0.1 that stands for Ollama's and vLLM's OpenAI-compatible APIs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from distil_dagster.models import ClientvLLM, OllamaLLM
from distil_dagster.pipeline import Pipeline
from distil_dagster.steps import LoadDataFromDicts
from distil_dagster.steps.tasks import TextGeneration
from tests.models.openai_server import FakeOpenAIServer

pytestmark = pytest.mark.timeout(30)


def _chat(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


def test_ollama_sends_its_options_as_openai_fields_one_request_per_generation(
    server: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OLLAMA_HOST", server.base_url.removesuffix("/v1").removeprefix("http://"))
    monkeypatch.setenv("OPENAI_API_KEY", "sk-not-for-ollama")  # an OpenAI key stays away from other servers
    llm = OllamaLLM(model="llama3")
    llm.load()
    try:
        (output,) = llm.generate(
            [_chat("hi")],
            num_generations=2,
            options={"temperature": 0.1, "num_predict": 9, "stop": ["."]},
            format="json",
        )
    finally:
        llm.unload()

    assert output["generations"] == ["echo: hi", "echo: hi"]
    assert len(server.bodies) == 2
    assert server.bodies[0] == {
        "model": "llama3",
        "messages": _chat("hi"),
        "temperature": 0.1,
        "max_tokens": 9,
        "stop": ["."],
        "response_format": {"type": "json_object"},
    }
    assert server.authorizations == {"Bearer ollama"}


def test_ollama_refuses_options_the_openai_api_cannot_carry() -> None:
    llm = OllamaLLM(model="llama3", generation_kwargs={"options": {"temperature": 0.1, "top_k": 5, "num_ctx": 2048}})

    with pytest.raises(ValueError, match=r"OllamaLLM: options \['num_ctx', 'top_k'\] have no field"):
        llm.check_generation_kwargs()


def test_vllm_client_asks_the_server_for_its_model_and_writes_it_to_rows(
    server: FakeOpenAIServer, tmp_path: Path, rows: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-not-for-vllm")
    with Pipeline(name="vllm", cache_dir=tmp_path) as pipeline:
        llm = ClientvLLM(base_url=server.base_url, tokenizer="org/model")
        generate = TextGeneration(name="gen", llm=llm, num_generations=2, group_generations=True)
        LoadDataFromDicts(name="load", data=[{"instruction": "a"}]) >> generate

    result = rows(pipeline.run(executor="inline", parameters={"gen": {"llm": {"generation_kwargs": {"top_p": 0.5}}}}))

    assert result[0]["generation"] == ["echo: a (0)", "echo: a (1)"] and result[0]["model_name"] == "served-model"
    assert server.bodies[0]["model"] == "served-model" and server.bodies[0]["n"] == 2
    assert server.bodies[0]["top_p"] == 0.5
    assert llm.model == ""  # the field stays as given: the signature does not depend on the server
    assert server.authorizations == {"Bearer EMPTY"}
