"""``InferenceEndpointsLLM`` (distilabel's Hugging Face LLM) against real HTTP servers on 127.0.0.1:
the OpenAI-compatible fake as TGI / the serverless router, and a fake Inference Endpoints API."""

from __future__ import annotations

import http.server
import json
import threading
from pathlib import Path
from typing import Any

import pytest

from distil_dagster.models import InferenceEndpointsLLM
from distil_dagster.pipeline import Pipeline
from distil_dagster.steps import LoadDataFromDicts
from distil_dagster.steps.tasks import TextGeneration
from tests.models.openai_server import FakeOpenAIServer

pytestmark = pytest.mark.timeout(30)

TOKEN = "hf_inference_test_token"


@pytest.fixture(autouse=True)
def no_saved_token(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No ``HF_TOKEN`` and an empty ``HF_HOME``: the token is what a test gives."""
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HF_INFERENCE_BASE_URL", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.setattr("huggingface_hub.constants.HF_TOKEN_PATH", str(tmp_path / "hf-home" / "token"))


def _chat(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


def _root(server: FakeOpenAIServer) -> str:
    return server.base_url.removesuffix("/v1")


def test_a_tgi_server_gets_one_chat_request_per_generation_with_distilabels_kwargs(server: FakeOpenAIServer) -> None:
    llm = InferenceEndpointsLLM(base_url=_root(server), tokenizer_id="some/model")
    llm.load()
    try:
        outputs = llm.generate(
            [_chat("one"), _chat("two")], num_generations=2, max_new_tokens=7, stop_sequences=["\n"], top_k=5
        )
    finally:
        llm.unload()

    assert [o["generations"] for o in outputs] == [["echo: one"] * 2, ["echo: two"] * 2]
    assert outputs[0]["statistics"] == {"input_tokens": [1, 1], "output_tokens": [2, 2]}
    assert len(server.bodies) == 4 and not any("n" in b for b in server.bodies)  # one request per generation
    assert {(b["model"], b["max_tokens"], tuple(b["stop"])) for b in server.bodies} == {("tgi", 7, ("\n",))}
    assert not any("top_k" in b for b in server.bodies)  # text-generation only, as distilabel's chat path
    # Only what was set: TGI refuses top_p=1.0 and turns a presence_penalty p into a repetition penalty p + 2.
    assert set(server.bodies[0]) == {"model", "messages", "max_tokens", "temperature", "stop"}
    assert llm.base_url == _root(server) and llm.model_name == _root(server)  # the fields stay as given


def test_serverless_inference_needs_a_token_and_names_the_model(
    server: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_INFERENCE_BASE_URL", server.base_url)  # the router, here
    with pytest.raises(ValueError, match="serverless inference needs a Hugging Face token"):
        InferenceEndpointsLLM(model_id="org/model").load()

    monkeypatch.setenv("HF_TOKEN", TOKEN)
    llm = InferenceEndpointsLLM(model_id="org/model", model_display_name="shown")
    llm.load()
    try:
        (output,) = llm.generate([_chat("hi")], temperature=0.3, top_p=0.9, logprobs=True, top_logprobs=1)
    finally:
        llm.unload()

    assert output["generations"] == ["echo: hi"] and output["logprobs"][0] is not None
    assert server.bodies[0]["model"] == "org/model" and server.bodies[0]["temperature"] == 0.3
    assert server.bodies[0]["top_p"] == 0.9 and server.bodies[0]["top_logprobs"] == 1
    assert server.authorizations == {f"Bearer {TOKEN}"}
    assert llm.model_name == "shown"


class _Endpoints(http.server.BaseHTTPRequestHandler):
    """The Inference Endpoints API's ``GET /endpoint/<namespace>/<name>``, for one running endpoint."""

    def do_GET(self) -> None:
        found = self.path == f"/endpoint/team/{self.server.name}"  # type: ignore[attr-defined]
        raw = {
            "name": self.server.name,  # type: ignore[attr-defined]
            "type": "protected",
            "healthRoute": "/health",
            "model": {"repository": "org/model", "framework": "pytorch", "revision": "main", "task": "text-generation"},
            "status": {
                "state": "running",
                "url": self.server.url,  # type: ignore[attr-defined]
                "createdAt": "2026-01-01T00:00:00.000Z",
                "updatedAt": "2026-01-01T00:00:00.000Z",
            },
        }
        body = json.dumps(raw if found else {"error": "not found"}).encode()
        self.send_response(200 if found else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_a_dedicated_endpoint_is_found_by_name_and_used_through_a_pipeline(
    server: FakeOpenAIServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, rows: Any
) -> None:
    api = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Endpoints)
    api.name, api.url = "my-endpoint", _root(server)  # type: ignore[attr-defined]
    thread = threading.Thread(target=api.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setattr(
        "huggingface_hub.constants.INFERENCE_ENDPOINTS_ENDPOINT", f"http://127.0.0.1:{api.server_address[1]}"
    )
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    try:
        with Pipeline(name="endpoint", cache_dir=tmp_path) as pipeline:
            llm = InferenceEndpointsLLM(endpoint_name="my-endpoint", endpoint_namespace="team")
            LoadDataFromDicts(data=[{"instruction": "a"}, {"instruction": "b"}]) >> TextGeneration(name="gen", llm=llm)
        result = rows(pipeline.run(executor="inline"))
    finally:
        api.shutdown()
        api.server_close()
        thread.join()

    assert [(r["instruction"], r["generation"], r["model_name"]) for r in result] == [
        ("a", "echo: a", "my-endpoint"),
        ("b", "echo: b", "my-endpoint"),
    ]
    assert Pipeline.from_dict(pipeline.dump()).signature == pipeline.signature


def test_one_target_is_required() -> None:
    with pytest.raises(ValueError, match="give `model_id`, `endpoint_name` or `base_url`"):
        InferenceEndpointsLLM()
    for other in ({"base_url": "http://127.0.0.1:1"}, {"model_id": "org/model"}):
        with pytest.raises(ValueError, match="give `endpoint_name` alone, not with `base_url` or `model_id`"):
            InferenceEndpointsLLM(endpoint_name="e", **other)
