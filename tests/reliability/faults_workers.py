"""Worker faults: a worker killed mid-batch, a worker exiting in ``load()``, a step raising on some
rows, a step hanging past ``EngineConfig.step_timeout`` — inline, with worker processes, and
through ``dagster asset materialize``.

Each trial builds ``load -> work -> leaf`` plus ``load -> side -> total`` (``children/pipelines.py``)
over a random number of rows, with the fault on a random row of ``work``. The faulty run must
fail clearly (the error class, naming step, replica and batch), or — a step raising — finish
with that batch's rows imputed and marked; then, the fault healed, the next run completes and
every leaf equals the reference run, row by row. Inline, a worker's death is the run's own
(SIGKILL or ``os._exit`` of the process): no message is possible, the resume must still be exact.
"""

from __future__ import annotations

import random
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.reliability.children.pipelines import Spec
from tests.reliability.fault_trials import (
    References,
    check_dagster_failure,
    compare_leaves,
    leaf_rows,
    results,
    run_dagster,
    run_target,
    tail,
)
from tests.reliability.harness import Child, Outcome, Scenario, compare_rows

__all__ = ["SCENARIOS"]

NAME = "workers"
ROWS = 120
PATHS = ["inline", "processes", "dagster"]
STEP_TIMEOUT = 1.5
_WORK_BATCH = 5  # input_batch_size of step ``work``

#: fault -> (expected error class with worker processes, what the message names besides the step)
_ERRORS = {
    "kill": ("WorkerDiedError", ["replica 0", "batch {seq}"]),
    "load-exit": ("StepLoadError", ["replica 0", "while loading"]),
    "hang": ("StepTimeoutError", ["replica 0", "batch {seq}"]),
}


def _check_result(result: dict[str, Any], what: str, kind: str, names: list[str]) -> list[str]:
    if result.get("status") != kind:
        return [f"{what}: {result.get('status')} instead of {kind}: {result.get('message', '')}"]
    missing = [n for n in names if n not in result["message"]]
    return [f"{what}: the message does not name {missing}: {result['message']}"] if missing else []


def _resumed(child: Child, what: str, outcome: Outcome) -> bool:
    """Whether the healing run(s) of ``child`` ended well (else the finding is in ``outcome``)."""
    outcome.hang = outcome.hang or child.hung
    if child.returncode != 0 or not results(child) or results(child)[-1]["status"] != "ok":
        if not child.hung:
            outcome.unclear.append(f"{what} exited with {child.returncode}:\n{tail(child.stderr)}")
        return False
    return True


@dataclass
class WorkerFault:
    """One fault on one path; remembers reference leaves per spec across trials."""

    fault: str
    path: str
    references: References

    def _spec(self, rng: random.Random, workdir: Path) -> Spec:
        return Spec(
            name=NAME,
            rows=ROWS,
            fault=self.fault,
            fault_id=rng.randrange(ROWS),
            marker=str(workdir / "healed"),
            stall_mode=rng.choice(["sleep", "spin"]),
        )

    def trial(self, rng: random.Random, workdir: Path) -> Outcome:
        spec = self._spec(rng, workdir)
        expected = self.references.get(spec, workdir)
        if self.fault == "raise":
            return self._raise_trial(rng, spec, expected, workdir)
        cache = workdir / "cache"
        outcome = Outcome()
        timeout = ["--step-timeout", str(STEP_TIMEOUT)] if self.fault == "hang" else []
        kind, names = _ERRORS[self.fault]
        names = ["'work'", *(n.format(seq=spec.fault_id // _WORK_BATCH) for n in names)]
        if self.path == "dagster":
            engine = {"step_timeout": STEP_TIMEOUT} if self.fault == "hang" else {}
            failed = run_dagster(spec, cache, workdir, engine)
            outcome.hang = failed.hung
            outcome.unclear += check_dagster_failure(failed, f"dagster {self.fault}", [kind], names)
            Path(spec.marker).touch()
            # The resume runs `pipeline.run()` on the folder Dagster left (kill.py re-materializes with the CLI).
            resumed = run_target(spec, cache, "processes")
        elif self.path == "inline" and self.fault in ("kill", "load-exit"):
            # The worker is the run's own process: it dies (no message possible), then a new one resumes.
            died = run_target(spec, cache, "inline")
            outcome.hang = died.hung
            want = -signal.SIGKILL if self.fault == "kill" else 3
            if not died.hung and (died.returncode != want or results(died)):
                outcome.unclear.append(f"inline {self.fault}: exit code {died.returncode}, expected {want}")
            Path(spec.marker).touch()
            resumed = run_target(spec, cache, "inline")
        else:
            resumed = run_target(spec, cache, self.path, "--runs", "2", "--heal-before", "2", *timeout)
            first = results(resumed)[:1]
            if not resumed.hung:
                if not first:
                    outcome.unclear.append(f"{self.fault}: no result from the first run:\n{tail(resumed.stderr)}")
                else:
                    outcome.unclear += _check_result(first[0], f"{self.path} {self.fault}", kind, names)
        if _resumed(resumed, f"{self.path} {self.fault}: the healed run", outcome):
            compare_leaves(expected, cache, NAME, outcome)
        return outcome

    def _raise_trial(self, rng: random.Random, spec: Spec, expected: dict[str, list[dict]], workdir: Path) -> Outcome:
        """Failing rows: imputed and marked (not fatal), kept through unhealed reruns, exact once healed."""
        cache = workdir / "cache"
        outcome = Outcome()
        start = spec.fault_id // _WORK_BATCH * _WORK_BATCH
        failed_ids = set(range(start, min(start + _WORK_BATCH, spec.rows)))
        marked = {
            leaf: [
                {**row, "value": None, "errors": ["error_work"]} if leaf == "leaf" and row["id"] in failed_ids else row
                for row in rows
            ]
            for leaf, rows in expected.items()
        }
        if self.path == "dagster":
            first = run_dagster(spec, cache, workdir)
            if first.returncode != 0 and not first.hung:
                outcome.unclear.append(f"dagster raise: the run failed ({first.returncode}):\n{tail(first.stderr)}")
        else:
            runs = str(1 + rng.randint(0, 1))  # and maybe one more run, still unhealed: rows stay marked
            first = run_target(spec, cache, self.path, "--runs", runs)
            _resumed(first, f"{self.path} raise: the faulty run", outcome)
        outcome.hang = first.hung
        if first.returncode == 0:
            outcome.add(compare_rows(marked, leaf_rows(cache, NAME)))
        Path(spec.marker).touch()
        healed = run_target(spec, cache, "processes" if self.path == "dagster" else self.path)
        if _resumed(healed, f"{self.path} raise: the healed run", outcome):
            compare_leaves(expected, cache, NAME, outcome)
        return outcome


_LABELS = {"kill": "worker killed mid-batch", "load-exit": "worker exits in load()", "raise": "step raises on rows"}
_LABELS["hang"] = "step hangs past step_timeout"

_REFERENCES = References()  # one reference run per fault kind, shared by its paths and trials

SCENARIOS = [
    Scenario(f"{_LABELS[fault]} / {path}", WorkerFault(fault, path, _REFERENCES).trial, family="worker")
    for fault in ("kill", "load-exit", "raise", "hang")
    for path in PATHS
]
