"""`dagster dev` end to end: launch a materialization with run config over GraphQL, read its
metadata back over GraphQL, and render the asset page in headless Chromium.

The server is a separate process we do not control, so two waits poll it, each bounded: HTTP
readiness (and the code location loaded), and the run reaching a final status. Between polls
the test waits on the server process itself (``proc.wait(timeout=...)``), so a crashed server
fails the test at once instead of after the deadline.
"""

from __future__ import annotations

import html
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from distil_dagster.examples.pipelines import build_instructions_pipeline

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

REPO = Path(__file__).resolve().parents[2]
DAGSTER = str(Path(sys.executable).with_name("dagster"))
CHROMIUM = Path("/usr/bin/chromium")
LOCATION = "distil_dagster_examples"  # workspace.yaml
ASSET_PATH = ["instructions_demo", "grouped_responses"]
RUN_CONFIG = {"ops": {"instructions_demo": {"config": {"concise": {"template": "TL;DR: {instruction}"}}}}}
INSTANCE_YAML = """\
telemetry:
  enabled: false
nux:
  enabled: false
run_coordinator:  # launch at once instead of queueing for the daemon
  module: dagster.core.run_coordinator
  class: DefaultRunCoordinator
"""

LAUNCH = """
mutation Launch($params: ExecutionParams!) {
  launchRun(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on PythonError { message }
    ... on RunConfigValidationInvalid { errors { message } }
    ... on InvalidSubsetError { message }
  }
}"""
RUN_STATUS = "query Status($runId: ID!) { runOrError(runId: $runId) { __typename ... on Run { status } } }"
LOCATIONS = "{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus } } } }"
MATERIALIZATION = """
query Latest($key: AssetKeyInput!) {
  assetOrError(assetKey: $key) {
    ... on Asset {
      assetMaterializations(limit: 1) {
        runId
        metadataEntries {
          label
          ... on IntMetadataEntry { intValue }
          ... on TextMetadataEntry { text }
          ... on MarkdownMetadataEntry { mdStr }
          ... on TableSchemaMetadataEntry { schema { columns { name } } }
        }
      }
    }
  }
}"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _default_signals() -> None:
    # A background `dagster dev` started from a non-interactive shell inherits ignored SIGINT and
    # then ignores SIGTERM too; reset both so it can be stopped by signal.
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


class DagsterDev:
    """A `dagster dev` process group on 127.0.0.1 and a GraphQL client for it."""

    def __init__(self, proc: subprocess.Popen[bytes], port: int, log: Path) -> None:
        self.proc, self.port, self.log = proc, port, log
        self.url = f"http://127.0.0.1:{port}"

    def graphql(self, query: str, **variables: Any) -> dict[str, Any]:
        body = json.dumps({"query": query, "variables": variables}).encode()
        request = urllib.request.Request(f"{self.url}/graphql", data=body, headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as response:
            payload: dict[str, Any] = json.loads(response.read())
        assert "errors" not in payload, payload
        return payload["data"]

    def wait_until(self, what: str, ready: Callable[[], bool], timeout: float) -> None:
        """Poll ``ready`` (bounded); between polls wait on the server process, failing if it exits."""
        deadline = time.monotonic() + timeout
        while not ready():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}:\n{self.log_tail()}")
            try:
                code = self.proc.wait(timeout=0.5)
            except subprocess.TimeoutExpired:
                continue
            raise AssertionError(f"dagster dev exited with {code} while waiting for {what}:\n{self.log_tail()}")

    def log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]

    def location_loaded(self) -> bool:
        try:
            entries = self.graphql(LOCATIONS)["workspaceOrError"]["locationEntries"]
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return False
        return any(e["name"] == LOCATION and e["loadStatus"] == "LOADED" for e in entries)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGINT)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)


@pytest.fixture
def dagster_dev(tmp_path: Path) -> Iterator[DagsterDev]:
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text(INSTANCE_YAML)
    env = {**os.environ, "DAGSTER_HOME": str(home), "DISTIL_DAGSTER_CACHE_DIR": str(tmp_path / "cache")}
    port = _free_port()
    log = tmp_path / "dagster_dev.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [DAGSTER, "dev", "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_default_signals,
        )
    server = DagsterDev(proc, port, log)
    try:
        server.wait_until("the server and code location", server.location_loaded, timeout=90)
        yield server
    finally:
        server.stop()


def _render(url: str, tmp_path: Path) -> str:
    assert CHROMIUM.exists(), (
        f"{CHROMIUM} is missing; install it with: apt-get install -y --no-install-recommends chromium"
    )
    screenshot = tmp_path / "asset_page.png"
    done = subprocess.run(
        [
            str(CHROMIUM),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-sync",
            "--disable-component-update",
            f"--user-data-dir={tmp_path / 'chromium-profile'}",
            "--window-size=1400,1000",
            "--virtual-time-budget=15000",
            f"--screenshot={screenshot}",
            "--dump-dom",
            url,
        ],
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert screenshot.stat().st_size > 10_000, "the screenshot is empty"
    return done.stdout


def _visible_text(dom: str) -> str:
    """The page's text: scripts and styles dropped, tags removed, whitespace collapsed."""
    text = re.sub(r"<(script|style)\b.*?</\1>", " ", dom, flags=re.S)
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", text)).split())


def test_launch_from_graphql_and_see_the_asset_in_the_browser(dagster_dev: DagsterDev, tmp_path: Path) -> None:
    params = {
        "selector": {
            "repositoryLocationName": LOCATION,
            "repositoryName": "__repository__",
            "jobName": "__ASSET_JOB",
            "assetSelection": [{"path": ASSET_PATH}],
        },
        "runConfigData": RUN_CONFIG,
        "mode": "default",
    }
    launched = dagster_dev.graphql(LAUNCH, params=params)["launchRun"]
    assert launched["__typename"] == "LaunchRunSuccess", launched
    run_id = launched["run"]["runId"]

    status: dict[str, str] = {}

    def finished() -> bool:
        status.update(dagster_dev.graphql(RUN_STATUS, runId=run_id)["runOrError"])
        return status.get("status") in ("SUCCESS", "FAILURE", "CANCELED")

    dagster_dev.wait_until(f"run {run_id}", finished, timeout=120)
    assert status["status"] == "SUCCESS", dagster_dev.log_tail()

    asset = dagster_dev.graphql(MATERIALIZATION, key={"path": ASSET_PATH})["assetOrError"]
    (latest,) = asset["assetMaterializations"]
    entries = {e["label"]: e for e in latest["metadataEntries"]}
    assert latest["runId"] == run_id
    assert entries["dagster/row_count"]["intValue"] == 20
    assert entries["rows"]["intValue"] == 20
    assert entries["signature"]["text"] != build_instructions_pipeline().signature  # the run config's template
    assert [c["name"] for c in entries["dagster/column_schema"]["schema"]["columns"]][-2:] == [
        "generations",
        "model_names",
    ]
    assert "| id | instruction |" in entries["preview"]["mdStr"]

    page = _visible_text(_render(f"{dagster_dev.url}/assets/{'/'.join(ASSET_PATH)}", tmp_path))
    assert "instructions_demo / grouped_responses" in page
    assert "Row count 20" in page  # the asset detail rendered, not only its key
    assert "generations list<element: string> model_names list<element: string>" in page  # columns table
    assert entries["signature"]["text"] in page  # the metadata table
