"""Kill -9 of the whole process group at a random instant, then resume: every row exactly once.

Four pipeline shapes (``tests/e2e/kill_target.py``: linear; fan-out + fan-in + global step;
routing + convergence; fast: many small batches of cheap steps, so batches go to workers in
groups and leaf batches share files) on three paths: ``pipeline.run()`` inline, with worker processes, and
``dagster asset materialize``. Each trial kills the run uniformly within 5-95 % of the path's
uninterrupted duration (measured once per scenario), resumes on the same path, and compares
every leaf, row by row, with an uninterrupted inline run.
"""

from __future__ import annotations

import random
import signal
from dataclasses import dataclass, field
from pathlib import Path

from distil_dagster.distiset import create_distiset
from tests.reliability.harness import ROOT, Child, Outcome, Scenario, child_env, compare_rows, python, run_child

__all__ = ["SCENARIOS"]

SHAPES = ["linear", "fanin", "routing", "fast"]
PATHS = ["inline", "processes", "dagster"]
KILL_TARGET = ROOT / "tests" / "e2e" / "kill_target.py"
DAGSTER_DEFINITIONS = "tests/reliability/dagster_kill_definitions.py"
RUN_TIMEOUT = 180.0


def leaves(cache: Path, shape: str) -> dict[str, list[dict]]:
    """Every leaf of the shape's (only) signature folder, as rows."""
    folders = list((cache / f"kill-{shape}").iterdir())
    if len(folders) != 1:
        raise AssertionError(f"expected one signature folder for kill-{shape}, found {len(folders)}")
    return {name: dd["train"].to_list() for name, dd in create_distiset(folders[0]).items()}


def dagster_home(workdir: Path) -> Path:
    """A Dagster instance folder with telemetry off."""
    home = workdir / "dagster_home"
    home.mkdir(exist_ok=True)
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\nnux:\n  enabled: false\n")
    return home


@dataclass
class KillScenario:
    """One (shape, path) pair; remembers its reference rows and duration across trials."""

    shape: str
    path: str
    reference: dict[str, list[dict]] | None = None
    durations: list[float] = field(default_factory=list)

    def _run(self, workdir: Path, cache: Path, kill_after: float | None = None) -> Child:
        if self.path == "dagster":
            env = child_env(
                KILL_SHAPE=self.shape, DISTIL_DAGSTER_CACHE_DIR=str(cache), DAGSTER_HOME=str(dagster_home(workdir))
            )
            args = [str(Path(python()).with_name("dagster")), "asset", "materialize"]
            args += ["-f", DAGSTER_DEFINITIONS, "--select", "*"]
        else:
            env = child_env()
            args = [python(), str(KILL_TARGET), "--shape", self.shape, "--cache-dir", str(cache)]
            args += ["--executor", self.path]
        return run_child(args, RUN_TIMEOUT, env=env, signal_after=kill_after, signum=signal.SIGKILL)

    def _prepare(self, workdir: Path) -> Outcome | None:
        if self.reference is None:
            cache = workdir / "reference"
            child = run_child(
                [python(), str(KILL_TARGET), "--shape", self.shape, "--cache-dir", str(cache)], RUN_TIMEOUT
            )
            if child.returncode != 0:
                return Outcome(hang=child.hung, unclear=[f"reference run failed: {child.stderr[-2000:]}"])
            self.reference = leaves(cache, self.shape)
        if not self.durations:
            child = self._run(workdir, workdir / "timing")
            if child.returncode != 0:
                return Outcome(hang=child.hung, unclear=[f"timing run failed: {child.stderr[-2000:]}"])
            self.durations.append(child.seconds)
        return None

    def trial(self, rng: random.Random, workdir: Path) -> Outcome:
        """Kill at a random instant, resume, compare."""
        failed = self._prepare(workdir)
        if failed is not None:
            return failed
        assert self.reference is not None
        cache = workdir / "cache"
        killed = self._run(workdir, cache, kill_after=rng.uniform(0.05, 0.95) * min(self.durations))
        outcome = Outcome(hang=killed.hung)
        if killed.returncode not in (-signal.SIGKILL, 0):
            outcome.unclear.append(f"killed run exited with {killed.returncode}: {killed.stderr[-2000:]}")
        if killed.returncode == 0:
            self.durations.append(killed.seconds)  # it finished before the kill: aim earlier next time
        resumed = self._run(workdir, cache)
        outcome.hang = outcome.hang or resumed.hung
        if resumed.returncode != 0:
            outcome.unclear.append(f"resume exited with {resumed.returncode}: {resumed.stderr[-2000:]}")
            return outcome
        outcome.add(compare_rows(self.reference, leaves(cache, self.shape)))
        return outcome


SCENARIOS = [
    Scenario(f"kill -9 {shape} / {path}", KillScenario(shape, path).trial, family="kill -9")
    for shape in SHAPES
    for path in PATHS
]
