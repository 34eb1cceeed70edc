"""``TogetherLLM``, ``AnyscaleLLM`` and ``AzureOpenAILLM`` (distilabel's OpenAI-based providers) against
the OpenAI-compatible server on 127.0.0.1, which also serves Azure's deployment routes."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any

import pytest

from distil_dagster.models import LLM, AnyscaleLLM, AzureOpenAILLM, OpenAILLM, TogetherLLM
from distil_dagster.pipeline import Pipeline
from distil_dagster.steps import LoadDataFromDicts
from distil_dagster.steps.tasks import TextGeneration
from tests.models.openai_server import FakeOpenAIServer

pytestmark = pytest.mark.timeout(30)

SECRET = "provider-key-DO-NOT-LEAK-5678"
VERSION = "2024-10-21"
DEAD = "http://127.0.0.1:9"  # nothing listens there: a request sent there fails
#: (class, prefix of its environment variables, its default API root)
PROVIDERS = [
    pytest.param(TogetherLLM, "TOGETHER", "https://api.together.xyz/v1", id="together"),
    pytest.param(AnyscaleLLM, "ANYSCALE", "https://api.endpoints.anyscale.com/v1", id="anyscale"),
]
_ENV = [
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "TOGETHER_API_KEY",
    "TOGETHER_BASE_URL",
    "ANYSCALE_API_KEY",
    "ANYSCALE_BASE_URL",
    "AZURE_OPENAI_ENDPOINT",
    "AZURE_OPENAI_API_KEY",
    "AZURE_OPENAI_AD_TOKEN",
    "OPENAI_API_VERSION",
]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """None of the providers' variables: each test sets what it means."""
    for name in _ENV:
        monkeypatch.delenv(name, raising=False)


