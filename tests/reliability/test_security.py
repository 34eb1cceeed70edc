"""Security: what ``pipeline.yaml`` may import, where secrets may go, who may read the cache.

- A ``pipeline.yaml`` naming an arbitrary callable (``os.system``, a plain function, a class that
  is not a step, LLM or routing function, a YAML python tag) is refused before anything named in
  it is called: the marker file the callable would create never appears.
- A known random API key (given as an argument, through ``$OPENAI_API_KEY`` or as a runtime
  parameter) is sent to the server, which echoes it back in an error, yet appears in no file of
  the cache folder or the Dagster home (event log included), in no captured output or log, in no
  Dagster metadata and in no raised error.
- The cache folder and the folders above it that the engine creates are user-only (0o700), and
  every file and folder inside is neither group- nor world-accessible.
"""

from __future__ import annotations

import os
import re
import secrets
import stat
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import pyarrow.parquet as pq
import pytest
import yaml

from distil_dagster.dagster import DistilDagsterIOManager, DistilDagsterResource, build_pipeline_assets
from distil_dagster.distiset import create_distiset
from distil_dagster.errors import DistilDagsterError, PipelineValidationError
from distil_dagster.models import OpenAILLM
from distil_dagster.pipeline import Pipeline
from distil_dagster.steps import KeepColumns, LoadDataFromDicts
from distil_dagster.steps.tasks import TextGeneration
from tests.models.openai_server import FakeOpenAIServer

SECRET = "sk-test-" + secrets.token_hex(16)
ROWS = [
    {"instruction": "hello"},
    {"instruction": "who am I? #status=401"},  # the server echoes the Authorization header
    {"instruction": "boom #status=500"},
]
MASK = "**********"


# -- (a) pipeline.yaml names arbitrary callables ----------------------------------------------
def not_a_step(command: str = "") -> None:
    """A plain function: ``pipeline.yaml`` must never call it."""
    Path(command).touch()


class NotAStep:
    """A class that is not a step: ``pipeline.yaml`` must never instantiate it."""

    def __init__(self, **fields: Any) -> None:
        Path(fields["command"]).touch()


def _valid_dump(cache: Path) -> dict[str, Any]:
    with Pipeline(name="evil", cache_dir=cache) as pipeline:
        LoadDataFromDicts(name="load", data=[{"a": 1}]) >> KeepColumns(name="keep", columns=["a"])
    return pipeline.dump()


@pytest.mark.parametrize(
    ("module", "name"),
    [
        ("os", "system"),
        ("builtins", "eval"),
        ("subprocess", "Popen"),
        (__name__, "not_a_step"),
        (__name__, "NotAStep"),
        (__name__, "NotAStep.__init__"),
        ("distil_dagster.pipeline.base", "Pipeline"),
    ],
)
@pytest.mark.parametrize("where", ["step", "llm", "routing"])
def test_a_yaml_naming_an_arbitrary_callable_is_refused_before_calling_it(
    tmp_path: Path, module: str, name: str, where: str
) -> None:
    marker = tmp_path / "pwned"
    data = _valid_dump(tmp_path / "cache")
    evil = {"module": module, "name": name}
    steps = data["pipeline"]["steps"]
    if where == "step":
        steps[1]["step"] = {"command": str(marker), "args": ["touch", str(marker)], "type_info": evil}
    elif where == "llm":
        with Pipeline(name="evil", cache_dir=tmp_path / "cache") as pipeline:
            llm = OpenAILLM(model="m", base_url="http://127.0.0.1:9/v1", api_key="-")
            LoadDataFromDicts(name="load", data=[{"instruction": "x"}]) >> TextGeneration(name="keep", llm=llm)
        data = pipeline.dump()
        data["pipeline"]["steps"][1]["step"]["llm"] = {"command": str(marker), "type_info": evil}
    else:
        function = {**evil, "kwargs": {"command": str(marker), "args": ["touch", str(marker)]}}
        data["pipeline"]["routing_batch_functions"] = [
            {"step": "load", "routing_batch_function": function, "targets": ["keep"]}
        ]
    path = tmp_path / "pipeline.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")

    with pytest.raises(
        PipelineValidationError, match=rf"(?s){re.escape(str(path))}: .*'{re.escape(module + '.' + name)}'"
    ):
        Pipeline.from_yaml(path)

    assert not marker.exists()


