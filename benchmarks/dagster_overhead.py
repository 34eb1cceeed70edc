"""The Dagster face's overhead: the same 10-row pipeline through ``Pipeline.run()`` and ``materialize()``,
and ``dagster asset materialize`` end to end.

    .venv/bin/python benchmarks/dagster_overhead.py [--repeat 5]

Each measurement uses a fresh cache folder (nothing reused), the inline executor and fsync off
on both sides, so the difference is what Dagster and the asset layer add. Target: ≤ +0.3 s.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import dagster as dg

from distil_dagster.dagster import DistilDagsterIOManager, DistilDagsterResource, build_pipeline_assets
from distil_dagster.engine.config import EngineConfig

sys.path.insert(0, str(Path(__file__).parent / "workloads"))
from distil_dagster_workload import build  # generator + 3 trivial @steps

REPO = Path(__file__).resolve().parents[1]


def _pipeline_run(rows: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        pipeline = build(Path(tmp), rows, rows, rows)
        start = time.perf_counter()
        pipeline.run(executor="inline", config=EngineConfig(fsync=False))
        return time.perf_counter() - start


def _materialize(rows: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        pipeline = build(Path(tmp), rows, rows, rows)
        assets = build_pipeline_assets(pipeline)
        resources = {
            "distil_dagster": DistilDagsterResource(executor="inline", fsync=False),
            "distil_dagster_io_manager": DistilDagsterIOManager(),
        }
        start = time.perf_counter()
        result = dg.materialize([assets], resources=resources, instance=dg.DagsterInstance.ephemeral())
        elapsed = time.perf_counter() - start
        assert result.success
        return elapsed


def _cli() -> float:
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "DISTIL_DAGSTER_CACHE_DIR": tmp, "DAGSTER_HOME": tmp}
        Path(tmp, "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
        start = time.perf_counter()
        subprocess.run(
            [
                str(Path(sys.executable).parent / "dagster"),
                "asset",
                "materialize",
                "-f",
                "definitions.py",
                "--select",
                "instructions_demo/grouped_responses,instructions_demo/ranked_instructions",
            ],
            cwd=REPO,
            env=env,
            check=True,
            capture_output=True,
        )
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--rows", type=int, default=10)
    args = parser.parse_args()
    _pipeline_run(args.rows), _materialize(args.rows)  # warm-up: imports, first-call costs
    runs = statistics.median(_pipeline_run(args.rows) for _ in range(args.repeat))
    mats = statistics.median(_materialize(args.rows) for _ in range(args.repeat))
    cli = statistics.median(_cli() for _ in range(max(3, args.repeat // 2)))
    print(f"{'measurement':<58} {'median s':>9}")
    print(f"{f'Pipeline.run(), {args.rows} rows, inline':<58} {runs:>9.3f}")
    print(f"{'dagster materialize(), same pipeline, in process':<58} {mats:>9.3f}")
    verdict = "met" if mats - runs <= 0.3 else "MISSED"
    print(f"{'Dagster overhead (target <= +0.3 s)':<58} {mats - runs:>+9.3f}  {verdict}")
    print(f"{'dagster asset materialize -f definitions.py (example, CLI)':<58} {cli:>9.3f}")


if __name__ == "__main__":
    main()
