"""What resuming costs in distil_dagster: returning a finished pipeline, and recompute after kill -9.

    .venv/bin/python benchmarks/resume_cost.py [--rows 100000] [--batch 1000] [--repeat 3] [--kills 10]

Child: ``benchmarks/workloads/resume_target.py`` (a counting generator and 3 trivial ``@step``s,
batch 1000), always in a fresh subprocess and its own session, bounded by ``--timeout``.

1. Finished pipeline from the cache: one run fills a fresh cache folder, then ``--repeat`` fresh
   processes call ``run()`` again (``use_cache=True``). Prints the seconds of ``run()``, split into
   engine (from ``run()`` to the call of ``create_distiset``: lock, journal read, checks) and
   Distiset loading, the whole process's wall time, and how many processes the session held
   (1 = no worker started). Target: engine ≤ 0.2 s (plus dataset loading).
2. Batches recomputed after kill -9: ``--kills`` trials per executor. The child SIGKILLs its own
   process group from a timer thread at a random instant of its run (like
   ``tests/e2e/kill_target.py``), then a fresh process resumes. Every step appends the first row
   id of each batch it starts to a trace file (one per run), so per step:

   - committed: batches in ``commits.jsonl`` after the kill (whole lines only),
   - in flight: batches the killed run started but did not commit,
   - recomputed: batches the killed run started that the resume computed again,
   - written by resume: lines the resume appended to ``commits.jsonl`` (new + recomputed).

   Target: recomputed ≤ in flight (never a committed batch computed again); for the inline
   executor that is at most one batch per step. The resumed leaf must hold every row once.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

from proctree import ChildRun, child_env, run_child

HERE = Path(__file__).resolve().parent
TARGET = HERE / "workloads" / "resume_target.py"
STEPS = ["gen", "a", "b", "c"]
ENGINE_TARGET = 0.2


def child(
    args: argparse.Namespace,
    executor: str,
    cache: Path,
    logs: Path,
    *,
    kill_after: float = 0.0,
    trace: Path | None = None,
    fresh: bool = False,
) -> tuple[ChildRun, dict | None]:
    cmd = [sys.executable, str(TARGET), "--rows", str(args.rows), "--batch", str(args.batch)]
    cmd += ["--executor", executor, "--cache-dir", str(cache)]
    if kill_after:
        cmd += ["--kill-after", f"{kill_after:.4f}"]
    if fresh:
        cmd.append("--fresh")
    env = child_env(HF_DATASETS_CACHE=str(cache.parent / "hf-datasets"))
    env.pop("BENCH_TRACE", None)
    if trace is not None:
        env["BENCH_TRACE"] = str(trace)
    run = run_child(cmd, timeout=args.timeout, env=env, log_dir=logs, interval=0.01)
    result = None
    for line in run.stdout.splitlines():
        if line.startswith("BENCH_RESULT "):
            result = json.loads(line[len("BENCH_RESULT ") :])
    return run, result


def journal_lines(cache: Path) -> list[dict]:
    """Whole lines of the signature folder's ``commits.jsonl`` (read-only; a torn tail is skipped)."""
    found = list(cache.glob("*/*/commits.jsonl"))
    if not found:
        return []
    (path,) = found
    raw = path.read_bytes()
    lines = raw.split(b"\n")[:-1]  # the part after the last newline never counted
    out = []
    for line in lines:
        try:
            out.append(json.loads(line))
        except ValueError:
            break
    return out


