"""SIGTERM to a run's whole process group (``kill -TERM -<pgid>``, a batch scheduler stopping a job).

The workers and the forkserver are in the group too. They must not die of it: a dead forkserver
makes every worker look dead (exit code 255), which failed the run with ``WorkerDiedError``
instead of stopping it gracefully. The run stops with ``RunInterrupted`` and the next resumes.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from distil_dagster.distiset import create_distiset
from tests.engine.faulty_steps import open_gate
from tests.reliability.children.pipelines import Spec

ROOT = Path(__file__).resolve().parents[2]
TARGET = ROOT / "tests" / "reliability" / "children" / "fault_target.py"
pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]


def _run(spec: Spec, cache: Path, signal_on: str | None = None, gate: Path | None = None) -> tuple[int, str]:
    """Run ``spec``; SIGTERM its group on the first stderr line holding ``signal_on``, then open ``gate``."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
    args = [sys.executable, str(TARGET), "--spec", spec.to_json(), "--cache-dir", str(cache), "--executor", "processes"]
    proc = subprocess.Popen(
        args, env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, start_new_session=True
    )
    assert proc.stderr is not None
    lines = []
    for line in proc.stderr:
        lines.append(line)
        if signal_on is not None and signal_on in line:
            os.killpg(proc.pid, signal.SIGTERM)
            signal_on = None
            if gate is not None:
                open_gate(gate)
    return proc.wait(60), "".join(lines)


@pytest.mark.parametrize("phase", ["load", "run"])
def test_sigterm_to_the_group_stops_gracefully_and_the_run_resumes(tmp_path: Path, phase: str) -> None:
    spec = Spec(name="sigterm", rows=60)
    gate = tmp_path / "gate"  # the phase holds until the signal is sent
    held = spec.replace(hold_load=True) if phase == "load" else spec.replace(announce=[30])
    when = "herald work loading" if phase == "load" else "herald work reached 30"

    code, stderr = _run(held.replace(gate=str(gate)), tmp_path, signal_on=when, gate=gate)

    assert code == 130, stderr[-3000:]
    assert "error: RunInterrupted" in stderr and "WorkerDiedError" not in stderr
    code, stderr = _run(spec, tmp_path)
    assert code == 0, stderr[-3000:]
    (folder,) = (tmp_path / "sigterm").iterdir()
    assert sorted(create_distiset(folder)["leaf"]["train"]["id"]) == list(range(60))


def test_a_second_sigterm_exits_at_once_and_leaves_no_worker_behind(tmp_path: Path) -> None:
    # Workers ignore SIGTERM (the first one is the run's to handle): the second must not leave them orphaned.
    spec = Spec(name="sigterm", rows=60)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
    held = spec.replace(announce=[30], gate=str(tmp_path / "never-opened"))  # the batch is in flight at both signals
    args = [sys.executable, str(TARGET), "--spec", held.to_json()]
    args += ["--cache-dir", str(tmp_path), "--executor", "processes"]
    proc = subprocess.Popen(
        args, env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, start_new_session=True
    )
    assert proc.stderr is not None
    for line in proc.stderr:
        if "herald work reached 30" in line:
            os.killpg(proc.pid, signal.SIGTERM)
        if "SIGTERM received" in line:
            os.killpg(proc.pid, signal.SIGTERM)
    assert proc.wait(10) == 128 + signal.SIGTERM
    if not _group_gone(proc.pid, timeout=5.0):
        os.killpg(proc.pid, signal.SIGKILL)
        raise AssertionError("processes of the run outlived it (the worker sleeping in its batch)")

    code, stderr = _run(spec, tmp_path)
    assert code == 0, stderr[-3000:]


def _group_members(pgid: int) -> list[int]:
    """Live (not zombie) processes of process group ``pgid``, from ``/proc``."""
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                state, _, group = handle.read().rsplit(")", 1)[1].split()[:3]
        except (OSError, ValueError):
            continue  # gone meanwhile
        if int(group) == pgid and state != "Z":
            members.append(int(entry))
    return members


def _group_gone(pgid: int, timeout: float) -> bool:
    """Wait (on pidfds, no polling) until every process of the group has exited, at most ``timeout`` s."""
    poller, fds = select.poll(), []
    for pid in _group_members(pgid):
        try:
            fds.append(os.pidfd_open(pid))
        except ProcessLookupError:
            continue
        poller.register(fds[-1], select.POLLIN)
    deadline = time.monotonic() + timeout
    try:
        pending = set(fds)
        while pending and (left := deadline - time.monotonic()) > 0:
            for fd, _ in poller.poll(left * 1000):
                poller.unregister(fd)
                pending.discard(fd)
    finally:
        for fd in fds:
            os.close(fd)
    return not _group_members(pgid)