def _chat(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


def _root(server: FakeOpenAIServer) -> str:
    """The server as an Azure endpoint (no ``/v1``)."""
    return server.base_url.removesuffix("/v1")


def _text_generation(cache_dir: Path, llm: OpenAILLM, *instructions: str) -> Pipeline:
    with Pipeline(name="provider", cache_dir=cache_dir) as pipeline:
        generate = TextGeneration(name="gen", llm=llm)
        LoadDataFromDicts(name="load", data=[{"instruction": i} for i in instructions]) >> generate
    return pipeline


def _files_holding(root: Path, secret: str) -> list[str]:
    """The files under ``root`` (pipeline.yaml, the log, batch and cache files) holding ``secret``."""
    return sorted(
        str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and secret.encode() in p.read_bytes()
    )


# -- Together and Anyscale -----------------------------------------------------------------------
@pytest.mark.parametrize(("cls", "prefix", "default_url"), PROVIDERS)
def test_a_provider_generates_in_a_pipeline_from_its_own_environment_variables(
    cls: type[OpenAILLM],
    prefix: str,
    default_url: str,
    server: FakeOpenAIServer,
    tmp_path: Path,
    rows: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(f"{prefix}_BASE_URL", server.base_url)
    monkeypatch.setenv(f"{prefix}_API_KEY", SECRET)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-openai-not-for-this-provider")
    monkeypatch.setenv("OPENAI_BASE_URL", DEAD)
    pipeline = _text_generation(tmp_path, cls(model="org/model"), "a", "b #status=401")

    result = rows(pipeline.run(executor="inline", parameters={"gen": {"llm": {"generation_kwargs": {"top_p": 0.5}}}}))

    assert [r["generation"] for r in result] == ["echo: a", None]
    assert {r["model_name"] for r in result} == {"org/model"}
    assert server.authorizations == {f"Bearer {SECRET}"}
    assert server.paths == ["/v1/chat/completions"] * 2
    assert server.bodies[0]["model"] == "org/model" and server.bodies[0]["top_p"] == 0.5
    assert _files_holding(tmp_path, SECRET) == []  # the 401 echoing the key was masked in the log too


@pytest.mark.parametrize(("cls", "prefix", "default_url"), PROVIDERS)
def test_a_provider_defaults_to_its_public_api_and_arguments_beat_the_environment(
    cls: type[OpenAILLM], prefix: str, default_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-openai")
    monkeypatch.setenv("OPENAI_BASE_URL", DEAD)
    bare = cls(model="m")
    assert bare.base_url == default_url and bare.api_key is None

    monkeypatch.setenv(f"{prefix}_BASE_URL", "http://from-env/v1")
    monkeypatch.setenv(f"{prefix}_API_KEY", "key-from-env")
    from_env = cls(model="m")
    assert from_env.base_url == "http://from-env/v1"
    assert from_env.api_key is not None and from_env.api_key.get_secret_value() == "key-from-env"

    given = cls(model="m", base_url="http://given/v1", api_key="given-key")
    assert given.base_url == "http://given/v1"
    assert given.api_key is not None and given.api_key.get_secret_value() == "given-key"


@pytest.mark.parametrize(("cls", "prefix", "default_url"), PROVIDERS)
def test_a_provider_without_its_key_fails_at_load_naming_itself_and_its_variable(
    cls: type[OpenAILLM], prefix: str, default_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-openai-not-for-this-provider")
    llm = cls(model="m")  # building it is fine: the key may come as a runtime parameter

    with pytest.raises(ValueError, match=rf"^{cls.__name__}: no API key; pass `api_key=` or set \${prefix}_API_KEY"):
        llm.load()


def test_a_provider_key_given_only_at_run_time_reaches_the_server_and_no_file(
    server: FakeOpenAIServer, tmp_path: Path, rows: Any
) -> None:
    pipeline = _text_generation(tmp_path, TogetherLLM(model="m", base_url=server.base_url), "a")

    result = rows(pipeline.run(executor="inline", parameters={"gen": {"llm": {"api_key": SECRET}}}))

    assert result[0]["generation"] == "echo: a"
    assert server.authorizations == {f"Bearer {SECRET}"}
    assert _files_holding(tmp_path, SECRET) == []


# -- Azure OpenAI ---------------------------------------------------------------------------------
def _azure_env(monkeypatch: pytest.MonkeyPatch, endpoint: str) -> None:
    monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", endpoint)
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", SECRET)
    monkeypatch.setenv("OPENAI_API_VERSION", VERSION)


def test_azure_sends_to_the_deployment_route_with_the_api_version_and_an_api_key_header(
    server: FakeOpenAIServer, tmp_path: Path, rows: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    _azure_env(monkeypatch, _root(server))
    monkeypatch.setenv("OPENAI_API_KEY", "sk-openai-not-for-azure")
    monkeypatch.setenv("AZURE_OPENAI_AD_TOKEN", "ad-token-not-used")  # the openai client's own fallback
    pipeline = _text_generation(tmp_path, AzureOpenAILLM(model="my-deployment"), "a", "b")

    result = rows(pipeline.run(executor="inline"))

    assert [r["generation"] for r in result] == ["echo: a", "echo: b"]
    assert {r["model_name"] for r in result} == {"my-deployment"}
    route = f"/openai/deployments/my-deployment/chat/completions?api-version={VERSION}"
    assert server.paths == [route, route]
    assert [h.get("api-key") for h in server.headers] == [SECRET, SECRET]
    assert not any("authorization" in h for h in server.headers)  # neither a bearer key nor the AD token
    assert server.bodies[0]["messages"] == _chat("a")
    assert _files_holding(tmp_path, SECRET) == []


def test_azure_sends_a_prompt_string_to_the_deployments_completions_route(
    server: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    _azure_env(monkeypatch, _root(server))
    llm = AzureOpenAILLM(model="instruct-deployment")
    llm.load()
    try:
        (output,) = llm.generate(["complete me"], max_new_tokens=5)  # type: ignore[list-item]  # a prompt string
    finally:
        llm.unload()

    assert output["generations"] == ["echo: complete me"]
    assert server.paths == [f"/openai/deployments/instruct-deployment/completions?api-version={VERSION}"]


def test_azure_arguments_beat_the_environment(server: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", DEAD)
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", "key-from-env")
    monkeypatch.setenv("OPENAI_API_VERSION", "2023-05-15")
    llm = AzureOpenAILLM(model="dep", base_url=_root(server), api_key=SECRET, api_version=VERSION)
    llm.load()
    try:
        (output,) = llm.generate([_chat("hi")])
    finally:
        llm.unload()

    assert output["generations"] == ["echo: hi"]
    assert server.paths == [f"/openai/deployments/dep/chat/completions?api-version={VERSION}"]
    assert server.headers[0]["api-key"] == SECRET


def test_azure_defaults_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    bare = AzureOpenAILLM(model="dep")
    assert (bare.base_url, bare.api_key, bare.api_version) == (None, None, None)

    _azure_env(monkeypatch, "https://res.openai.azure.com")
    llm = AzureOpenAILLM(model="dep")
    assert (llm.base_url, llm.api_version) == ("https://res.openai.azure.com", VERSION)
    assert llm.api_key is not None and llm.api_key.get_secret_value() == SECRET


def test_azure_names_every_missing_setting_at_load(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-openai-not-for-azure")
    message = (
        "AzureOpenAILLM: no endpoint; pass `base_url=` or set $AZURE_OPENAI_ENDPOINT; "
        "no API version; pass `api_version=` or set $OPENAI_API_VERSION; "
        "no API key; pass `api_key=` or set $AZURE_OPENAI_API_KEY."
    )
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        AzureOpenAILLM(model="dep").load()

    _azure_env(monkeypatch, "https://res.openai.azure.com")
    monkeypatch.delenv("AZURE_OPENAI_API_KEY")
    only_key = "AzureOpenAILLM: no API key; pass `api_key=` or set $AZURE_OPENAI_API_KEY."
    with pytest.raises(ValueError, match=f"^{re.escape(only_key)}$"):
        AzureOpenAILLM(model="dep").load()


def test_azure_key_is_masked_in_errors_and_logs(
    server: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    _azure_env(monkeypatch, _root(server))
    llm = AzureOpenAILLM(model="dep", max_retries=2, retry_backoff=0.01)
    llm.load()
    try:
        with caplog.at_level(logging.DEBUG):
            outputs = llm.generate([_chat("who am i #status=401"), _chat("retry me #flaky=429x1")])
    finally:
        llm.unload()

    assert outputs[0]["errors"] == ["AuthenticationError: Error code: 401 - invalid credentials: **********"]
    assert outputs[1]["generations"] == ["echo: retry me #flaky=429x1"]
    assert SECRET not in json.dumps(outputs) + caplog.text


# -- secrets, all providers -----------------------------------------------------------------------
def _with_key(cls: type[OpenAILLM], key: str) -> OpenAILLM:
    if cls is AzureOpenAILLM:
        return AzureOpenAILLM(model="dep", base_url="https://res.openai.azure.com", api_key=key, api_version=VERSION)
    return cls(model="m", api_key=key)


@pytest.mark.parametrize("cls", [TogetherLLM, AnyscaleLLM, AzureOpenAILLM])
def test_the_key_stays_out_of_repr_pipeline_yaml_and_signature(cls: type[OpenAILLM], tmp_path: Path) -> None:
    llm = _with_key(cls, SECRET)
    pipeline = _text_generation(tmp_path, llm, "a")
    pipeline.save(tmp_path / "pipeline.yaml", format="yaml")
    other_key = _text_generation(tmp_path, _with_key(cls, "another-key"), "a")

    assert SECRET not in repr(llm) + str(llm) + json.dumps(llm.model_dump(mode="json"))
    assert SECRET not in (tmp_path / "pipeline.yaml").read_text() + json.dumps(pipeline.dump())
    expected = {"model", "base_url", "generation_kwargs", "structured_output", "type_info"}
    assert set(llm.signature_fields()) == expected | ({"api_version"} if cls is AzureOpenAILLM else set())
    assert pipeline.signature == other_key.signature  # the key does not change the outputs
    assert Pipeline.from_yaml(tmp_path / "pipeline.yaml").signature == pipeline.signature


def test_the_llm_of_a_distilabel_pipeline_yaml_comes_back_as_ours() -> None:
    written_by_distilabel = {  # AzureOpenAILLM's fields as distilabel 1.5 dumps them (no key)
        "generation_kwargs": {},
        "use_offline_batch_generation": False,
        "offline_batch_generation_block_until_done": None,
        "jobs_ids": None,
        "model": "dep",
        "base_url": "https://res.openai.azure.com",
        "default_headers": None,
        "max_retries": 6,
        "timeout": 120,
        "structured_output": None,
        "api_version": VERSION,
        "type_info": {"module": "distilabel.models.llms.azure", "name": "AzureOpenAILLM"},
    }

    llm = LLM.from_dict(written_by_distilabel)

    assert isinstance(llm, AzureOpenAILLM)
    assert (llm.model, llm.base_url, llm.api_version) == ("dep", "https://res.openai.azure.com", VERSION)
