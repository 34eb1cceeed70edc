"""build_pipeline_assets with dagster.materialize(): full and subset runs, metadata, run config, code versions."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pyarrow.parquet as pq
import pytest

from distil_dagster.dagster import DistilDagsterTranslator, LeafStep, build_pipeline_assets
from distil_dagster.distiset import create_distiset
from distil_dagster.examples.pipelines import build_instructions_pipeline
from distil_dagster.pipeline import Pipeline
from tests.dagster.conftest import EXAMPLE_GRAPH, GROUPED, RANKED, Run, materialization, ran_steps

pytestmark = pytest.mark.timeout(60)

ALL_STEPS = sorted(
    [
        "load_instructions",
        "instruction_stats",
        "concise",
        "detailed",
        "socratic",
        "grouped_responses",
        "ranked_instructions",
    ]
)


def _leaf_rows(root: Path, leaf: str) -> int:
    return sum(pq.read_metadata(p).num_rows for p in sorted((root / "data" / leaf).glob("*.parquet")))


def test_full_run_materializes_every_leaf(run: Run, example: Pipeline, cache_dir: Path) -> None:
    result = run(example)

    assert result.success
    checks = [f"{EXAMPLE_GRAPH}_{leaf}_checks" for leaf in ("grouped_responses", "ranked_instructions")]
    assert ran_steps(result) == sorted(ALL_STEPS + checks)
    root = cache_dir / example.name / example.signature
    assert _leaf_rows(root, "grouped_responses") == 20
    assert _leaf_rows(root, "ranked_instructions") == 20
    assert all(evaluation.passed for evaluation in result.get_asset_check_evaluations())
    assert len(result.get_asset_check_evaluations()) == 4


def test_subset_of_one_leaf_runs_only_its_ancestors(run: Run, example: Pipeline, cache_dir: Path) -> None:
    result = run(example, selection=[RANKED])

    assert result.success
    assert ran_steps(result) == [
        "instruction_stats",
        "instructions_demo_ranked_instructions_checks",
        "load_instructions",
        "ranked_instructions",
    ]
    assert [e.asset_key for e in result.get_asset_materialization_events()] == [RANKED]
    root = cache_dir / example.name / example.signature
    assert sorted(p.name for p in (root / "data").iterdir()) == ["ranked_instructions"]
    assert sorted(p.name for p in (root / "steps").iterdir()) == ["instruction_stats", "load_instructions"]


def test_materialization_metadata(run: Run, example: Pipeline, cache_dir: Path) -> None:
    first = materialization(run(example), GROUPED)

    root = cache_dir / example.name / example.signature
    assert first["dagster/row_count"] == 20
    assert first["rows"] == 20 and first["batches"] == 10 and first["failed_rows"] == 0
    assert first["reused_rows"] == 0 and first["computed_rows"] == 20
    assert first["seconds"] >= 0
    assert first["signature"] == example.signature
    assert Path(first["path"]) == root / "data" / "grouped_responses"
    columns = [c.name for c in first["dagster/column_schema"].columns]
    assert columns == ["id", "instruction", "num_words", "num_chars", "generations", "model_names"]
    assert "| id | instruction |" in first["preview"]
    assert first["preview"].count("\n") == 1 + 5  # header, rule, five rows

    again = materialization(run(example), GROUPED)
    assert again["reused_batches"] == 10 and again["reused_rows"] == 20 and again["computed_rows"] == 0
    assert again["dagster/row_count"] == 20


def test_runtime_parameter_from_run_config_reaches_the_step(run: Run, example: Pipeline, cache_dir: Path) -> None:
    config = {"ops": {EXAMPLE_GRAPH: {"config": {"concise": {"template": "TL;DR: {instruction}"}}}}}

    metadata = materialization(run(example, selection=[GROUPED], run_config=config), GROUPED)

    assert metadata["signature"] != example.signature  # a parameter is part of the signature
    rows = create_distiset(Path(metadata["distil_dagster/signature_folder"]))["default"]["train"].to_list()
    concise = [g for row in rows for g, m in zip(row["generations"], row["model_names"]) if m == "concise-v1"]
    assert concise and all(g.startswith("TL;DR: ") for g in concise)
    assert example.dag.step("concise").template == "In short: {instruction}"  # the definition is untouched
    assert not (cache_dir / example.name / example.signature).exists()


def test_one_run_config_is_valid_for_every_subset(run: Run, example: Pipeline) -> None:
    config = {"ops": {EXAMPLE_GRAPH: {"config": {"concise": {"template": "TL;DR: {instruction}"}}}}}

    result = run(example, selection=[RANKED], run_config=config)

    assert result.success
    assert materialization(result, RANKED)["signature"] != example.signature


def test_a_typo_in_run_config_fails_before_the_run(run: Run, example: Pipeline, cache_dir: Path) -> None:
    config = {"ops": {EXAMPLE_GRAPH: {"config": {"concise": {"templat": "x"}}}}}

    with pytest.raises(dg.DagsterInvalidConfigError, match="templat"):
        run(example, run_config=config)
    assert not cache_dir.exists()


def test_code_version_changes_only_on_the_changed_branch(tmp_path: Path) -> None:
    before = build_pipeline_assets(build_instructions_pipeline(tmp_path)).code_versions_by_key
    changed = build_instructions_pipeline(tmp_path)
    changed.dag.step("concise").template = "Briefly: {instruction}"
    after = build_pipeline_assets(changed).code_versions_by_key

    assert before[RANKED] == after[RANKED]
    assert before[GROUPED] != after[GROUPED]
    assert after[GROUPED] == changed.signature_of(changed.dag.closure(["grouped_responses"]))


def test_staleness_after_a_change_marks_only_the_changed_branch(
    run: Run, instance: dg.DagsterInstance, cache_dir: Path
) -> None:
    # Dagster's own test helper for the stale status the UI shows (no public API for it).
    from dagster._core.definitions.data_version import StaleStatus
    from dagster._utils.test.data_versions import get_stale_status_resolver

    run(build_instructions_pipeline(cache_dir), checks=False)
    changed = build_instructions_pipeline(cache_dir)
    changed.dag.step("concise").template = "Briefly: {instruction}"

    resolver = get_stale_status_resolver(instance, [build_pipeline_assets(changed)])
    assert resolver.get_status(GROUPED) == StaleStatus.STALE
    assert resolver.get_status(RANKED) == StaleStatus.FRESH


class _Prefixed(DistilDagsterTranslator):
    def get_asset_key(self, leaf: LeafStep) -> dg.AssetKey:
        return dg.AssetKey(["synthetic", leaf.name])

    def get_group_name(self, leaf: LeafStep) -> str | None:
        return "synthetic_data"

    def get_owners(self, leaf: LeafStep) -> list[str]:
        return ["team:data"]

    def get_code_version(self, leaf: LeafStep) -> str | None:
        return "v1"


def test_translator_sets_every_asset_attribute(example: Pipeline) -> None:
    assets = build_pipeline_assets(example, translator=_Prefixed())

    key = dg.AssetKey(["synthetic", "ranked_instructions"])
    spec = {s.key: s for s in assets.specs}[key]
    assert set(assets.keys) == {key, dg.AssetKey(["synthetic", "grouped_responses"])}
    assert spec.group_name == "synthetic_data"
    assert spec.owners == ["team:data"]
    assert spec.code_version == "v1"
    assert "dagster/kind/parquet" in spec.tags
    assert spec.metadata["distil_dagster/upstream_steps"] == "load_instructions, instruction_stats, ranked_instructions"
    assert "RankByLength" in (spec.description or "")
