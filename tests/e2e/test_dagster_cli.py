"""`dagster asset materialize` in subprocesses: a one-leaf subset, a SIGKILL mid-run, a SIGINT mid-run.

The subset run is the path hit by Dagster bug #32862 (subset of a graph-backed asset whose ops
use a non-default IO manager), which ``materialize()`` in-process does not exercise. The kill
tests use ``dagster_slow_definitions.py`` (a few seconds of CPU work) and wait for the run's own
progress lines on its output before killing it: no sleeps.
"""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import dagster as dg
import pyarrow.parquet as pq
import pytest

from distil_dagster.cache.batch_store import leaf_parts, leaf_runs, read_leaf_run
from distil_dagster.dagster.leaf_data import read_committed
from tests.e2e import dagster_slow_definitions as slow

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

REPO = Path(__file__).resolve().parents[2]
DAGSTER = str(Path(sys.executable).with_name("dagster"))
SLOW_DEFINITIONS = "tests/e2e/dagster_slow_definitions.py"
HASH_B = dg.AssetKey(["slow_hash", "hash_b"])


@pytest.fixture
def home(tmp_path: Path) -> Path:
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\nnux:\n  enabled: false\n")
    return home


@pytest.fixture
def env(home: Path, tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "DAGSTER_HOME": str(home), "DISTIL_DAGSTER_CACHE_DIR": str(tmp_path / "cache")}


def _materialize(env: dict[str, str], definitions: str, select: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [DAGSTER, "asset", "materialize", "-f", definitions, "--select", select],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, f"dagster asset materialize failed:\n{done.stderr[-4000:]}"
    return done


def _signature_folder(cache: Path, pipeline: str) -> Path:
    (folder,) = (cache / pipeline).iterdir()
    return folder


def _latest_metadata(home: Path, key: dg.AssetKey) -> dict[str, object]:
    with dg.DagsterInstance.from_config(str(home)) as instance:
        event = instance.get_latest_materialization_event(key)
        assert event is not None and event.asset_materialization is not None
        return {k: getattr(v, "value", v) for k, v in event.asset_materialization.metadata.items()}


def test_materialize_one_leaf_with_the_cli(env: dict[str, str], home: Path, tmp_path: Path) -> None:
    _materialize(env, "definitions.py", "instructions_demo/ranked_instructions")

    folder = _signature_folder(tmp_path / "cache", "instructions-demo")
    assert sorted(p.name for p in (folder / "data").iterdir()) == ["ranked_instructions"]
    assert sorted(p.name for p in (folder / "steps").iterdir()) == ["instruction_stats", "load_instructions"]
    table = pq.read_table(folder / "data" / "ranked_instructions")
    assert table.num_rows == 20
    assert sorted(table["length_rank"].to_pylist()) == list(range(1, 21))
    metadata = _latest_metadata(home, dg.AssetKey(["instructions_demo", "ranked_instructions"]))
    assert metadata["dagster/row_count"] == 20
    assert metadata["signature"] == folder.name


def test_multiprocess_executor_computes_every_batch_once(env: dict[str, str], tmp_path: Path) -> None:
    _materialize(env, "tests/e2e/dagster_multiprocess_definitions.py", "*")

    folder = _signature_folder(tmp_path / "cache", "instructions-demo")
    lines = [json.loads(line) for line in (folder / "commits.jsonl").read_text().splitlines()]
    assert not [line for line in lines if "retract" in line], "no batch of this pipeline is ever recomputed"
    identities = [(line["step"], line["seq"]) for line in lines]
    assert len(identities) == len(set(identities)), "a batch was committed twice"
    for leaf in ("grouped_responses", "ranked_instructions"):
        assert pq.read_table(folder / "data" / leaf).num_rows == 20


class _Run:
    """A CLI materialization in its own process group, its output read line by line."""

    def __init__(self, env: dict[str, str], select: str) -> None:
        self.proc = subprocess.Popen(
            [DAGSTER, "asset", "materialize", "-f", SLOW_DEFINITIONS, "--select", select],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.output: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def wait_for_progress(self, step: str, batches: int, timeout: float = 90) -> int:
        """Block until a progress line shows ``step`` with at least ``batches`` computed batches."""
        pattern = re.compile(rf"Progress: .*\b{step}: (\d+) batch")
        deadline = time.monotonic() + timeout
        while True:
            line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            if line is None:
                raise AssertionError("the run ended before it could be interrupted:\n" + "".join(self.output[-40:]))
            self.output.append(line)
            match = pattern.search(line)
            if match and int(match.group(1)) >= batches:
                return int(match.group(1))

    def signal(self, signum: int) -> int:
        """SIGKILL the whole process group, or send another signal to the CLI process; its exit code."""
        if signum == signal.SIGKILL:
            os.killpg(self.proc.pid, signum)
        else:
            self.proc.send_signal(signum)
        return self.proc.wait(timeout=60)

    def rest(self) -> str:
        """The output up to the end (after the process exited)."""
        while (line := self.lines.get(timeout=30)) is not None:
            self.output.append(line)
        return "".join(self.output)


def _check_exactly_once(folder: Path) -> None:
    records = sorted(read_committed(folder)["hash_b"].values(), key=lambda r: r.seq_no)
    tables = [t for run in leaf_runs(leaf_parts(folder, records)) for t in read_leaf_run(run)]
    rows = [row for table in tables for row in table.to_pylist()]
    assert sorted(row["id"] for row in rows) == list(range(slow.ROWS))
    assert all(row["hb"] == slow.digest(row["id"] + 1) for row in rows)


def test_sigkill_mid_run_then_rematerialize_resumes(env: dict[str, str], home: Path, tmp_path: Path) -> None:
    run = _Run(env, "slow_hash/hash_b")
    run.wait_for_progress("hash_b", 3)
    assert run.signal(signal.SIGKILL) == -signal.SIGKILL

    folder = _signature_folder(tmp_path / "cache", "slow-hash")
    committed_before = len(read_committed(folder).get("hash_b", {}))
    assert 3 <= committed_before < slow.ROWS // 8
    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert instance.fetch_observations(HASH_B, limit=100).records, "no progress observations during the run"

    _materialize(env, SLOW_DEFINITIONS, "slow_hash/hash_b")

    metadata = _latest_metadata(home, HASH_B)
    assert metadata["reused_batches"] >= committed_before
    assert metadata["reused_rows"] == 8 * metadata["reused_batches"]
    assert metadata["rows"] == metadata["dagster/row_count"] == slow.ROWS
    _check_exactly_once(folder)


def test_sigint_mid_run_stops_the_engine_gracefully(env: dict[str, str], home: Path, tmp_path: Path) -> None:
    run = _Run(env, "slow_hash/hash_b")
    run.wait_for_progress("hash_b", 2)
    assert run.signal(signal.SIGINT) != 0  # Dagster reports the interrupted run as failed

    folder = _signature_folder(tmp_path / "cache", "slow-hash")
    assert json.loads((folder / "batch_manager.json").read_text())["status"] == "interrupted"
    assert "the engine finishes the batches in flight and stops" in run.rest()

    _materialize(env, SLOW_DEFINITIONS, "slow_hash/hash_b")
    assert _latest_metadata(home, HASH_B)["reused_batches"] >= 2
    _check_exactly_once(folder)
