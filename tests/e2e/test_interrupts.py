"""SIGINT mid-run: a clean exit with a consistent cache; the next run resumes without recomputing."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from distil_dagster.distiset import create_distiset

HERE = Path(__file__).parent
pytestmark = pytest.mark.slow


def _run(cache: Path, executor: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(HERE / "interrupt_target.py"), str(cache), executor],
        capture_output=True,
        text=True,
        timeout=120,
        start_new_session=True,
    )


@pytest.mark.parametrize("executor", ["inline", "processes"])
def test_sigint_stops_cleanly_and_the_resume_recomputes_nothing_committed(tmp_path: Path, executor: str) -> None:
    first = _run(tmp_path, executor)
    assert first.returncode == 130, first.stderr[-2000:]
    assert "interrupted" in first.stdout
    assert "SIGINT received: finishing the batches in flight" in first.stderr
    (folder,) = (tmp_path / "interrupt").iterdir()
    committed_before = [json.loads(line) for line in (folder / "commits.jsonl").read_text().splitlines()]
    assert committed_before and not any(r["step"] == "tag" and r["last"] for r in committed_before)

    second = _run(tmp_path, executor)
    assert second.returncode == 0, second.stderr[-2000:]
    assert "rows=200" in second.stdout
    lines = [json.loads(line) for line in (folder / "commits.jsonl").read_text().splitlines()]
    assert lines[: len(committed_before)] == committed_before
    counts = Counter((r["step"], r["seq"]) for r in lines)
    assert max(counts.values()) == 1, "a committed batch was computed twice"
    ids = create_distiset(folder)["default"]["train"]["id"]
    assert ids == list(range(200))
