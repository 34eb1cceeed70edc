"""distil_dagster vs distilabel 1.5.3, side by side, in one invocation.

    .venv/bin/python benchmarks/compare.py [--repeat 3] [--only a,b,c,d] [--timeout 900]

Every measured run is a fresh subprocess (``benchmarks/workloads/*_workload.py``) with a fresh
temporary cache folder (and ``HF_DATASETS_CACHE``), ``use_cache=False``. distilabel runs in its own
venv, ``benchmarks/.venv-distilabel`` (created with ``distilabel==1.5.3 requests`` when missing);
distil_dagster runs in this interpreter's venv, on both executors. The pipelines are the same in
both frameworks: a counting generator and 3 trivial ``@step``s, the leaf written to the cache.

Scenarios (medians of ``--repeat`` runs; runs of the frameworks are interleaved):

(a) 100,000 rows, generator batch_size 1000, steps input_batch_size 1000: rows/s of ``run()``.
(b) the same with the steps' default input_batch_size (50): rows/s of ``run()``.
(c) 10 rows end to end: seconds of ``run()`` and of the whole process (start to exit).
(d) peak RSS of the whole process tree (see ``proctree.py``) at 100,000 rows ((a)'s pipeline)
    and at 1,000,000 rows with the same batch sizes: a streaming pipeline, no global step.
    Memory is sampled in these runs only: sampling costs the measured runs CPU time, so the
    timings of (a), (b) and (c) come from unsampled runs.

A run that does not finish within ``--timeout`` seconds is killed (its whole session) and
reported as a hang; it does not count in the medians.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from proctree import ChildRun, child_env, run_child

HERE = Path(__file__).resolve().parent
WORKLOADS = HERE / "workloads"
DISTILABEL_VENV = HERE / ".venv-distilabel"
DISTILABEL_VERSION = "1.5.3"

TARGETS = {"a": 30.0, "b": 100.0, "c": 6.0, "d": 1.2}


# -- environments ---------------------------------------------------------------------------------
def ensure_distilabel_venv(venv: Path) -> Path:
    """The venv's python, creating the venv with distilabel 1.5.3 when missing or wrong."""
    python = venv / "bin" / "python"
    check = [str(python), "-c", "import distilabel, requests; print(distilabel.__version__)"]
    if python.exists():
        got = subprocess.run(check, capture_output=True, text=True)
        if got.returncode == 0 and got.stdout.strip() == DISTILABEL_VERSION:
            return python
    print(f"Creating {venv} with distilabel=={DISTILABEL_VERSION} (once) ...", flush=True)
    subprocess.run(["python3", "-m", "venv", "--clear", str(venv)], check=True)
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", f"distilabel=={DISTILABEL_VERSION}", "requests"], check=True
    )
    got = subprocess.run(check, capture_output=True, text=True, check=True)
    if got.stdout.strip() != DISTILABEL_VERSION:
        raise SystemExit(f"{venv} has distilabel {got.stdout.strip()}, expected {DISTILABEL_VERSION}")
    return python


@dataclass(frozen=True)
class Engine:
    """One column of the comparison: a framework and (for distil_dagster) an executor."""

    framework: str  # distilabel | distil_dagster
    executor: str  # processes | inline
    python: str

    @property
    def label(self) -> str:
        if self.framework == "distilabel":
            return f"distilabel {DISTILABEL_VERSION}"
        return f"distil_dagster {self.executor}"

    @property
    def script(self) -> Path:
        return WORKLOADS / f"{self.framework}_workload.py"


@dataclass
class Run:
    engine: Engine
    scenario: str
    rows: int
    child: ChildRun
    result: dict | None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.result is not None

    @property
    def run_seconds(self) -> float:
        assert self.result is not None
        return float(self.result["run_seconds"])


@dataclass
class Scenario:
    key: str
    title: str
    rows: int
    batch: int
    input_batch_size: int | None
    sampled: bool = False  # memory sampled (costs the run CPU time: timings are taken unsampled)
    runs: dict[Engine, list[Run]] = field(default_factory=dict)


