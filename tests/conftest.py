"""Shared fixtures of the behaviour suite.

Every test of the package-mirror folders gets a time limit (a hang fails one test, not the run)
and a default cache folder inside its own temporary directory, so a pipeline built without
``cache_dir`` (e.g. by ``Pipeline.from_yaml``) never writes to the user's home.

The ``executor`` fixture runs a behaviour test over every executor (inline and processes): the
same test must pass on both. The ``cache`` fixture opens a pipeline's signature folder for
inspection (the commit journal, batch files and the log); ``rows`` returns a config's rows and
``lines`` the JSON lines a step appended to a file.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from distil_dagster.distiset import Distiset
from distil_dagster.pipeline import Pipeline

TIME_LIMIT_SECONDS = 60
_OWN_FOLDERS = ("steps", "pipeline", "engine", "cache", "models")
_TESTS_ROOT = Path(__file__).parent


def _is_own(path: Path) -> bool:
    """Whether a test file belongs to this suite (the package mirror and test_distiset.py)."""
    relative = path.relative_to(_TESTS_ROOT) if path.is_relative_to(_TESTS_ROOT) else None
    if relative is None:
        return False
    return relative.parts[0] in _OWN_FOLDERS or relative.name == "test_distiset.py"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if _is_own(Path(item.path)) and item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(TIME_LIMIT_SECONDS))


@pytest.fixture(autouse=True)
def _isolated_default_cache(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    if not _is_own(Path(request.node.path)):
        return
    monkeypatch.setenv("DISTIL_DAGSTER_CACHE_DIR", str(tmp_path_factory.mktemp("default-cache")))
    monkeypatch.delenv("DISTILABEL_CACHE_DIR", raising=False)


EXECUTORS = ["inline", "processes"]


@pytest.fixture(params=EXECUTORS)
def executor(request: pytest.FixtureRequest) -> str:
    """The ``executor`` given to ``Pipeline.run``; tests using it run once per executor."""
    return str(request.param)


class CacheFolder:
    """The signature folder of a pipeline: ``<cache_dir>/<name>/<signature>/``."""

    def __init__(self, pipeline: Pipeline) -> None:
        self.root = Path(pipeline.cache_dir) / pipeline.name / pipeline.signature

    @property
    def journal_path(self) -> Path:
        return self.root / "commits.jsonl"

    @property
    def log_text(self) -> str:
        return (self.root / "pipeline.log").read_text(encoding="utf-8")

    def journal(self) -> list[dict[str, Any]]:
        """The committed batches, one dict per line, in commit order."""
        lines = self.journal_path.read_text(encoding="utf-8").splitlines()
        return [json.loads(line) for line in lines if line]

    def records(self, step: str) -> list[dict[str, Any]]:
        """The committed batches of ``step``, in seq order."""
        return sorted((r for r in self.journal() if r["step"] == step), key=lambda r: r["seq"])

    def batch_sizes(self, step: str) -> list[int]:
        return [r["rows"] for r in self.records(step)]

    def keep_journal_lines(self, count: int) -> list[dict[str, Any]]:
        """Simulate a crash: keep the first ``count`` journal lines; return the dropped records."""
        lines = self.journal_path.read_text(encoding="utf-8").splitlines(keepends=True)
        self.journal_path.write_text("".join(lines[:count]), encoding="utf-8")
        return [json.loads(line) for line in lines[count:]]

    def files(self) -> list[str]:
        """Every file of the folder, relative to it, sorted."""
        return sorted(p.relative_to(self.root).as_posix() for p in self.root.rglob("*") if p.is_file())


@pytest.fixture
def cache() -> Callable[[Pipeline], CacheFolder]:
    """``cache(pipeline)`` -> the pipeline's :class:`CacheFolder` (for its current signature)."""
    return CacheFolder


@pytest.fixture
def rows() -> Callable[..., list[dict[str, Any]]]:
    """``rows(distiset, config="default")`` -> the rows of that config's ``train`` split."""

    def read(distiset: Distiset, config: str = "default") -> list[dict[str, Any]]:
        return distiset[config]["train"].to_list()

    return read


@pytest.fixture
def lines() -> Callable[[Path], list[Any]]:
    """``lines(path)`` -> the JSON values written one per line to ``path`` ([] if missing)."""

    def read(path: Path) -> list[Any]:
        if not Path(path).exists():
            return []
        return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines() if line]

    return read
