"""Two runs of one pipeline at once, in two processes: one waits for the other, no interleaved writes."""

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


@pytest.mark.parametrize("executor", ["inline", "processes"])
def test_two_concurrent_runs_do_not_corrupt_the_cache(tmp_path: Path, executor: str) -> None:
    command = [
        sys.executable,
        str(HERE / "kill_target.py"),
        "--shape",
        "fanin",
        "--cache-dir",
        str(tmp_path),
        "--executor",
        executor,
    ]
    first = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    second = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    outputs = [p.communicate(timeout=180) for p in (first, second)]
    assert [first.returncode, second.returncode] == [0, 0], [err[-2000:] for _, err in outputs]
    (folder,) = (tmp_path / "kill-fanin").iterdir()
    lines = [json.loads(line) for line in (folder / "commits.jsonl").read_text().splitlines()]
    counts = Counter((r["step"], r["seq"]) for r in lines)
    assert max(counts.values()) == 1, "a batch was committed twice"
    log = (folder / "pipeline.log").read_text()
    assert "waiting up to" in log or "already finished" in log
    distiset = create_distiset(folder)
    for name in ("count", "tail"):
        ids = distiset[name]["train"]["id"]
        assert sorted(ids) == list(range(600)) and len(ids) == 600
