"""Kill -9 trials: rows lost, duplicated, hangs after resuming a run killed at a random instant.

    .venv/bin/python benchmarks/kill_trials.py [--trials 20] [--resume-timeout 120] [--seed 0]

The child is ``tests/e2e/kill_target.py`` (run by path, its CLI unchanged; the module is also
imported by path for its shapes' row count): a 600-row ``LoadDataFromDicts`` into one of four
shapes — ``linear`` (a chain), ``fanin`` (fan-out, a global step, a tail), ``routing``
(``sample_n_steps`` + convergence), ``fast`` (24,000 rows in 50-row batches of cheap steps:
batches go to workers in groups, leaf batches share files) — on either executor. Trials cycle
over the 8 (shape, executor) combinations. Each trial:

1. starts the child in its own session with ``--kill-after`` uniform in 5-95 % of the measured
   uninterrupted ``run()`` time (the shortest seen so far for that pair, so that load on the
   machine does not push kills past the end): the child's timer thread SIGKILLs its whole
   process group;
2. resumes in a fresh process (no kill) bounded by ``--resume-timeout`` (over it = a hang: the
   session is killed and the trial counted);
3. reads every leaf with ``create_distiset`` and compares it with an uninterrupted reference run
   of the same shape: rows lost (ids missing), rows duplicated (ids beyond their count), leaves
   that differ otherwise (content or order), errors (a resume that failed, a killed run that
   ended with another code than -9/0; each is printed with its message).

Exits non-zero on any loss, duplicate, difference, hang or error.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import random
import shutil
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from proctree import ChildRun, child_env, run_child

HERE = Path(__file__).resolve().parent
KILL_TARGET = HERE.parent / "tests" / "e2e" / "kill_target.py"
SHAPES = ["linear", "fanin", "routing", "fast"]
EXECUTORS = ["inline", "processes"]


def load_kill_target():  # type: ignore[no-untyped-def]
    """The kill target module, imported by path (its ``ROWS`` and ``build``)."""
    spec = importlib.util.spec_from_file_location("kill_target", KILL_TARGET)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_target(
    shape: str, executor: str, cache: Path, logs: Path, timeout: float, kill_after: float = 0.0
) -> tuple[ChildRun, float | None]:
    cmd = [sys.executable, str(KILL_TARGET), "--shape", shape, "--cache-dir", str(cache), "--executor", executor]
    if kill_after:
        cmd += ["--kill-after", f"{kill_after:.4f}"]
    run = run_child(cmd, timeout=timeout, env=child_env(), log_dir=logs, watch=False)
    seconds = None
    for line in run.stdout.splitlines():
        if line.startswith("run_seconds="):
            seconds = float(line.split("=", 1)[1])
    return run, seconds


def leaves(cache: Path, shape: str) -> dict[str, list[dict]]:
    from distil_dagster.distiset import create_distiset

    (folder,) = (cache / f"kill-{shape}").iterdir()
    distiset = create_distiset(folder)
    return {name: dd["train"].to_list() for name, dd in distiset.items()}


@dataclass
class Tally:
    trials: int = 0
    killed: int = 0
    lost: int = 0
    duplicated: int = 0
    differing_leaves: int = 0
    hangs: int = 0
    errors: int = 0
    leftovers: int = 0
    notes: list[str] = field(default_factory=list)

    def add(self, other: Tally) -> None:
        for name in ("trials", "killed", "lost", "duplicated", "differing_leaves", "hangs", "errors", "leftovers"):
            setattr(self, name, getattr(self, name) + getattr(other, name))

    @property
    def bad(self) -> bool:
        return bool(self.lost or self.duplicated or self.differing_leaves or self.hangs or self.errors)


def last_line(run: ChildRun) -> str:
    lines = [line for line in run.stderr.strip().splitlines() if line.strip()]
    return lines[-1][:300] if lines else "(no stderr)"


def compare(expected: dict[str, list[dict]], got: dict[str, list[dict]], tally: Tally) -> list[str]:
    problems = []
    for leaf in sorted(expected.keys() | got.keys()):
        want, have = expected.get(leaf, []), got.get(leaf, [])
        want_ids, have_ids = Counter(r["id"] for r in want), Counter(r["id"] for r in have)
        lost = sum((want_ids - have_ids).values())
        dup = sum((have_ids - want_ids).values())
        tally.lost += lost
        tally.duplicated += dup
        if lost or dup:
            problems.append(f"{leaf}: {lost} lost, {dup} duplicated")
        elif have != want:
            tally.differing_leaves += 1
            problems.append(f"{leaf}: same ids but rows differ from the uninterrupted run")
    return problems


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20, help="total trials over the shape x executor pairs")
    parser.add_argument("--resume-timeout", type=float, default=120.0, help="seconds before a resume is a hang")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--shapes", default=",".join(SHAPES))
    parser.add_argument("--executors", default=",".join(EXECUTORS))
    parser.add_argument("--keep", action="store_true", help="keep the cache folders")
    args = parser.parse_args()
    target = load_kill_target()
    shapes, executors = args.shapes.split(","), args.executors.split(",")
    combos = [(s, e) for s in shapes for e in executors]
    rng = random.Random(args.seed)
    load = os.getloadavg()
    print(
        f"kill target: {KILL_TARGET} ({target.ROWS} rows per shape); {args.trials} trials over {len(combos)} "
        f"shape/executor pairs; load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
    )
    work = Path(tempfile.mkdtemp(prefix="bench-kill-"))
    started = time.perf_counter()
    tallies = {c: Tally() for c in combos}
    try:
        # References: one uninterrupted run per pair (its leaves and how long run() takes).
        refs: dict[tuple[str, str], tuple[dict[str, list[dict]], float]] = {}
        # The shorter of two runs sets the kill window (a run slowed by other load would put most
        # kills after the end).
        for shape, executor in combos:
            durations = []
            for attempt in range(2):
                cache = work / f"ref-{shape}-{executor}-{attempt}"
                run, seconds = run_target(shape, executor, cache, cache / "logs", args.resume_timeout)
                if run.returncode != 0 or seconds is None:
                    raise SystemExit(f"reference run {shape}/{executor} failed ({run.returncode}): {last_line(run)}")
                durations.append(seconds)
            refs[(shape, executor)] = (leaves(cache, shape), min(durations))
            seconds = min(durations)
            print(
                f"  reference {shape:<8} {executor:<10} run() {seconds:.3f} s, leaves {sorted(refs[(shape, executor)][0])}"
            )
        for shape in shapes:  # both executors must give the same datasets
            base = refs[(shape, executors[0])][0]
            for executor in executors[1:]:
                if refs[(shape, executor)][0] != base:
                    print(f"  WARNING: {shape}: {executor} and {executors[0]} references differ")
        print()
        for trial in range(args.trials):
            shape, executor = combos[trial % len(combos)]
            expected, seconds = refs[(shape, executor)]
            tally = Tally(trials=1)
            cache = work / f"trial-{trial}"
            kill_after = rng.uniform(0.05, 0.95) * seconds
            killed, finished_in = run_target(
                shape, executor, cache, cache / "logs-killed", args.resume_timeout, kill_after
            )
            if killed.returncode == 0 and finished_in is not None and finished_in < seconds:
                # The run beat the kill: narrow this pair's window to the duration just seen.
                refs[(shape, executor)] = (expected, finished_in)
            outcome = ""
            if killed.timed_out:
                tally.hangs += 1
                outcome = f"HANG: the killed run did not end within {args.resume_timeout:.0f} s"
            elif killed.returncode not in (-9, 0):
                tally.errors += 1
                outcome = f"ERROR: killed run exited {killed.returncode}: {last_line(killed)}"
            else:
                tally.killed += killed.returncode == -9
                resumed, resume_seconds = run_target(shape, executor, cache, cache / "logs-resume", args.resume_timeout)
                tally.leftovers += len(resumed.leftovers)
                if resumed.timed_out:
                    tally.hangs += 1
                    outcome = f"HANG: resume did not finish within {args.resume_timeout:.0f} s"
                elif resumed.returncode != 0:
                    tally.errors += 1
                    outcome = f"ERROR: resume exited {resumed.returncode}: {last_line(resumed)}"
                else:
                    try:
                        problems = compare(expected, leaves(cache, shape), tally)
                    except Exception as exc:  # a Distiset that cannot be read is an error too
                        tally.errors += 1
                        problems = [f"ERROR reading the leaves: {exc!r}"]
                    state = "killed" if killed.returncode == -9 else "finished before the kill"
                    outcome = f"{state}; resume {resume_seconds:.2f} s; " + ("; ".join(problems) or "rows exact")
            print(f"  trial {trial:>3} {shape:<8} {executor:<10} kill at {kill_after:6.3f} s: {outcome}", flush=True)
            tallies[(shape, executor)].add(tally)
            if not args.keep:
                shutil.rmtree(cache, ignore_errors=True)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    total = Tally()
    for t in tallies.values():
        total.add(t)
    load = os.getloadavg()
    print(f"\ntook {time.perf_counter() - started:.0f} s; load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}\n")
    header = (
        f"    {'shape':<9} {'executor':<10} {'trials':>6} {'killed':>7} {'lost':>5} {'dup':>5}"
        f" {'differ':>7} {'hangs':>6} {'errors':>7}"
    )
    print(header)
    for (shape, executor), t in tallies.items():
        print(
            f"    {shape:<9} {executor:<10} {t.trials:>6} {t.killed:>7} {t.lost:>5} {t.duplicated:>5}"
            f" {t.differing_leaves:>7} {t.hangs:>6} {t.errors:>7}"
        )
    t = total
    print(
        f"    {'all':<9} {'':<10} {t.trials:>6} {t.killed:>7} {t.lost:>5} {t.duplicated:>5}"
        f" {t.differing_leaves:>7} {t.hangs:>6} {t.errors:>7}"
    )
    print(
        f"\nkill trials run: {t.trials} / killed mid-run: {t.killed} / rows lost: {t.lost} / rows duplicated: "
        f"{t.duplicated} / hangs: {t.hangs} / errors: {t.errors} (leaves differing otherwise: {t.differing_leaves};"
        f" processes left after a resume: {t.leftovers})"
    )
    sys.exit(1 if t.bad else 0)


if __name__ == "__main__":
    main()
