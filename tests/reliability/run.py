"""Run the reliability suite and print its figures table; exit 1 on any loss, duplicate, hang or unclear error.

    python -m tests.reliability.run [--trials 5] [--kill-trials 23] [--fuzz-examples 1000] [--only TEXT]

``make reliability`` runs the large setting (``RELIABILITY_TRIALS``, ``RELIABILITY_KILL_TRIALS``,
``RELIABILITY_FUZZ_EXAMPLES`` override it); ``make test`` runs one trial of every scenario and
a few dozen fuzz examples per target through ``tests/reliability/test_suite.py`` and
``test_fuzz.py``.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import tempfile
import time
from pathlib import Path

from tests.reliability.harness import Figures, Scenario, format_table, run_scenario

#: Modules holding ``SCENARIOS``, in the table's order.
SCENARIO_MODULES = [
    "tests.reliability.kill",
    "tests.reliability.faults_workers",
    "tests.reliability.faults_llm",
    "tests.reliability.faults_files",
    "tests.reliability.faults_concurrency",
    "tests.reliability.faults_signals",
]


def all_scenarios() -> list[Scenario]:
    """Every scenario of every module."""
    scenarios: list[Scenario] = []
    for name in SCENARIO_MODULES:
        scenarios.extend(importlib.import_module(name).SCENARIOS)
    return scenarios


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=5, help="trials per fault scenario")
    parser.add_argument("--kill-trials", type=int, default=23, help="trials per kill -9 scenario (12 scenarios)")
    parser.add_argument("--fuzz-examples", type=int, default=1000, help="hypothesis examples per fuzz target")
    parser.add_argument("--only", default="", help="run only scenarios whose name contains this text")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    figures: list[Figures] = []
    with tempfile.TemporaryDirectory(prefix="reliability-") as tmp:
        for index, scenario in enumerate(s for s in all_scenarios() if args.only in s.name):
            trials = args.kill_trials if scenario.family == "kill -9" else args.trials
            result = run_scenario(scenario, trials, Path(tmp) / f"s{index}", seed=args.seed)
            figures.append(result)
            status = "ok" if result.clean else "FAILED"
            print(f"{status:6} {scenario.name}: {trials} trials in {result.seconds:.0f} s", flush=True)
            for message in result.unclear:
                print(f"       {message[:3000]}", flush=True)

    fuzz_rows = []
    escapes = 0
    if args.fuzz_examples > 0 and not args.only:
        from tests.reliability.fuzz_targets import TARGETS

        for name, target in TARGETS.items():
            start = time.perf_counter()
            fuzz = target(args.fuzz_examples)
            escapes += len(fuzz.escapes)
            seconds = time.perf_counter() - start
            fuzz_rows.append([f"fuzz: {name} (examples)", fuzz.examples, "-", "-", "-", "-", len(fuzz.escapes)])
            fuzz_rows[-1].append(f"{seconds:.0f}")
            print(f"{'ok' if not fuzz.escapes else 'FAILED':6} fuzz {name}: {fuzz.examples} examples", flush=True)
            for message in fuzz.escapes:
                print(f"       {message[:3000]}", flush=True)

    print()
    print(format_table(figures, fuzz_rows))
    clean = all(f.clean for f in figures) and escapes == 0
    print("\nreliability: " + ("clean" if clean else "FAILURES (see above)"))
    return 0 if clean else 1


if __name__ == "__main__":
    sys.exit(main())