def run_once(engine: Engine, sc: Scenario, rows: int, timeout: float, keep: bool, interval: float) -> Run:
    """One fresh process of ``sc`` on ``engine``; its process tree's memory is sampled every
    ``interval`` seconds only in memory scenarios (reading every process's ``smaps_rollup`` 50
    times a second took ~1 s from a 5 s run of 7 processes on 2 cores)."""
    tmp = Path(tempfile.mkdtemp(prefix=f"bench-{sc.key}-{engine.framework}-"))
    env = child_env(HF_DATASETS_CACHE=str(tmp / "hf-datasets"))  # distilabel's load_dataset writes there
    env.pop("DISTIL_DAGSTER_CACHE_DIR", None)
    env.pop("DISTILABEL_CACHE_DIR", None)
    cmd = [engine.python, str(engine.script), "--rows", str(rows), "--batch", str(sc.batch)]
    cmd += ["--executor", engine.executor, "--cache-dir", str(tmp / "cache")]
    if sc.input_batch_size is not None:
        cmd += ["--input-batch-size", str(sc.input_batch_size)]
    # Runs are independent: the previous run's dirty pages (distilabel's cache and HF files, a
    # deleted temp folder) are written out first, so a run whose commits sync the filesystem
    # (distil_dagster's syncfs per committed group) waits for its own writes only.
    os.sync()
    try:
        child = run_child(
            cmd, timeout=timeout, cwd=tmp, env=env, watch=sc.sampled, interval=interval, log_dir=tmp / "logs"
        )
    finally:
        if not keep:
            shutil.rmtree(tmp, ignore_errors=True)
    result = None
    error = None
    for line in child.stdout.splitlines():
        if line.startswith("BENCH_RESULT "):
            result = json.loads(line[len("BENCH_RESULT ") :])
    if child.timed_out:
        error = f"HANG: no exit within {timeout:.0f} s (session killed)"
    elif child.returncode != 0 or result is None:
        tail = child.stderr.strip().splitlines()[-3:]
        error = f"exit {child.returncode}: {' | '.join(tail)}"
    return Run(engine, sc.key, rows, child, result if error is None else None, error)


def describe(run: Run) -> str:
    head = f"  [{run.scenario}] {run.engine.label:<27} rows={run.rows:>9,}"
    if not run.ok:
        return f"{head}  FAILED  {run.error}  (wall {run.child.wall_seconds:.1f} s)"
    assert run.result is not None
    text = (
        f"{head}  run() {run.run_seconds:8.3f} s  {run.rows / run.run_seconds:>10,.0f} rows/s"
        f"  process {run.child.wall_seconds:7.3f} s  import {run.result['import_seconds']:.2f} s"
    )
    if run.child.processes_seen:
        text += (
            f"  tree peak RSS {run.child.peak_rss_kb / 1024:6.1f} MB, PSS {run.child.peak_pss_kb / 1024:6.1f} MB,"
            f" ΣVmHWM {run.child.hwm_sum_kb / 1024:6.1f} MB  procs {run.child.processes_seen}"
        )
    if run.child.leftovers:
        text += f"  LEFTOVER PROCESSES {run.child.leftovers} (killed)"
    return text


def median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def fmt(value: float | None, spec: str) -> str:
    """``value`` formatted with ``spec``, or a dash as wide (no figure: every run failed)."""
    if value is None:
        width = re.match(r"\d*", spec)
        return "—".rjust(int(width.group()) if width and width.group() else 1)
    return format(value, spec)


def times(value: float | None, spec: str) -> str:
    return "—" if value is None else format(value, spec) + "x"


def verdict(value: float | None, target: float, higher_is_better: bool = True) -> str:
    if value is None:
        return "n/a"
    met = value >= target if higher_is_better else value <= target
    return "met" if met else "MISSED"


def ok_runs(sc: Scenario, engine: Engine, rows: int | None = None) -> list[Run]:
    return [r for r in sc.runs.get(engine, []) if r.ok and (rows is None or r.rows == rows)]


def hang_count(sc: Scenario, engine: Engine) -> str:
    bad = [r for r in sc.runs.get(engine, []) if not r.ok]
    hangs = sum(r.child.timed_out for r in bad)
    return "" if not bad else f"  ({len(bad)} failed, {hangs} hang(s))"


def table_throughput(sc: Scenario, engines: list[Engine], target: float) -> list[str]:
    ref = next((e for e in engines if e.framework == "distilabel"), None)
    ref_runs = ok_runs(sc, ref) if ref else []
    ref_rate = median([r.rows / r.run_seconds for r in ref_runs])
    lines = [
        f"({sc.key}) {sc.title}",
        f"    {'engine':<27} {'runs':>4} {'run() s':>9} {'rows/s':>11} {'process s':>10} {'vs distilabel':>14}  target",
    ]
    for engine in engines:
        runs = ok_runs(sc, engine)
        rate = median([r.rows / r.run_seconds for r in runs])
        secs = median([r.run_seconds for r in runs])
        wall = median([r.child.wall_seconds for r in runs])
        ratio = None if engine == ref or rate is None or ref_rate is None else rate / ref_rate
        tgt = "" if engine == ref else f"≥{target:g}x {verdict(ratio, target)}"
        lines.append(
            f"    {engine.label:<27} {len(runs):>4} {fmt(secs, '9.3f')} {fmt(rate, '11,.0f')} {fmt(wall, '10.3f')}"
            f" {'1.0x' if engine == ref else times(ratio, '.1f'):>14}  {tgt}{hang_count(sc, engine)}"
        )
    return lines