@pytest.mark.parametrize(
    "tag",
    [
        "!!python/object/apply:os.system ['touch {marker}']",
        "!!python/object/new:subprocess.Popen [['touch', '{marker}']]",
        "!!python/name:os.system",
        "!!python/module:antigravity",
    ],
)
def test_yaml_python_tags_are_never_constructed(tmp_path: Path, tag: str) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "pipeline.yaml"
    path.write_text(f"pipeline:\n  name: {tag.format(marker=marker)}\n", encoding="utf-8")

    with pytest.raises(PipelineValidationError, match=r"cannot read pipeline YAML"):
        Pipeline.from_yaml(path)

    assert not marker.exists()


# -- (b) secrets ------------------------------------------------------------------------------
@pytest.fixture
def server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer() as running:
        yield running


def _pipeline(cache: Path, server: FakeOpenAIServer, source: str, **llm_fields: Any) -> Pipeline:
    """Load the rows and answer them; the LLM's key comes from ``source``."""
    key = {"api_key": SECRET} if source == "argument" else {}
    llm = OpenAILLM(model="fake", base_url=server.base_url, max_retries=0, **key, **llm_fields)
    with Pipeline(name="secrets", cache_dir=cache, enable_metadata=True) as pipeline:
        LoadDataFromDicts(name="load", data=ROWS) >> TextGeneration(name="generate", llm=llm)
    return pipeline


def _parameters(source: str) -> dict[str, Any]:
    return {"generate": {"llm": {"api_key": SECRET}}} if source == "runtime_parameter" else {}


def _files_holding(root: Path, secret: str, expected: tuple[str, ...]) -> list[str]:
    """Files under ``root`` holding ``secret``, in their bytes or (Parquet) in their decoded rows.

    ``expected``: file suffixes that must be among those searched (the grep sees the real artefacts).
    """
    files = sorted(p for p in root.rglob("*") if p.is_file())
    assert set(expected) <= {p.suffix for p in files}, files
    found = []
    for path in files:
        data = path.read_bytes()
        decoded = str(pq.read_table(path).to_pylist()) if path.suffix == ".parquet" else ""
        if secret.encode() in data or secret in decoded:
            found.append(str(path))
    return found


def _error_text(exc: BaseException) -> str:
    return "".join(traceback.format_exception(exc))


def _assert_the_server_saw_and_echoed_the_key(server: FakeOpenAIServer, rows: list[dict[str, Any]]) -> None:
    """Without this, a secret-free grep would prove nothing: the key did go out and did come back."""
    assert server.authorizations == {f"Bearer {SECRET}"}
    errors = [str((r.get("distilabel_metadata") or {}).get("error_generate")) for r in rows]
    assert any("invalid credentials" in e and MASK in e for e in errors), errors
    assert any("fake error 500" in e for e in errors), errors


