"""Two runs of one pipeline at once, in two processes; and a run that gives up waiting for the lock.

Both children run the same pipeline on the same cache folder. Its step ``work`` holds a random
batch at a gate (``Gate``) that the suite opens only once the other run has logged that it waits
for the folder's lock: the runs truly overlap, whichever starts first. Both must finish (the
second from the cache), every leaf must equal the reference run and no batch may be committed
twice. Paths: two ``pipeline.run()`` inline, two with worker processes, and ``dagster asset
materialize`` against ``pipeline.run()``. The lock-timeout case keeps the gate closed while a
second run (inline, processes or the Dagster CLI) with a 1 s lock timeout must fail with a
``CacheLockedError`` naming the folder and the setting to raise; then the first run completes.
"""

from __future__ import annotations

import json
import random
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tests.engine.faulty_steps import open_gate
from tests.reliability.children.pipelines import Spec
from tests.reliability.fault_trials import (
    References,
    check_dagster_failure,
    compare_leaves,
    results,
    run_dagster,
    run_target,
    signature_folder,
    tail,
)
from tests.reliability.harness import Child, Outcome, Scenario

__all__ = ["SCENARIOS"]

NAME = "concurrent"
ROWS = 120
_WAITING = "waiting up to"


def _in_thread(run: Callable[[], Child]) -> tuple[threading.Thread, list[Child]]:
    done: list[Child] = []
    thread = threading.Thread(target=lambda: done.append(run()), daemon=True)
    thread.start()
    return thread, done


def _double_commits(cache: Path) -> list[str]:
    """Batches committed twice without a retraction in between (a batch computed by both runs)."""
    lines = [json.loads(line) for line in (signature_folder(cache, NAME) / "commits.jsonl").read_text().splitlines()]
    counts = Counter((line["step"], line["seq"]) for line in lines if "retract" not in line)
    return [f"batch {key} committed {n} times" for key, n in counts.items() if n > 1]


@dataclass
class TwoRuns:
    """Two runs at once: ``first`` and ``second`` are each ``inline``, ``processes`` or ``dagster``."""

    first: str
    second: str
    references: References

    def _start(
        self, path: str, spec: Spec, cache: Path, workdir: Path, when: Callable[[str], bool]
    ) -> Callable[[], Child]:
        if path == "dagster":
            return lambda: run_dagster(spec, cache, workdir, signal_when=when)
        return lambda: run_target(spec, cache, path, signal_when=when)

    def trial(self, rng: random.Random, workdir: Path) -> Outcome:
        gate = workdir / "gate"
        spec = Spec(name=NAME, rows=ROWS, fault="gate", fault_id=rng.randrange(ROWS), marker=str(gate))
        expected = self.references.get(spec, workdir)
        cache = workdir / "cache"
        waited = threading.Event()

        def gate_opener(line: str) -> bool:  # never signals: opens the gate once a run waits for the lock
            if _WAITING in line:
                waited.set()
                open_gate(gate)
            return False

        runs = [_in_thread(self._start(p, spec, cache, workdir, gate_opener)) for p in (self.first, self.second)]
        children = []
        for thread, done in runs:
            thread.join()
            children.extend(done)
        outcome = Outcome(hang=any(c.hung for c in children))
        for path, child in zip((self.first, self.second), children):
            found = results(child)
            ok = child.returncode == 0 and (path == "dagster" or (bool(found) and found[-1]["status"] == "ok"))
            if not ok and not child.hung:
                outcome.unclear.append(f"the {path} run exited with {child.returncode}:\n{tail(child.stderr)}")
        if not waited.is_set():
            outcome.unclear.append("neither run logged that it waited for the lock")
        if outcome.unclear or outcome.hang:
            return outcome
        outcome.unclear += _double_commits(cache)
        compare_leaves(expected, cache, NAME, outcome)
        return outcome


@dataclass
class LockTimeout:
    """A second run gives up on the lock after 1 s, clearly; the first then completes."""

    references: References

    def trial(self, rng: random.Random, workdir: Path) -> Outcome:
        gate = workdir / "gate"
        spec = Spec(name=NAME, rows=ROWS, fault="gate", fault_id=rng.randrange(ROWS), marker=str(gate))
        expected = self.references.get(spec, workdir)
        cache = workdir / "cache"
        holding = threading.Event()

        def at_gate(line: str) -> bool:
            if "gate work waiting" in line:
                holding.set()
            return False

        holder_path, waiter_path = rng.choice(["inline", "processes"]), rng.choice(["inline", "processes", "dagster"])
        thread, done = _in_thread(lambda: run_target(spec, cache, holder_path, signal_when=at_gate))
        outcome = Outcome()
        if holding.wait(120):
            folder = str(signature_folder(cache, NAME))
            if waiter_path == "dagster":
                waiter = run_dagster(spec, cache, workdir, {"lock_timeout": 1.0})
                outcome.unclear += check_dagster_failure(
                    waiter, "lock timeout", ["CacheLockedError"], [folder, "lock_timeout"]
                )
            else:
                waiter = run_target(spec, cache, waiter_path, "--lock-timeout", "1")
                found = results(waiter)
                if waiter.returncode != 3 or not found or found[-1]["status"] != "CacheLockedError":
                    outcome.unclear.append(
                        f"lock timeout / {waiter_path}: exit code {waiter.returncode}:\n{tail(waiter.stderr)}"
                    )
                elif folder not in found[-1]["message"] or "lock_timeout" not in found[-1]["message"]:
                    outcome.unclear.append(
                        f"lock timeout: the error does not name the folder and the setting: {found[-1]}"
                    )
            outcome.hang = waiter.hung
        else:
            outcome.unclear.append("the first run never reached its gate")
        open_gate(gate)
        thread.join()
        holder = done[0]
        outcome.hang = outcome.hang or holder.hung
        if holder.returncode != 0:
            if not holder.hung:
                outcome.unclear.append(f"the lock holder exited with {holder.returncode}:\n{tail(holder.stderr)}")
            return outcome
        compare_leaves(expected, cache, NAME, outcome)
        return outcome


_REFERENCES = References()

SCENARIOS = [
    Scenario("two runs at once / inline", TwoRuns("inline", "inline", _REFERENCES).trial, family="concurrency"),
    Scenario(
        "two runs at once / processes", TwoRuns("processes", "processes", _REFERENCES).trial, family="concurrency"
    ),
    Scenario(
        "two runs at once / dagster + pipeline.run",
        TwoRuns("dagster", "processes", _REFERENCES).trial,
        family="concurrency",
    ),
    Scenario("lock timeout", LockTimeout(_REFERENCES).trial, family="concurrency"),
]