def table_small(sc: Scenario, engines: list[Engine], target: float) -> list[str]:
    ref = next((e for e in engines if e.framework == "distilabel"), None)
    ref_runs = ok_runs(sc, ref) if ref else []
    ref_run = median([r.run_seconds for r in ref_runs])
    ref_wall = median([r.child.wall_seconds for r in ref_runs])
    lines = [
        f"({sc.key}) {sc.title}",
        f"    {'engine':<27} {'runs':>4} {'run() s':>9} {'faster':>8} {'process s':>10} {'faster':>8}  target (run())",
    ]
    for engine in engines:
        runs = ok_runs(sc, engine)
        secs = median([r.run_seconds for r in runs])
        wall = median([r.child.wall_seconds for r in runs])
        f_run = None if engine == ref or secs is None or ref_run is None else ref_run / secs
        f_wall = None if engine == ref or wall is None or ref_wall is None else ref_wall / wall
        tgt = "" if engine == ref else f"≥{target:g}x {verdict(f_run, target)} (process: {verdict(f_wall, target)})"
        lines.append(
            f"    {engine.label:<27} {len(runs):>4} {fmt(secs, '9.3f')} "
            f"{'1.0x' if engine == ref else times(f_run, '.1f'):>8} {fmt(wall, '10.3f')} "
            f"{'1.0x' if engine == ref else times(f_wall, '.1f'):>8}  {tgt}{hang_count(sc, engine)}"
        )
    return lines


def _rows_label(rows: int) -> str:
    return f"{rows // 1_000_000}M" if rows % 1_000_000 == 0 else f"{rows // 1000}k" if rows % 1000 == 0 else str(rows)


