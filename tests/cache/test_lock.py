"""The run lock: a second run of the same pipeline waits for the first, or fails clearly.

Another run is played by a child process holding the signature folder's lock.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from distil_dagster.engine.config import EngineConfig
from distil_dagster.errors import CacheLockedError
from distil_dagster.pipeline import Pipeline
from distil_dagster.steps import LoadDataFromDicts
from tests.cache.steps import Label

_HOLD = "import sys; from filelock import FileLock; lock = FileLock(sys.argv[1]); lock.acquire(); print('held', flush=True); sys.stdin.read()"


def build(cache_dir: Path) -> Pipeline:
    with Pipeline(name="locked", cache_dir=cache_dir, seed=0) as pipeline:
        LoadDataFromDicts(name="gen", data=[{"id": i} for i in range(3)]) >> Label(name="label")
    return pipeline


@pytest.fixture
def holder(tmp_path: Path, cache) -> Iterator[subprocess.Popen[str]]:
    """A child process holding the lock of ``build(tmp_path)``'s folder until its stdin closes."""
    root = cache(build(tmp_path)).root
    root.mkdir(parents=True)
    child = subprocess.Popen(
        [sys.executable, "-c", _HOLD, str(root / ".lock")], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert child.stdout is not None and child.stdout.readline().strip() == "held"
    yield child
    if child.poll() is None:
        child.stdin.close()  # type: ignore[union-attr]  # stdin=PIPE
        child.wait(timeout=10)


def test_second_run_fails_clearly_when_the_lock_is_not_released(tmp_path: Path, cache, holder) -> None:
    pipeline = build(tmp_path)

    with pytest.raises(CacheLockedError, match=rf"The cache folder {cache(pipeline).root} is locked by another run"):
        pipeline.run(config=EngineConfig(lock_timeout=0.3))

    assert not (cache(pipeline).root / "commits.jsonl").exists()


def test_second_run_waits_for_the_lock_then_runs(tmp_path: Path, cache, rows, holder) -> None:
    pipeline = build(tmp_path)
    release = threading.Timer(0.3, holder.stdin.close)  # type: ignore[union-attr]  # stdin=PIPE
    release.start()

    result = rows(pipeline.run(config=EngineConfig(lock_timeout=30)))

    release.join()
    assert result == [{"id": i, "label": f"L{i}"} for i in range(3)]
    assert "Another run" in cache(pipeline).log_text