@pytest.mark.timeout(120)
@pytest.mark.parametrize("source", ["argument", "env", "runtime_parameter"])
def test_the_secret_never_leaves_the_llm_in_pipeline_run(
    tmp_path: Path,
    server: FakeOpenAIServer,
    source: str,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    if source == "env":
        monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    else:
        monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    cache = tmp_path / "cache"
    texts = []

    distiset = _pipeline(cache, server, source).run(parameters=_parameters(source), executor="processes")
    rows = distiset["default"]["train"].to_list()
    texts.append(repr(rows))
    failing = _pipeline(cache, server, source, generation_kwargs={"bogus": 1})
    with pytest.raises(DistilDagsterError) as failed:
        failing.run(parameters=_parameters(source), executor="processes")
    texts.append(_error_text(failed.value))
    with pytest.raises(PipelineValidationError) as invalid:
        _pipeline(cache, server, source).run(parameters={"generate": {"llm": {"api_key": [SECRET], "timeout": SECRET}}})
    texts.append(_error_text(invalid.value))
    captured = capfd.readouterr()

    _assert_the_server_saw_and_echoed_the_key(server, rows)
    assert "bogus" in texts[1] and "api_key" in texts[2]
    assert _files_holding(cache, SECRET, (".yaml", ".log", ".jsonl", ".parquet", ".json")) == []
    for text in [*texts, captured.out, captured.err, caplog.text]:
        assert SECRET not in text


def _materialize(pipeline: Pipeline, instance: dg.DagsterInstance, cache: Path) -> dg.ExecuteInProcessResult:
    resources = {
        "distil_dagster": DistilDagsterResource(cache_dir=str(cache), fsync=False, step_retries=0),
        "distil_dagster_io_manager": DistilDagsterIOManager(),
    }
    return dg.materialize(
        [build_pipeline_assets(pipeline)], resources=resources, instance=instance, raise_on_error=False
    )


@pytest.mark.timeout(180)
@pytest.mark.parametrize("source", ["argument", "env"])
def test_the_secret_never_reaches_dagster(
    tmp_path: Path,
    server: FakeOpenAIServer,
    source: str,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    if source == "env":
        monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    else:
        monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    cache, home = tmp_path / "cache", tmp_path / "dagster_home"
    home.mkdir()
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    texts = []

    with dg.DagsterInstance.local_temp(tempdir=str(home)) as instance:
        pipeline = _pipeline(cache, server, source)
        ok = _materialize(pipeline, instance, cache)
        failed = _materialize(_pipeline(cache, server, source, generation_kwargs={"bogus": 1}), instance, cache)
        for result in (ok, failed):
            for event in result.all_events:
                texts.append(repr(event))
                texts.append(repr(event.event_specific_data))
            for record in instance.get_records_for_run(result.run_id).records:
                texts.append(repr(record.event_log_entry))
        materializations = ok.get_asset_materialization_events()
        metadata = [repr(m.materialization.metadata) for m in materializations]
    rows = create_distiset(cache / pipeline.name / pipeline.signature, enable_metadata=True)["default"]["train"]
    captured = capfd.readouterr()

    assert ok.success and not failed.success
    assert metadata and any("generate" in m for m in metadata)
    assert any("bogus" in t for t in texts)  # the failure's error is in the event log
    _assert_the_server_saw_and_echoed_the_key(server, rows.to_list())
    assert _files_holding(cache, SECRET, (".yaml", ".log", ".jsonl", ".parquet")) == []
    assert _files_holding(home, SECRET, (".db",)) == []
    for text in [*texts, *metadata, captured.out, captured.err, caplog.text]:
        assert SECRET not in text


# -- (c) permissions --------------------------------------------------------------------------
def test_the_cache_folder_is_user_only(tmp_path: Path, executor: str) -> None:
    previous = os.umask(0o002)  # a permissive umask: the engine must not depend on the user's
    try:
        cache = tmp_path / "new" / "cache"
        with Pipeline(name="private", cache_dir=cache) as pipeline:
            load = LoadDataFromDicts(name="load", data=[{"a": i} for i in range(4)], batch_size=2)
            middle = KeepColumns(name="middle", columns=["a"], input_batch_size=1)
            load >> middle >> KeepColumns(name="keep", columns=["a"])
        pipeline.run(executor=executor)
    finally:
        os.umask(previous)
    root = cache / "private" / pipeline.signature

    for folder in (tmp_path / "new", cache, cache / "private", root):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder
    inside = list(root.rglob("*"))
    assert {p.name for p in inside} >= {"pipeline.yaml", "pipeline.log", "commits.jsonl", "00001.parquet"}
    assert [p for p in inside if p.suffix == ".seg"], "an intermediate segment"
    loose = {str(p.relative_to(root)): oct(stat.S_IMODE(p.stat().st_mode)) for p in inside if p.stat().st_mode & 0o077}
    assert loose == {}


def test_an_existing_cache_dir_is_left_as_it_is_but_the_folders_inside_are_made_user_only(tmp_path: Path) -> None:
    cache = tmp_path / "shared"
    cache.mkdir(mode=0o755)
    os.chmod(cache, 0o755)
    (cache / "private").mkdir()
    os.chmod(cache / "private", 0o755)
    with Pipeline(name="private", cache_dir=cache) as pipeline:
        LoadDataFromDicts(name="load", data=[{"a": 1}])

    pipeline.run(executor="inline")

    assert stat.S_IMODE(cache.stat().st_mode) == 0o755
    assert stat.S_IMODE((cache / "private").stat().st_mode) == 0o700
    assert stat.S_IMODE((cache / "private" / pipeline.signature).stat().st_mode) == 0o700
