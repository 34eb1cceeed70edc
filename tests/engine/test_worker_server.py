"""The worker server starts before the engine is imported, and not for a run the cache answers."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _run(cache: Path) -> tuple[int, int]:
    """Rows of the Distiset, child processes left after the run."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, str(Path(__file__).with_name("worker_server_target.py")), str(cache)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    rows, _, children = done.stdout.split("ROWS", 1)[1].split()
    return int(rows), int(children)


def test_a_run_with_work_starts_the_worker_server_and_a_finished_one_does_not(tmp_path: Path) -> None:
    rows, children = _run(tmp_path)
    assert rows == 3 and children > 0  # the worker server (and multiprocessing's resource tracker)
    assert _run(tmp_path) == (3, 0)  # answered from the cache: no server, no worker
