"""Kill -9 at random instants, resume, and check every leaf holds each expected row exactly once.

Trials per shape: ``DISTIL_DAGSTER_KILL_TRIALS`` (default 3). Each trial SIGKILLs the child's
whole process group after a random delay within the run's measured duration, then resumes to
completion, and compares every leaf with an uninterrupted reference run, row for row.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from distil_dagster.distiset import create_distiset

HERE = Path(__file__).parent
TRIALS = int(os.environ.get("DISTIL_DAGSTER_KILL_TRIALS", "3"))
SHAPES = ["linear", "fanin", "routing", "fast"]

pytestmark = pytest.mark.slow


def _run(
    shape: str, cache_dir: Path, kill_after: float = 0.0, executor: str = "inline", timeout: float = 120
) -> tuple[int, float]:
    """Run the child; returns its exit code and the seconds its ``pipeline.run()`` took."""
    proc = subprocess.Popen(
        [
            sys.executable,
            str(HERE / "kill_target.py"),
            "--shape",
            shape,
            "--cache-dir",
            str(cache_dir),
            "--kill-after",
            str(kill_after),
            "--executor",
            executor,
        ],
        start_new_session=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    out, err = proc.communicate(timeout=timeout)
    if kill_after == 0.0 and proc.returncode != 0:
        raise AssertionError(f"run failed ({proc.returncode}):\n{err.decode()[-3000:]}")
    seconds = [float(line.split("=")[1]) for line in out.decode().splitlines() if line.startswith("run_seconds=")]
    return proc.returncode, seconds[0] if seconds else 0.0


def _leaves(cache_dir: Path, shape: str) -> dict[str, list[dict]]:
    (folder,) = (cache_dir / f"kill-{shape}").iterdir()
    distiset = create_distiset(folder)
    return {name: dd["train"].to_list() for name, dd in distiset.items()}


@pytest.fixture(scope="module")
def references(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[dict[str, list[dict]], float]]:
    refs = {}
    for shape in SHAPES:
        cache = tmp_path_factory.mktemp(f"ref-{shape}")
        _, seconds = _run(shape, cache)
        refs[shape] = (_leaves(cache, shape), seconds)
    return refs


@pytest.mark.parametrize("executor", ["inline", "processes"])
@pytest.mark.parametrize("shape", SHAPES)
def test_kill_and_resume_gives_every_row_exactly_once(
    shape: str, executor: str, references: dict, tmp_path: Path
) -> None:
    expected, seconds = references[shape]
    rng = random.Random(f"{shape}-{executor}-{TRIALS}")
    killed = 0
    for trial in range(TRIALS):
        cache = tmp_path / f"trial-{trial}"
        code, _ = _run(shape, cache, kill_after=rng.uniform(0.05, 0.95) * seconds, executor=executor)
        assert code in (-9, 0), f"trial {trial}: unexpected exit code {code}"
        killed += code == -9
        _run(shape, cache, executor=executor)
        got = _leaves(cache, shape)
        assert got.keys() == expected.keys()
        for leaf, rows in expected.items():
            ids = [r["id"] for r in got[leaf]]
            assert len(ids) == len(set(ids)), f"trial {trial}: duplicated rows in {leaf}"
            assert got[leaf] == rows, f"trial {trial}: leaf {leaf} differs from the uninterrupted run"
    assert killed >= 1, "no trial was killed mid-run: the kill window missed the run"
