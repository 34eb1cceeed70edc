"""``distil-dagster pipeline run --repo-id``: run, then push the Distiset to the Hub (a ``FakeHub``)."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.hub.fake_hub import FakeHub

TOKEN = "hf_cli_push_secret_token"
REPO = "someone/from-cli"

_SCRIPT = """
from distil_dagster.pipeline import Pipeline
from distil_dagster.steps import LoadDataFromDicts

with Pipeline(name="cli-push") as pipeline:
    LoadDataFromDicts(name="rows", data=[{"id": i, "text": f"t{i}"} for i in range(4)])
"""


@pytest.mark.slow
def test_pipeline_run_pushes_the_distiset_with_the_given_visibility_message_and_token(
    fake_hub: FakeHub, tmp_path: Path
) -> None:
    script = tmp_path / "push_me.py"
    script.write_text(_SCRIPT)
    env = {name: value for name, value in os.environ.items() if name not in ("HF_HUB_OFFLINE", "HF_TOKEN")}
    env |= fake_hub.client_env()
    env |= {"HF_HOME": str(tmp_path / "hf-home"), "HF_DATASETS_CACHE": str(tmp_path / "datasets-cache")}
    command = [sys.executable, "-m", "distil_dagster.cli", "pipeline", "run", "--script", str(script)]
    command += ["--cache-dir", str(tmp_path / "cache"), "--executor", "inline", "--repo-id", REPO]
    command += ["--private", "--token", TOKEN, "--commit-message", "Four rows from the command line"]

    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=180)

    assert done.returncode == 0, done.stderr[-3000:]
    assert f"Pushed to the Hub dataset {REPO}." in done.stdout
    assert fake_hub.repos() == {REPO: True}
    assert "Four rows from the command line" in fake_hub.commits(REPO)
    files = fake_hub.files(REPO)
    (data,) = [content for path, content in files.items() if path.startswith("data/") and path.endswith(".parquet")]
    assert pq.read_table(io.BytesIO(data)).to_pylist() == [{"id": i, "text": f"t{i}"} for i in range(4)]
    assert "pipeline.yaml" in files and "README.md" in files
    assert f"Bearer {TOKEN}" in fake_hub.authorizations
    assert TOKEN not in done.stdout + done.stderr
