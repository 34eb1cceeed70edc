"""Resume from every prefix of the commit journal: the result is always the uninterrupted one.

A kill -9 leaves the journal cut after some line (in dependency order) and files it does not
count; this sweeps every such cut for the three pipeline shapes of the kill tests.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from distil_dagster.distiset import create_distiset
from distil_dagster.engine.config import EngineConfig
from tests.e2e.kill_target import build

CONFIG = EngineConfig(fsync=False, step_retries=0)


def _leaves(folder: Path) -> dict[str, list[dict]]:
    return {name: dd["train"].to_list() for name, dd in create_distiset(folder).items()}


def _sweep(shape: str, executor: str, tmp_path: Path, every: int) -> int:
    reference = tmp_path / "reference"
    build(shape, reference, rows=24).run(executor="inline", config=CONFIG)
    (folder,) = (reference / f"kill-{shape}").iterdir()
    expected = _leaves(folder)
    lines = (folder / "commits.jsonl").read_text().splitlines(keepends=True)
    for cut in range(0, len(lines), every):
        resumed = tmp_path / f"cut-{cut}"
        shutil.copytree(reference, resumed)
        (copy,) = (resumed / f"kill-{shape}").iterdir()
        (copy / "commits.jsonl").write_text("".join(lines[:cut]))
        build(shape, resumed, rows=24).run(executor=executor, config=CONFIG)
        assert _leaves(copy) == expected, f"{shape}: resuming after journal line {cut} changed the result"
        shutil.rmtree(resumed)
    return len(lines)


@pytest.mark.timeout(300)
@pytest.mark.parametrize("shape", ["linear", "fanin", "routing"])
def test_every_journal_prefix_resumes_to_the_same_result_inline(shape: str, tmp_path: Path) -> None:
    assert _sweep(shape, "inline", tmp_path, every=1) >= 10


@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.parametrize("shape", ["fanin", "routing"])
def test_journal_prefixes_resume_to_the_same_result_with_processes(shape: str, tmp_path: Path) -> None:
    assert _sweep(shape, "processes", tmp_path, every=4) >= 10