def traced(path: Path, batch: int) -> dict[str, set[int]]:
    """Batches (seq_no = first row id // batch) each step started, from a trace file."""
    started: dict[str, set[int]] = defaultdict(set)
    if not path.exists():
        return started
    for line in path.read_text().splitlines():
        parts = line.split()
        if len(parts) != 2:
            continue  # a line cut by the kill
        started[parts[0]].add(int(parts[1]) // batch)
    return started


def fail(message: str, run: ChildRun) -> None:
    print(f"    ERROR: {message}; exit {run.returncode}; stderr tail:")
    for line in run.stderr.strip().splitlines()[-8:]:
        print(f"      {line}")


def from_cache(args: argparse.Namespace, executor: str, work: Path) -> float | None:
    """Part 1 for one executor; returns the seconds of the uninterrupted run (for the kill window)."""
    cache = work / f"cached-{executor}" / "cache"
    first, result = child(args, executor, cache, work / "logs", fresh=True)
    if result is None:
        fail(f"first run on {executor} failed", first)
        return None
    print(
        f"  {executor:<10} first run: run() {result['run_seconds']:.3f} s (process {first.wall_seconds:.3f} s, "
        f"{first.processes_seen} processes)"
    )
    runs = []
    for i in range(args.repeat):
        again, res = child(args, executor, cache, work / "logs")
        if res is None:
            fail(f"cached re-run {i} on {executor} failed", again)
            continue
        assert res["leaf_rows"] == args.rows == res["unique_ids"], res
        runs.append((again, res))
        print(
            f"  {executor:<10} cached run {i + 1}: run() {res['run_seconds']:.4f} s = engine "
            f"{res['engine_seconds']:.4f} s + Distiset {res['distiset_seconds']:.4f} s; process "
            f"{again.wall_seconds:.3f} s (import {res['import_seconds']:.3f} s); "
            f"{again.processes_seen} process(es) in the session"
        )
    if runs:
        med = {
            k: statistics.median(r[k] for _, r in runs) for k in ("run_seconds", "engine_seconds", "distiset_seconds")
        }
        wall = statistics.median(c.wall_seconds for c, _ in runs)
        procs = max(c.processes_seen for c, _ in runs)
        SUMMARY["cached"].append(
            f"    {executor:<10} {med['run_seconds']:>9.4f} {med['engine_seconds']:>10.4f} "
            f"{med['distiset_seconds']:>11.4f} {wall:>10.3f} {procs:>10}   engine ≤{ENGINE_TARGET} s: "
            f"{'met' if med['engine_seconds'] <= ENGINE_TARGET else 'MISSED'}"
        )
    return float(result["run_seconds"])


def kill_trials(args: argparse.Namespace, executor: str, seconds: float, work: Path, rng: random.Random) -> bool:
    """Part 2 for one executor; False on a correctness problem (hang, error, committed batch redone, bad leaf)."""
    ok = True
    totals = {"killed": 0, "early": 0, "recomputed": 0, "in_flight": 0, "violations": 0, "written": 0}
    worst_step = worst_flight = 0
    for trial in range(args.kills):
        base = work / f"kill-{executor}-{trial}"
        cache = base / "cache"
        t1, t2 = base / "trace-killed.txt", base / "trace-resume.txt"
        kill_after = rng.uniform(0.05, 0.95) * seconds
        killed_run, finished = child(args, executor, cache, base / "logs-killed", kill_after=kill_after, trace=t1)
        if killed_run.timed_out:
            print(f"    trial {trial}: the killed run HUNG (no exit within {args.timeout:.0f} s)")
            ok = False
            continue
        if killed_run.returncode == 0:
            print(f"    trial {trial}: kill at {kill_after:.3f} s came after the run finished (not counted)")
            if finished is not None:  # narrow the window to the duration just seen
                seconds = min(seconds, float(finished["run_seconds"]))
            continue
        if killed_run.returncode != -9:
            fail(f"trial {trial}: killed run ended unexpectedly", killed_run)
            ok = False
            continue
        totals["killed"] += 1
        before = journal_lines(cache)
        totals["early"] += not before
        committed: dict[str, set[int]] = defaultdict(set)
        for rec in before:
            committed[rec["step"]].add(int(rec["seq"]))
        resume, res = child(args, executor, cache, base / "logs-resume", trace=t2)
        if resume.timed_out:
            print(f"    trial {trial}: the resume HUNG (no exit within {args.timeout:.0f} s)")
            ok = False
            continue
        if res is None:
            fail(f"trial {trial}: resume failed", resume)
            ok = False
            continue
        after = journal_lines(cache)
        started1, started2 = traced(t1, args.batch), traced(t2, args.batch)
        cells = []
        trial_recomputed = trial_in_flight = 0
        bad, notes = [], []
        for step in STEPS:
            in_flight = started1[step] - committed[step]
            recomputed = started1[step] & started2[step]
            again_committed = committed[step] & started2[step]
            trial_recomputed += len(recomputed)
            trial_in_flight += len(in_flight)
            worst_step = max(worst_step, len(recomputed))
            worst_flight = max(worst_flight, len(in_flight))
            if again_committed:
                bad.append(f"{step}: committed batches {sorted(again_committed)} computed again")
            if executor == "inline" and len(recomputed) > 1:
                notes.append(f"{step} {len(recomputed)}")
            cells.append(f"{step} {len(committed[step])}/{len(in_flight)}/{len(recomputed)}")
        written = len(after) - len(before)
        if not res["leaf_rows"] == args.rows == res["unique_ids"]:
            bad.append(f"leaf has {res['leaf_rows']} rows, {res['unique_ids']} unique ids, expected {args.rows}")
        totals["recomputed"] += trial_recomputed
        totals["in_flight"] += trial_in_flight
        totals["written"] += written
        totals["violations"] += bool(bad)
        ok = ok and not bad
        print(
            f"    trial {trial}: kill at {kill_after:.3f} s; committed/in-flight/recomputed per step: "
            f"{', '.join(cells)}; resume wrote {written} journal lines in {res['run_seconds']:.2f} s"
            + (" (nothing was committed before the kill)" if not before else "")
            + (f"; over 1 per step: {', '.join(notes)}" if notes else "")
            + (f"; PROBLEM: {'; '.join(bad)}" if bad else "")
        )
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)
    bound = ""
    if executor == "inline":
        bound = "met" if worst_step <= 1 else "MISSED"
    SUMMARY["kills"].append(
        f"    {executor:<10} {args.kills:>6} {totals['killed']:>7} {totals['early']:>13} {totals['in_flight']:>10} "
        f"{totals['recomputed']:>11} {worst_flight:>10} {worst_step:>10} {totals['written']:>13} "
        f"{totals['violations']:>11}  {'recomputed ≤ in flight: ' + ('met' if totals['violations'] == 0 else 'MISSED')}"
        + (f"; ≤1 per step (inline): {bound}" if bound else "")
    )
    return ok