def table_memory(small: Scenario, big: Scenario, engines: list[Engine], target: float) -> list[str]:
    lo, hi = _rows_label(small.rows), _rows_label(big.rows)
    lines = [
        f"(d) peak memory of the process tree (MB), streaming pipeline (batch {big.batch}, input_batch_size "
        f"{big.input_batch_size}), {small.rows:,} vs {big.rows:,} rows",
        f"    {'engine':<27} {'runs':>5} {'RSS@' + lo:>9} {'RSS@' + hi:>9} {'ratio':>6}  {'PSS@' + lo:>9}"
        f" {'PSS@' + hi:>9} {'ratio':>6}  {'ΣHWM@' + lo:>10} {'ΣHWM@' + hi:>10} {'ratio':>6}  target (RSS ratio)",
    ]
    for engine in engines:
        s_runs, b_runs = ok_runs(small, engine), ok_runs(big, engine)
        cells = []
        ratio_rss = None
        for attr in ("peak_rss_kb", "peak_pss_kb", "hwm_sum_kb"):
            lo_v = median([getattr(r.child, attr) / 1024 for r in s_runs])
            hi_v = median([getattr(r.child, attr) / 1024 for r in b_runs])
            ratio = None if lo_v is None or hi_v is None or lo_v == 0 else hi_v / lo_v
            if attr == "peak_rss_kb":
                ratio_rss = ratio
            width = 10 if attr == "hwm_sum_kb" else 9
            cells.append(f"{fmt(lo_v, f'{width}.1f')} {fmt(hi_v, f'{width}.1f')} {fmt(ratio, '6.2f')}")
        target_text = f"≤{target:g} {verdict(ratio_rss, target, higher_is_better=False)}"
        if engine.framework == "distilabel":
            target_text = "(reference)"
        lines.append(
            f"    {engine.label:<27} {len(s_runs):>2}/{len(b_runs):<2} {'  '.join(cells)}  {target_text}"
            f"{hang_count(big, engine)}"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="measured runs per engine and scenario (≥3)")
    parser.add_argument("--only", default="a,b,c,d", help="scenarios to run, e.g. a,c")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds before a run counts as a hang")
    parser.add_argument("--rows", type=int, default=100_000, help="rows of (a), (b) and the small (d) run")
    parser.add_argument("--big-rows", type=int, default=1_000_000, help="rows of the large (d) run")
    parser.add_argument("--interval", type=float, default=0.02, help="memory sampling interval (s)")
    parser.add_argument(
        "--distilabel-venv", type=Path, default=DISTILABEL_VENV, help="venv with distilabel 1.5.3 (created)"
    )
    parser.add_argument("--skip-distilabel", action="store_true", help="distil_dagster only (no ratios)")
    parser.add_argument("--keep", action="store_true", help="keep the temp folders (cache, logs)")
    parser.add_argument("--json-out", type=Path, help="also write every run as JSON")
    args = parser.parse_args()
    only = set(args.only.split(","))

    engines: list[Engine] = []
    if not args.skip_distilabel:
        engines.append(Engine("distilabel", "processes", str(ensure_distilabel_venv(args.distilabel_venv))))
    engines += [Engine("distil_dagster", ex, sys.executable) for ex in ("processes", "inline")]

    scenarios = {
        "a": Scenario(
            "a", f"{args.rows:,} rows, generator + 3 @steps, batch 1000, input_batch_size 1000", args.rows, 1000, 1000
        ),
        "b": Scenario(
            "b", f"{args.rows:,} rows, generator batch 1000, default input_batch_size (50)", args.rows, 1000, None
        ),
        "c": Scenario("c", "10 rows, generator + 3 @steps (default batch sizes), end to end", 10, 50, None),
        "m": Scenario("m", f"(d) at {args.rows:,} rows", args.rows, 1000, 1000, sampled=True),
        "d": Scenario(
            "d", f"{args.big_rows:,} rows, batch 1000, input_batch_size 1000", args.big_rows, 1000, 1000, sampled=True
        ),
    }
    # (d) compares memory at 100k rows ("m": (a)'s pipeline, sampled) and at the big size.
    if "d" in only:
        only.add("m")

    load = os.getloadavg()
    print(f"cores: {os.cpu_count()}, load average at start: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    print(f"repeat={args.repeat}, timeout={args.timeout:.0f} s, memory sampled every {args.interval * 1000:.0f} ms")
    started = time.perf_counter()

    # Warm-up (not measured): first imports after an install compile .pyc files.
    for engine in engines:
        warm = run_once(engine, scenarios["c"], 10, args.timeout, False, args.interval)
        if not warm.ok:
            print(f"warm-up of {engine.label} failed: {warm.error}")

    all_runs: list[Run] = []
    print("\nper-run figures:")
    for key in ("a", "b", "c", "m", "d"):
        if key not in only:
            continue
        sc = scenarios[key]
        for _ in range(args.repeat):
            for engine in engines:
                run = run_once(engine, sc, sc.rows, args.timeout, args.keep, args.interval)
                sc.runs.setdefault(engine, []).append(run)
                all_runs.append(run)
                print(describe(run), flush=True)

    load = os.getloadavg()
    print(
        f"\nload average at end: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; took {time.perf_counter() - started:.0f} s"
    )
    print(f"\nmedians of {args.repeat} runs; ratios against distilabel {DISTILABEL_VERSION} (first row)\n")
    if "a" in only:
        print("\n".join(table_throughput(scenarios["a"], engines, TARGETS["a"])), end="\n\n")
    if "b" in only:
        print("\n".join(table_throughput(scenarios["b"], engines, TARGETS["b"])), end="\n\n")
    if "c" in only:
        print("\n".join(table_small(scenarios["c"], engines, TARGETS["c"])), end="\n\n")
    if "d" in only:
        print("\n".join(table_memory(scenarios["m"], scenarios["d"], engines, TARGETS["d"])), end="\n\n")
    print(
        f"RSS/PSS = largest sum of VmRSS/Pss over the process tree at one sample (every {args.interval * 1000:.0f} ms);"
        " ΣHWM = sum of\nevery tree process's VmHWM (upper bound). 'process s' = wall time of the whole subprocess,"
        " start to exit.\nrows/s = rows / seconds of pipeline.run() measured inside the process."
    )
    if args.json_out:
        payload = [
            {
                "engine": r.engine.label,
                "scenario": r.scenario,
                "rows": r.rows,
                "ok": r.ok,
                "error": r.error,
                "wall_seconds": r.child.wall_seconds,
                "peak_rss_kb": r.child.peak_rss_kb,
                "peak_pss_kb": r.child.peak_pss_kb,
                "hwm_sum_kb": r.child.hwm_sum_kb,
                "processes_seen": r.child.processes_seen,
                "result": r.result,
            }
            for r in all_runs
        ]
        args.json_out.write_text(json.dumps(payload, indent=1))
    failed = [r for r in all_runs if not r.ok and r.engine.framework == "distil_dagster"]
    if failed:
        sys.exit(1)


if __name__ == "__main__":
    main()
