"""Asset checks: failed-row ratio and row conservation."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from distil_dagster.cache.journal import BatchRecord
from distil_dagster.dagster import LeafOutput, build_pipeline_asset_checks
from distil_dagster.dagster.checks import conservation_problems
from tests.dagster.conftest import Run, materialization
from tests.dagster.pipelines import ROWS, build_linear

pytestmark = pytest.mark.timeout(60)

DOUBLE = dg.AssetKey(["linear", "double"])


def _evaluations(result: dg.ExecuteInProcessResult) -> dict[str, dg.AssetCheckEvaluation]:
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


def test_failed_rows_over_the_threshold_fail_the_check(run: Run, cache_dir: Path) -> None:
    result = run(build_linear(cache_dir, fail_every=5))  # ids 0, 5, 10, 15 fail: 20 %

    checks = _evaluations(result)
    assert materialization(result, DOUBLE)["failed_rows"] == 4
    assert not checks["failed_row_ratio"].passed
    assert checks["failed_row_ratio"].metadata["failed_rows"].value == 4
    assert checks["row_conservation"].passed


def test_the_threshold_is_configurable(run: Run, cache_dir: Path) -> None:
    pipeline = build_linear(cache_dir, fail_every=5)
    lenient = build_pipeline_asset_checks(pipeline, max_failed_row_ratio=0.25)

    result = run(pipeline, checks=False, extra=lenient)

    assert _evaluations(result)["failed_row_ratio"].passed
    with pytest.raises(ValueError, match="between 0 and 1"):
        build_pipeline_asset_checks(pipeline, max_failed_row_ratio=2)


def _parquet(path: Path, rows: int) -> tuple[str, int]:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table({"id": list(range(rows))}), path)
    return f"data/leaf/{path.name}", path.stat().st_size


def test_conservation_finds_duplicates_gaps_and_miscounts(tmp_path: Path) -> None:
    pipeline = build_linear(tmp_path)
    file_a, size_a = _parquet(tmp_path / "data" / "leaf" / "00001.parquet", 3)
    file_b, size_b = _parquet(tmp_path / "data" / "leaf" / "00002.parquet", 2)
    leaf = [
        BatchRecord("double", 0, 3, False, file_a, size_a, created_from={"load": [(0, 0, 3)]}),
        BatchRecord("double", 2, 3, True, file_b, size_b, created_from={"load": [(0, 2, 5)]}),
    ]
    load = {0: BatchRecord("load", 0, 5, False), 1: BatchRecord("load", 1, 5, True)}
    output = LeafOutput("double", tmp_path, tuple(leaf))

    problems = conservation_problems(pipeline.dag, output, {"load": load, "double": dict(enumerate(leaf))})

    assert problems == [
        "batches are numbered [0, 2], not 0..1",
        f"batch 2 ({file_b}) holds 2 rows, its commit counts 3",
        "rows 2..2 of 'load' batch 0 were consumed twice",
        "rows 0..4 of 'load' batch 1 were never consumed",
    ]


def test_conservation_fails_without_batches(tmp_path: Path) -> None:
    problems = conservation_problems(build_linear(tmp_path).dag, LeafOutput("double", tmp_path, ()), {})

    assert problems == [f"no batch of 'double' is committed in {tmp_path}"]


def test_conservation_passes_on_a_real_run(run: Run, cache_dir: Path) -> None:
    result = run(build_linear(cache_dir))

    assert _evaluations(result)["row_conservation"].passed
    assert materialization(result, DOUBLE)["dagster/row_count"] == ROWS
