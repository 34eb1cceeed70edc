"""The reliability suite's frame: scenarios, their trials' outcomes, and the figures table.

A *scenario* is one fault injected into one pipeline on one path (inline, processes, the Dagster
CLI); a *trial* runs it once in a fresh folder and returns an :class:`Outcome`: rows lost, rows
duplicated, rows whose content differs from an uninterrupted run, whether anything hung, and
any error that was not clear (not a ``DistilDagsterError`` naming what failed, a traceback
leaking to the user, an unexpected exit code). Children run in their own session and are
killed as a group when they exceed their bound: a trial never hangs the suite.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "Child",
    "Figures",
    "Outcome",
    "Scenario",
    "compare_rows",
    "format_table",
    "run_child",
    "run_scenario",
]

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Outcome:
    """What one trial found."""

    rows_lost: int = 0
    rows_duplicated: int = 0
    rows_differing: int = 0
    hang: bool = False
    unclear: list[str] = field(default_factory=list)

    def add(self, other: Outcome) -> None:
        """Fold ``other`` into this outcome."""
        self.rows_lost += other.rows_lost
        self.rows_duplicated += other.rows_duplicated
        self.rows_differing += other.rows_differing
        self.hang = self.hang or other.hang
        self.unclear.extend(other.unclear)


@dataclass(frozen=True)
class Scenario:
    """A fault on a path: ``run(rng, workdir)`` performs one trial in the empty folder ``workdir``."""

    name: str
    run: Callable[[random.Random, Path], Outcome]
    family: str = "fault"


@dataclass
class Figures:
    """A scenario's totals over its trials."""

    scenario: str
    family: str
    trials: int = 0
    rows_lost: int = 0
    rows_duplicated: int = 0
    rows_differing: int = 0
    hangs: int = 0
    unclear: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def clean(self) -> bool:
        """No loss, duplicate, difference, hang or unclear error."""
        return not (self.rows_lost or self.rows_duplicated or self.rows_differing or self.hangs or self.unclear)


def run_scenario(scenario: Scenario, trials: int, workdir: Path, seed: int = 0) -> Figures:
    """Run ``trials`` trials of ``scenario``, each in its own subfolder of ``workdir``."""
    figures = Figures(scenario.name, scenario.family)
    rng = random.Random(f"{seed}-{scenario.name}")
    start = time.perf_counter()
    for trial in range(trials):
        folder = workdir / f"trial-{trial}"
        folder.mkdir(parents=True)
        try:
            outcome = scenario.run(rng, folder)
        except Exception as exc:  # the scenario's own assertion or a harness failure: report it
            outcome = Outcome(unclear=[f"trial {trial}: {type(exc).__name__}: {exc}"])
        figures.trials += 1
        figures.rows_lost += outcome.rows_lost
        figures.rows_duplicated += outcome.rows_duplicated
        figures.rows_differing += outcome.rows_differing
        figures.hangs += int(outcome.hang)
        figures.unclear.extend(f"trial {trial}: {message}" for message in outcome.unclear)
    figures.seconds = time.perf_counter() - start
    return figures


def format_table(figures: Sequence[Figures], extra_rows: Iterable[Sequence[Any]] = ()) -> str:
    """The figures as a Markdown table (the README's reliability section uses it as is)."""
    header = ["scenario", "trials", "rows lost", "rows duplicated", "rows differing", "hangs", "unclear errors", "s"]
    rows: list[list[str]] = []
    for f in figures:
        rows.append(
            [
                f.scenario,
                str(f.trials),
                str(f.rows_lost),
                str(f.rows_duplicated),
                str(f.rows_differing),
                str(f.hangs),
                str(len(f.unclear)),
                f"{f.seconds:.0f}",
            ]
        )
    if figures:
        rows.append(
            [
                "**total**",
                str(sum(f.trials for f in figures)),
                str(sum(f.rows_lost for f in figures)),
                str(sum(f.rows_duplicated for f in figures)),
                str(sum(f.rows_differing for f in figures)),
                str(sum(f.hangs for f in figures)),
                str(sum(len(f.unclear) for f in figures)),
                f"{sum(f.seconds for f in figures):.0f}",
            ]
        )
    rows.extend([str(cell) for cell in row] for row in extra_rows)
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row + [""] * (len(header) - len(row))) + " |" for row in rows]
    return "\n".join(lines)


