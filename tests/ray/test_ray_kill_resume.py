"""Kill -9 of a Ray driver at random instants, resume on Ray, and check every leaf holds each row once.

The driver (``tests/e2e/kill_target.py --executor ray`` in its own session) connects to the tests'
Ray instance through ``RAY_ADDRESS`` (the cluster outlives the driver, as on a real cluster), or,
in every third trial, starts its own instance (its GCS, raylet and workers then live in its
session). Each trial SIGKILLs the driver's process group at a random instant of an uninterrupted
(connected) run — for a driver starting its own Ray that instant often falls in its start-up —
kills whatever is left of its session and checks nothing survives, resumes with a connected
driver and compares every leaf with an uninterrupted inline run, row for row.
Trials: ``DISTIL_DAGSTER_RAY_KILL_TRIALS`` (default 3), cycling over the three shapes.
"""

from __future__ import annotations

import contextlib
import os
import random
import select
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from distil_dagster.distiset import create_distiset
from tests.e2e.kill_target import build

TARGET = Path(__file__).parents[1] / "e2e" / "kill_target.py"
TRIALS = int(os.environ.get("DISTIL_DAGSTER_RAY_KILL_TRIALS", "3"))
SHAPES = ["linear", "fanin", "routing"]

pytestmark = pytest.mark.slow


def _session(sid: int) -> list[int]:
    """Live (non-zombie) processes of session ``sid``."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        state, _ppid, _pgid, session = stat.rsplit(")", 1)[1].split()[:4]
        if int(session) == sid and state != "Z":
            found.append(int(entry))
    return found


def _kill_session(sid: int, timeout: float = 20.0) -> None:
    """SIGKILL every process left in session ``sid`` (Ray's workers run in process groups of their
    own, so the driver's group kill can miss them) and wait for each to exit (a pidfd, no polling)."""
    for pid in _session(sid):
        try:
            handle = os.pidfd_open(pid)
        except ProcessLookupError:
            continue
        try:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            select.select([handle], [], [], timeout)
        finally:
            os.close(handle)
    assert not _session(sid), f"processes of the killed driver's session survived: {_session(sid)}"


def _run_driver(shape: str, cache: Path, mode: str, address: str, kill_after: float = 0.0) -> tuple[int, float]:
    """Run the driver; returns its exit code and the seconds its ``pipeline.run()`` took."""
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    if mode == "connected":
        env["RAY_ADDRESS"] = address
    command = [sys.executable, str(TARGET), "--shape", shape, "--cache-dir", str(cache), "--executor", "ray"]
    proc = subprocess.Popen(
        [*command, "--kill-after", str(kill_after)],
        start_new_session=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    try:
        out, err = proc.communicate(timeout=120)
    finally:
        _kill_session(proc.pid)
    if kill_after == 0.0 and proc.returncode != 0:
        raise AssertionError(f"run failed ({proc.returncode}):\n{err.decode()[-3000:]}")
    seconds = [float(line.split("=")[1]) for line in out.decode().splitlines() if line.startswith("run_seconds=")]
    return proc.returncode, seconds[0] if seconds else 0.0


def _leaves(cache: Path, shape: str) -> dict[str, list[dict[str, Any]]]:
    (folder,) = (cache / f"kill-{shape}").iterdir()
    return {name: dd["train"].to_list() for name, dd in create_distiset(folder).items()}


@pytest.mark.timeout(300)
def test_a_killed_ray_driver_resumes_with_every_row_exactly_once(tmp_path: Path, ray_cluster: str) -> None:
    expected = {}
    for shape in SHAPES:
        build(shape, tmp_path / f"ref-{shape}").run(executor="inline")
        expected[shape] = _leaves(tmp_path / f"ref-{shape}", shape)
    _, seconds = _run_driver("routing", tmp_path / "timing", "connected", ray_cluster)
    rng = random.Random(f"ray-kill-{TRIALS}")
    killed = 0
    for trial in range(TRIALS):
        shape, mode = SHAPES[trial % len(SHAPES)], "own-ray" if trial % 3 == 0 else "connected"
        cache = tmp_path / f"trial-{trial}"
        kill_after = rng.uniform(0.05, 0.95) * seconds
        code, _ = _run_driver(shape, cache, mode, ray_cluster, kill_after=kill_after)
        assert code in (-9, 0), f"trial {trial} ({shape}, {mode}): unexpected exit code {code}"
        killed += code == -9
        _run_driver(shape, cache, "connected", ray_cluster)  # the resume (a driver: the steps live in its __main__)
        got = _leaves(cache, shape)
        assert got.keys() == expected[shape].keys()
        for leaf, rows in expected[shape].items():
            ids = [r["id"] for r in got[leaf]]
            assert len(ids) == len(set(ids)), f"trial {trial} ({shape}, {mode}): duplicated rows in {leaf}"
            assert got[leaf] == rows, f"trial {trial} ({shape}, {mode}): leaf {leaf} differs from the reference"
    assert killed >= 1, "no trial was killed mid-run: the kill window missed the run"


@pytest.mark.timeout(120)
def test_sigterm_stops_a_driver_that_started_its_own_ray_gracefully(tmp_path: Path) -> None:
    """``ray.init`` installs its own SIGTERM handler (``sys.exit``); the backend keeps the run's."""
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    command = [sys.executable, str(Path(__file__).parent / "signal_target.py"), str(tmp_path), str(int(signal.SIGTERM))]
    proc = subprocess.Popen(command, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    try:
        out, err = proc.communicate(timeout=100)
    finally:
        _kill_session(proc.pid)
    assert proc.returncode == 130, err.decode()[-3000:]
    assert b"interrupted:" in out, out.decode()
    assert "SIGTERM received: finishing the batches in flight" in err.decode()
    assert "Stop honoured" in err.decode()
