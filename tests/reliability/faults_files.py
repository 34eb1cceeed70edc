"""Damaged cache files: truncated, or filled with garbage (whole, or one bad block), between runs.

After a complete run, or one killed (SIGKILL of the group) while step ``work`` holds a random
batch, one file of a kind is damaged: the commit journal, ``batch_manager.json``, a
``batch_manager_steps/<step>.json``, an intermediate segment under ``steps/``, a leaf Parquet under
``data/``, or ``pipeline.yaml``. The next run (inline or with worker processes, chosen by the
trial) must either give the exact result, or stop with a ``CacheCorruptedError`` naming the file
and the way out (``use_cache=False``) — after which a ``use_cache=False`` run gives the exact
result. Silently wrong rows count as differing rows.
"""

from __future__ import annotations

import random
import signal
from dataclasses import dataclass
from pathlib import Path

from tests.reliability.children.pipelines import Spec
from tests.reliability.fault_trials import References, compare_leaves, results, run_target, signature_folder, tail
from tests.reliability.harness import Outcome, Scenario

__all__ = ["SCENARIOS"]

NAME = "corruption"
ROWS = 120
_WORK_BATCH = 5

#: target -> files of that kind in a signature folder (a snapshot may not exist after a kill)
TARGETS = {
    "commits.jsonl": lambda root: [root / "commits.jsonl"],
    "batch_manager.json": lambda root: [root / "batch_manager.json"],
    "batch_manager_steps": lambda root: (
        sorted((root / "batch_manager_steps").glob("*.json")) or [root / "batch_manager_steps" / "work.json"]
    ),
    "intermediate batch": lambda root: sorted((root / "steps").rglob("*.seg")),
    "leaf Parquet": lambda root: sorted((root / "data").rglob("*.parquet")),
    "pipeline.yaml": lambda root: [root / "pipeline.yaml"],
}


def damage(rng: random.Random, path: Path) -> str:
    """Truncate ``path``, or fill it (or one block of it) with garbage; returns what was done."""
    content = path.read_bytes() if path.exists() else b""
    how = rng.choice(["truncate", "garbage", "bad block"] if content else ["garbage"])
    if how == "truncate":
        cut = rng.randrange(len(content))
        path.write_bytes(content[:cut])
        return f"truncated {path.name} to {cut} of {len(content)} bytes"
    if how == "garbage":
        size = len(content) or rng.randint(1, 512)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(rng.randbytes(size))
        return f"filled {path.name} with {size} random bytes"
    start = rng.randrange(len(content))
    length = min(rng.randint(1, 64), len(content) - start)
    block = bytes(b ^ rng.randint(1, 255) for b in content[start : start + length])  # every byte changes
    path.write_bytes(content[:start] + block + content[start + length :])
    return f"garbled {length} bytes of {path.name} at offset {start}"


@dataclass
class Corruption:
    """One kind of file to damage."""

    target: str
    references: References

    def trial(self, rng: random.Random, workdir: Path) -> Outcome:
        executor = rng.choice(["inline", "processes"])
        killed = rng.random() < 0.5
        spec = Spec(name=NAME, rows=ROWS)
        expected = self.references.get(spec, workdir)
        cache = workdir / "cache"
        outcome = Outcome()
        if killed:
            stop_at = rng.randrange(_WORK_BATCH, ROWS - _WORK_BATCH)
            first = run_target(
                spec.replace(announce=[stop_at], gate=str(workdir / "never-opened")),  # held until killed
                cache,
                executor,
                signum=signal.SIGKILL,
                signal_when=lambda line: f"herald work reached {stop_at}" in line,
            )
            want = -signal.SIGKILL
        else:
            first = run_target(spec, cache, executor)
            want = 0
        outcome.hang = first.hung
        if first.returncode != want:
            if not first.hung:
                outcome.unclear.append(f"the first run exited with {first.returncode}:\n{tail(first.stderr)}")
            return outcome
        root = signature_folder(cache, NAME)
        candidates = TARGETS[self.target](root)
        if not candidates:
            return outcome  # e.g. no intermediate batch committed before the kill: nothing to damage
        path = rng.choice(candidates)
        what = f"{'killed' if killed else 'complete'} run, {executor}: {damage(rng, path)}"
        second = run_target(spec, cache, executor, "--recompute-on-corrupt")
        outcome.hang = second.hung
        if second.hung:
            return outcome
        found = results(second)
        if second.returncode != 0 or not found or found[-1]["status"] != "ok":
            outcome.unclear.append(f"{what}: the next run exited with {second.returncode}:\n{tail(second.stderr)}")
            return outcome
        if found[0]["status"] == "CacheCorruptedError":
            message = found[0]["message"]
            if str(path) not in message or "use_cache=False" not in message:
                outcome.unclear.append(f"{what}: the error does not name the file and the way out: {message}")
        elif found[0]["status"] != "ok":
            outcome.unclear.append(f"{what}: {found[0]['status']}: {found[0].get('message')}")
        before = (outcome.rows_lost, outcome.rows_duplicated, outcome.rows_differing)
        compare_leaves(expected, cache, NAME, outcome)
        if (outcome.rows_lost, outcome.rows_duplicated, outcome.rows_differing) != before:
            outcome.unclear.append(f"{what}: wrong rows after the run ({found[0]['status']})")
        return outcome


_REFERENCES = References()

SCENARIOS = [
    Scenario(f"damaged {target}", Corruption(target, _REFERENCES).trial, family="corruption") for target in TARGETS
]
