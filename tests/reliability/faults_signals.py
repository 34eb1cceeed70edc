"""SIGTERM to the run's whole process group: during ``load()``, mid-run, at the final write; and twice.

The pipeline's steps tell on stderr where they are (``Herald``: ``loading``, ``reached <id>``),
and the suite signals the child's process group on that line: while ``work`` loads (slowly),
when ``work`` starts a random batch (some batches are committed by then), or when ``leaf`` —
the last step — starts its last batch. ``pipeline.run()`` must stop gracefully with
``RunInterrupted`` (exit code 130; 0 if it had just finished), ``dagster asset materialize``
must end the run as failed, with the engine stopped and the committed batches kept. A second
SIGTERM while the first waits for an in-flight batch must exit at once (128 + 15). Either way
the next run resumes and every leaf equals the reference, row by row.
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tests.engine.faulty_steps import open_gate
from tests.reliability.children.pipelines import Spec
from tests.reliability.fault_trials import References, compare_leaves, results, run_dagster, run_target, tail
from tests.reliability.harness import Child, Outcome, Scenario

__all__ = ["SCENARIOS"]

NAME = "sigterm"
ROWS = 120
_WORK_BATCH = 5
_LEAF_BATCH = 7
#: how the CLI reports a terminated run: the engine stopped by the resource or an op, or (the engine
#: had already finished) Dagster's own interruption of the op it was in
_DAGSTER_STOPPED = (
    "stopping the engine",
    "the engine finishes the batches in flight",
    "DagsterExecutionInterruptedError",
)


def _kill_group_later(line: str, delay: float) -> None:
    """A second SIGTERM to the group named on ``line`` (``pgid=<n>``), ``delay`` seconds from now."""
    found = re.search(r"pgid=(\d+)", line)
    if found is None:
        return
    pgid = int(found.group(1))

    def send() -> None:
        with contextlib.suppress(ProcessLookupError):  # already gone: the first signal was enough
            os.killpg(pgid, signal.SIGTERM)

    timer = threading.Timer(delay, send)
    timer.daemon = True
    timer.start()


@dataclass
class Sigterm:
    """SIGTERM at one moment (``load``, ``run``, ``final``, or ``double``) on one path."""

    phase: str
    path: str
    references: References

    def _signalled(self, rng: random.Random, spec: Spec, gate: Path) -> tuple[Spec, Callable[[str], bool]]:
        """The spec that tells where it is, and the predicate on its stderr that fires the signal.

        ``work`` holds its ``load()`` or the announced batch until ``gate`` exists, which the trial
        creates once the signal is sent; the double SIGTERM never opens it.
        """
        if self.phase == "load":
            return spec.replace(hold_load=True, gate=str(gate)), lambda line: "herald work loading" in line
        if self.phase == "final":
            last = ROWS - 1
            return spec.replace(leaf_announce=[last]), lambda line: f"herald leaf reached {last}" in line
        at = rng.randrange(2 * _WORK_BATCH, ROWS - _WORK_BATCH)
        if self.phase == "run":
            return spec.replace(announce=[at], gate=str(gate)), lambda line: f"herald work reached {at}" in line
        delay = rng.uniform(0.05, 0.5)  # double: the first stop waits for the held batch; the second cuts it

        def double(line: str) -> bool:
            if f"herald work reached {at}" not in line:
                return False
            _kill_group_later(line, delay)
            return True

        return spec.replace(announce=[at], gate=str(gate.with_name("never-opened"))), double

    def trial(self, rng: random.Random, workdir: Path) -> Outcome:
        spec = Spec(name=NAME, rows=ROWS)
        expected = self.references.get(spec, workdir)
        cache = workdir / "cache"
        gate = workdir / "gate"
        signalled, when = self._signalled(rng, spec, gate)
        if self.path == "dagster":
            first = run_dagster(signalled, cache, workdir, signal_when=when, after_signal=lambda: open_gate(gate))
            outcome = Outcome(hang=first.hung, unclear=self._dagster_findings(first))
        else:
            first = run_target(signalled, cache, self.path, signal_when=when, after_signal=lambda: open_gate(gate))
            outcome = Outcome(hang=first.hung, unclear=self._findings(first))
        resumed = run_target(spec, cache, "processes" if self.path == "dagster" else self.path)
        outcome.hang = outcome.hang or resumed.hung
        if resumed.returncode != 0:
            if not resumed.hung:
                outcome.unclear.append(f"the resume exited with {resumed.returncode}:\n{tail(resumed.stderr)}")
            return outcome
        compare_leaves(expected, cache, NAME, outcome)
        return outcome

    def _findings(self, child: Child) -> list[str]:
        if child.hung:
            return []
        what = f"SIGTERM {self.phase} / {self.path}"
        if self.phase == "double":
            if child.returncode != 128 + signal.SIGTERM or "Second SIGTERM: exiting now" not in child.stderr:
                return [f"{what}: exit code {child.returncode}, expected {128 + signal.SIGTERM}:\n{tail(child.stderr)}"]
            return []
        found = results(child)
        if child.returncode == 0 and found and found[-1]["status"] == "ok":
            return []  # the signal came as the run ended: nothing left to stop
        if child.returncode != 130 or not found or found[-1]["status"] != "RunInterrupted":
            return [f"{what}: exit code {child.returncode}, not a RunInterrupted:\n{tail(child.stderr)}"]
        if "SIGTERM received" not in child.stderr:
            return [f"{what}: the log does not say the signal was received:\n{tail(child.stderr)}"]
        return []

    def _dagster_findings(self, child: Child) -> list[str]:
        if child.hung:
            return []
        what = f"SIGTERM {self.phase} / dagster"
        if child.returncode == 0:
            return []  # finished before the signal was handled
        if self.phase == "double":
            return []  # the second signal ends the CLI at once: nothing to report but its exit code
        if "RUN_FAILURE" not in child.stderr or not any(s in child.stderr for s in _DAGSTER_STOPPED):
            return [
                f"{what}: exit code {child.returncode} without the run's stop being reported:\n{tail(child.stderr)}"
            ]
        return []


_REFERENCES = References()

SCENARIOS = [
    Scenario(f"SIGTERM {label} / {path}", Sigterm(phase, path, _REFERENCES).trial, family="sigterm")
    for phase, label in [
        ("load", "during load()"),
        ("run", "mid-run"),
        ("final", "at the final write"),
        ("double", "twice"),
    ]
    for path in ("inline", "processes", "dagster")
]