SUMMARY: dict[str, list[str]] = {"cached": [], "kills": []}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3, help="cached re-runs per executor")
    parser.add_argument("--kills", type=int, default=10, help="kill trials per executor")
    parser.add_argument("--executors", default="inline,processes")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds before a run counts as a hang")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    load = os.getloadavg()
    print(f"load average at start: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; {args.rows:,} rows, batch {args.batch}")
    rng = random.Random(args.seed)
    ok = True
    work = Path(tempfile.mkdtemp(prefix="bench-resume-"))
    try:
        print("\n1. finished pipeline returned from the cache (fresh process each time)")
        seconds = {}
        for executor in args.executors.split(","):
            got = from_cache(args, executor, work)
            if got is None:
                ok = False
            else:
                seconds[executor] = got
        print("\n2. kill -9 at a random instant, then resume")
        for executor, secs in seconds.items():
            print(f"  {executor} (uninterrupted run() {secs:.3f} s; kills uniform in 5-95% of it)")
            ok = kill_trials(args, executor, secs, work, rng) and ok
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    load = os.getloadavg()
    print(f"\nload average at end: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}\n")
    print(f"finished {args.rows:,}-row pipeline from the cache, medians of {args.repeat} fresh processes (seconds)")
    print(f"    {'executor':<10} {'run()':>9} {'engine':>10} {'Distiset':>11} {'process':>10} {'processes':>10}")
    print("\n".join(SUMMARY["cached"]))
    print("\nbatches recomputed after kill -9 (sums over the killed trials; max = worst step of any trial)")
    print(
        f"    {'executor':<10} {'trials':>6} {'killed':>7} {'none commit.':>13} {'in flight':>10} {'recomputed':>11}"
        f" {'max flight':>10} {'max recomp':>10} {'resume wrote':>13} {'violations':>11}  targets"
    )
    print("\n".join(SUMMARY["kills"]))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