@dataclass
class Child:
    """A finished (or killed) child process."""

    returncode: int | None
    stdout: str
    stderr: str
    hung: bool
    seconds: float


def child_env(**extra: str) -> dict[str, str]:
    """The environment for a child: unbuffered, the project importable, no Dagster telemetry."""
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    env.update(extra)
    return env


def run_child(
    args: Sequence[str],
    timeout: float,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    signal_after: float | None = None,
    signum: int = signal.SIGKILL,
    signal_when: Callable[[str], bool] | None = None,
    after_signal: Callable[[], None] | None = None,
) -> Child:
    """Run ``args`` in a new session, bounded by ``timeout`` (then the group is killed: a hang).

    ``signal_after`` sends ``signum`` to the whole group after that many seconds;
    ``signal_when`` sends it as soon as a line of the child's stderr satisfies it (e.g. a log
    line announcing the phase to interrupt), then calls ``after_signal`` (e.g. opens the gate
    the child waits at, so the signal lands in that phase). Outputs are read to the end either way.
    """
    start = time.perf_counter()
    proc = subprocess.Popen(
        list(args),
        cwd=cwd or ROOT,
        env=env or child_env(),
        start_new_session=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    err_lines: list[str] = []
    sent = False

    def send() -> None:
        nonlocal sent
        if not sent:
            sent = True
            _killpg(proc.pid, signum)

    timer = threading.Timer(signal_after, send) if signal_after is not None else None
    if timer is not None:
        timer.daemon = True
        timer.start()
    out_chunks: list[str] = []
    reader = threading.Thread(target=lambda: out_chunks.append(proc.stdout.read() if proc.stdout else ""))
    reader.daemon = True
    reader.start()

    def read_err() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            err_lines.append(line)
            if signal_when is not None and not sent and signal_when(line):
                send()
                if after_signal is not None:
                    after_signal()

    err_reader = threading.Thread(target=read_err)
    err_reader.daemon = True
    err_reader.start()
    hung = False
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        hung = True
        _killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    if timer is not None:
        timer.cancel()
    # The group's other members (workers, forkserver) may outlive the leader: reap them.
    _killpg(proc.pid, signal.SIGKILL)
    reader.join(10)
    err_reader.join(10)
    return Child(proc.returncode, "".join(out_chunks), "".join(err_lines), hung, time.perf_counter() - start)


def _killpg(pgid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)


def compare_rows(expected: dict[str, list[dict]], got: dict[str, list[dict]], key: str = "id") -> Outcome:
    """Leaf by leaf, rows lost / duplicated (by ``key`` multiset) and rows whose content differs."""
    outcome = Outcome()
    for leaf, rows in expected.items():
        have = got.get(leaf, [])
        want_keys = Counter(_key(r, key) for r in rows)
        have_keys = Counter(_key(r, key) for r in have)
        outcome.rows_lost += sum((want_keys - have_keys).values())
        outcome.rows_duplicated += sum((have_keys - want_keys).values())
        if not (want_keys - have_keys) and not (have_keys - want_keys):
            # Same rows: now content and order (delivery order is deterministic).
            outcome.rows_differing += sum(1 for a, b in zip(rows, have) if _canonical(a) != _canonical(b))
    for leaf in set(got) - set(expected):
        outcome.unclear.append(f"unexpected leaf {leaf!r}")
    return outcome


def _key(row: dict, key: str) -> Any:
    value = row.get(key)
    return repr(value) if isinstance(value, (list, dict)) else value


def _canonical(row: dict) -> str:
    return repr(sorted((k, repr(v)) for k, v in row.items()))


def python() -> str:
    """The interpreter running the suite (children use the same environment)."""
    return sys.executable
