"""An OpenAI-compatible server that misbehaves: 429 then success, 500, a malformed body, a stall.

The fake server (``tests/models/openai_server.py``) runs in the suite's process on a free port;
the pipeline (``load -> gen``, a ``TextGeneration`` with ``OpenAILLM``: 1 s timeout, 2 retries)
runs in a child, inline, with worker processes, or through ``dagster asset materialize``. Random
rows carry the server's markers. The run must end (the client timeout bounds a stall), every
input row must come out exactly once, rows answered after 429s carry their generation, and rows
that could not be generated carry ``None`` plus a recorded error naming the cause — not a failed
run. A second run (which recomputes the batches with failed rows) must keep all that.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from distil_dagster.distiset import create_distiset
from tests.models.openai_server import FakeOpenAIServer
from tests.reliability.children.pipelines import Spec
from tests.reliability.fault_trials import leaf_rows, results, run_dagster, run_target, signature_folder, tail
from tests.reliability.harness import Outcome, Scenario, compare_rows

__all__ = ["SCENARIOS"]

NAME = "llm-faults"
ROWS = 40
#: marker -> (fails for good, a text its recorded error must contain)
MARKERS = {
    "#flaky=429x2": (False, ""),
    "#status=500": (True, "500"),
    "#malformed": (True, ""),
    "#stall": (True, "timed out"),
}


def _markers(rng: random.Random) -> dict[int, str]:
    ids = rng.sample(range(ROWS), 12)
    counts = {"#flaky=429x2": rng.randint(2, 5), "#status=500": rng.randint(1, 3), "#malformed": rng.randint(1, 3)}
    counts["#stall"] = rng.randint(1, 2)
    chosen: dict[int, str] = {}
    for marker, count in counts.items():
        for _ in range(count):
            chosen[ids.pop()] = marker
    return chosen


def _expected(markers: dict[int, str]) -> dict[str, list[dict[str, Any]]]:
    rows = []
    for i in range(ROWS):
        text = f"row {i} {markers.get(i, '')}".strip()
        failed = MARKERS.get(markers.get(i, ""), (False, ""))[0]
        row: dict[str, Any] = {"id": i, "instruction": text, "generation": None if failed else f"echo: {text}"}
        row["model_name"] = "fake"
        if failed:
            row["errors"] = ["error_gen"]
        rows.append(row)
    return {"default": rows}


def _error_texts(cache: Path, markers: dict[int, str]) -> list[str]:
    """Findings about the recorded errors: each failed row's error must say what happened."""
    distiset = create_distiset(signature_folder(cache, NAME), enable_metadata=True)
    problems = []
    for row in distiset["default"]["train"].to_list():
        marker = markers.get(row["id"], "")
        failed, needle = MARKERS.get(marker, (False, ""))
        error = (row.get("distilabel_metadata") or {}).get("error_gen")
        if failed and (not error or needle.lower() not in error.lower()):
            problems.append(f"row {row['id']} ({marker}): recorded error {error!r} does not say {needle!r}")
    return problems


@dataclass
class LLMFaults:
    """The misbehaving server on one path."""

    path: str

    def trial(self, rng: random.Random, workdir: Path) -> Outcome:
        markers = _markers(rng)
        cache = workdir / "cache"
        outcome = Outcome()
        with FakeOpenAIServer() as server:
            spec = Spec(name=NAME, rows=ROWS, fault="llm", markers=markers, base_url=server.base_url)
            if self.path == "dagster":
                child = run_dagster(spec, cache, workdir)
                ok = child.returncode == 0
            else:
                child = run_target(spec, cache, self.path, "--runs", "2")
                ok = child.returncode == 0 and [r["status"] for r in results(child)] == ["ok", "ok"]
        outcome.hang = child.hung
        if not ok:
            if not child.hung:
                outcome.unclear.append(f"{self.path}: the run failed ({child.returncode}):\n{tail(child.stderr)}")
            return outcome
        outcome.add(compare_rows(_expected(markers), leaf_rows(cache, NAME)))
        outcome.unclear += _error_texts(cache, markers)
        return outcome


SCENARIOS = [
    Scenario(f"OpenAI server 429/500/malformed/stall / {path}", LLMFaults(path).trial, family="llm")
    for path in ("inline", "processes", "dagster")
]
