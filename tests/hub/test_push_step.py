"""``PushToHub`` in a pipeline, against a real HTTP server speaking the Hub API (``FakeHub``).

Each case runs ``push_step_target.py`` in a subprocess pointed at the server (``HF_ENDPOINT`` is
read when ``huggingface_hub`` is imported), with ``HF_TOKEN`` unset and an empty ``HF_HOME`` unless
the case provides the token that way. The token is a known random value: it must reach the server
as the credential, and nothing else: not the cache folder (``pipeline.yaml``, ``pipeline.log``,
batches), not the pushed files, not the output, not the errors.
"""

from __future__ import annotations

import io
import json
import os
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
import yaml

from distil_dagster.pipeline import Pipeline
from distil_dagster.steps import LoadDataFromDicts
from distil_dagster.steps.hub import PushToHub
from tests.hub.fake_hub import FakeHub
from tests.hub.push_step_target import KEPT, ROWS

TOKEN = "hf_push_step_" + secrets.token_hex(12)
REPO = "someone/pushed-rows"
EXPECTED = [{column: row[column] for column in KEPT} for row in ROWS]
MASK = "**********"


def run_target(
    fake_hub: FakeHub, tmp_path: Path, executor: str, source: str, token: str | None = None, hf_token: str | None = None
) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    """Run the target; returns the finished process and the JSON line it printed last."""
    env = {name: value for name, value in os.environ.items() if name not in ("HF_HUB_OFFLINE", "HF_TOKEN")}
    env |= fake_hub.client_env()
    env |= {"HF_HOME": str(tmp_path / "hf-home"), "HF_DATASETS_CACHE": str(tmp_path / "datasets-cache")}
    if hf_token is not None:
        env["HF_TOKEN"] = hf_token
    command = [sys.executable, "-m", "tests.hub.push_step_target", str(tmp_path / "cache"), REPO, executor, source]
    done = subprocess.run(
        [*command, *([token] if token is not None else [])], env=env, capture_output=True, text=True, timeout=180
    )
    lines = done.stdout.strip().splitlines()
    assert lines, done.stderr[-3000:]
    return done, json.loads(lines[-1])


def files_holding(root: Path, secret: str) -> list[str]:
    """Files under ``root`` holding ``secret`` in their bytes or (Parquet) in their decoded rows."""
    found = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        decoded = str(pq.read_table(path).to_pylist()) if path.suffix == ".parquet" else ""
        if secret.encode() in path.read_bytes() or secret in decoded:
            found.append(str(path))
    return found


def commits(fake_hub: FakeHub) -> int:
    return sum(1 for request in fake_hub.requests if request.startswith(f"POST /api/datasets/{REPO}/commit/"))


def test_the_token_is_an_optional_runtime_parameter_kept_out_of_the_yaml_and_the_signature(tmp_path: Path) -> None:
    def build(**push: Any) -> Pipeline:
        with Pipeline(name="push", cache_dir=tmp_path / "cache") as pipeline:
            LoadDataFromDicts(name="load", data=ROWS) >> PushToHub(name="push", **push)
        return pipeline

    with_token = build(repo_id=REPO, token=TOKEN)
    step = with_token.dag.step("push")
    optional = {i["name"]: i["optional"] for i in step.get_runtime_parameters_info() if "optional" in i}

    assert with_token.signature == build(repo_id=REPO).signature
    assert with_token.signature != build(repo_id="someone/else", token=TOKEN).signature
    assert TOKEN not in yaml.safe_dump(with_token.dump()) and TOKEN not in repr(step)
    assert step.token is not None and step.token.get_secret_value() == TOKEN
    assert {k: optional[k] for k in ("repo_id", "split", "private", "token")} == {
        "repo_id": False,
        "split": True,
        "private": True,
        "token": True,
    }
    assert step.get_outputs() == {} and (step.split, step.private) == ("train", False)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("source", "executor"),
    [("argument", "processes"), ("runtime_parameter", "inline"), ("env", "processes"), ("login", "inline")],
)
def test_the_rows_are_pushed_once_and_passed_on_and_the_token_goes_nowhere_else(
    fake_hub: FakeHub, tmp_path: Path, source: str, executor: str
) -> None:
    given = f"{TOKEN}\n"  # as pasted or read from a file: the newline must not reach the header
    if source == "login":
        (tmp_path / "hf-home").mkdir()
        (tmp_path / "hf-home" / "token").write_text(given, encoding="utf-8")  # what `hf auth login` saves
    target_source = source if source in ("argument", "runtime_parameter") else "ambient"
    token = given if target_source != "ambient" else None

    done, out = run_target(fake_hub, tmp_path, executor, target_source, token, given if source == "env" else None)

    assert done.returncode == 0, out
    assert out["rows"] == out["again"] == EXPECTED  # the leaf's Distiset, then again from the cache
    files = fake_hub.files(REPO)
    pushed = {path: pq.read_table(io.BytesIO(data)).to_pylist() for path, data in files.items() if ".parquet" in path}
    assert pushed == {"data/train-00000-of-00001.parquet": EXPECTED}
    assert fake_hub.repos() == {REPO: True}  # private=True, given as a runtime parameter
    assert commits(fake_hub) == 1, "the second run is served from the cache: no second push"
    assert f"Bearer {TOKEN}" in fake_hub.authorizations and fake_hub.unhandled == []

    folder = Path(out["folder"])
    assert {"pipeline.yaml", "pipeline.log"} <= {p.name for p in folder.iterdir()}
    assert "repo_id: someone/pushed-rows" in (folder / "pipeline.yaml").read_text(encoding="utf-8")
    assert files_holding(tmp_path / "cache", TOKEN) == []
    assert [path for path, data in files.items() if TOKEN.encode() in data] == []
    assert TOKEN not in done.stdout and TOKEN not in done.stderr


@pytest.mark.slow
@pytest.mark.parametrize("executor", ["inline", "processes"])
def test_without_a_token_the_run_fails_before_any_data_flows_naming_the_step(
    fake_hub: FakeHub, tmp_path: Path, executor: str
) -> None:
    done, out = run_target(fake_hub, tmp_path, executor, "ambient")

    assert done.returncode == 1
    assert out["error"] == "StepLoadError"
    assert "Step 'push'" in out["message"] and "no data was processed" in out["message"]
    assert "no Hugging Face token to push to 'someone/pushed-rows'" in out["message"]
    assert "set HF_TOKEN, or run `hf auth login`" in out["message"]
    assert fake_hub.requests == []


@pytest.mark.slow
@pytest.mark.parametrize("executor", ["inline", "processes"])
def test_a_failed_push_is_reported_with_the_token_masked(fake_hub: FakeHub, tmp_path: Path, executor: str) -> None:
    # A control character inside the token: the HTTP client refuses the header, quoting it in its error.
    bad = f"{TOKEN}\r{secrets.token_hex(4)}"

    done, out = run_target(fake_hub, tmp_path, executor, "argument", bad)

    assert done.returncode == 1
    assert out["error"] == "GlobalStepError"
    assert "Step 'push': pushing 7 rows to the Hub dataset 'someone/pushed-rows'" in out["message"]
    assert f"Illegal header value b'Bearer {MASK}'" in out["message"]
    assert TOKEN not in out["traceback"] and TOKEN not in done.stdout and TOKEN not in done.stderr
    assert files_holding(tmp_path / "cache", TOKEN) == []
    assert commits(fake_hub) == 0
