"""DistilDagsterIOManager: downstream assets receive a leaf as datasets.Dataset or pyarrow.Table."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pyarrow as pa
import pytest
from datasets import Dataset

from distil_dagster.dagster import LeafOutput
from distil_dagster.pipeline import Pipeline
from tests.dagster.conftest import EXAMPLE_GRAPH, GROUPED, RANKED, Run, materialization

pytestmark = pytest.mark.timeout(60)


@dg.asset(ins={"responses": dg.AssetIn(key=GROUPED)})
def response_count(responses: Dataset) -> dict:
    assert isinstance(responses, Dataset)
    assert responses.cache_files, "expected a memory-mapped dataset"
    return {"rows": responses.num_rows, "columns": responses.column_names, "first": responses[0]}


@dg.asset(ins={"ranked": dg.AssetIn(key=RANKED)})
def top_ranked(ranked: pa.Table) -> list[str]:
    assert isinstance(ranked, pa.Table)
    best = ranked.filter(pa.compute.equal(ranked["length_rank"], 1))
    return best["instruction"].to_pylist()


@dg.asset(ins={"ranked": dg.AssetIn(key=RANKED)})
def ranked_reference(ranked: LeafOutput) -> int:
    return ranked.committed_rows


def test_downstream_assets_get_a_dataset_and_a_table(run: Run, example: Pipeline) -> None:
    result = run(example, extra=[response_count, top_ranked, ranked_reference])

    counted = result.output_for_node("response_count")
    assert counted["rows"] == 20
    assert counted["columns"] == ["id", "instruction", "num_words", "num_chars", "generations", "model_names"]
    assert len(counted["first"]["generations"]) == 2
    assert len(result.output_for_node("top_ranked")) == 1
    assert result.output_for_node("ranked_reference") == 20


def test_a_later_run_of_only_the_downstream_asset_loads_the_leaf(run: Run, example: Pipeline) -> None:
    config = {"ops": {EXAMPLE_GRAPH: {"config": {"concise": {"template": "TL;DR: {instruction}"}}}}}
    first = run(example, run_config=config)
    signature = materialization(first, GROUPED)["signature"]

    later = run(example, extra=[response_count, top_ranked], selection=[response_count.key, top_ranked.key])

    assert later.success
    assert [e.step_key for e in later.all_events if e.is_step_success] == ["response_count", "top_ranked"]
    counted = later.output_for_node("response_count")
    assert counted["rows"] == 20
    # The latest materialization (with the run config's template) is what loads, not the definition's signature.
    assert signature != example.signature
    generations = counted["first"]["generations"]
    models = counted["first"]["model_names"]
    assert all(g.startswith("TL;DR: ") for g, m in zip(generations, models) if m == "concise-v1")


def test_a_never_materialized_leaf_fails_to_load_with_a_clear_message(run: Run, example: Pipeline) -> None:
    result = run(example, extra=[top_ranked], selection=[top_ranked.key], raise_on_error=False)

    assert not result.success
    (failure,) = [e for e in result.all_events if e.is_step_failure]
    message = failure.step_failure_data.error.cause.message if failure.step_failure_data.error.cause else ""
    assert "has not finished" in (failure.step_failure_data.error.message + message)


def test_the_arrow_file_is_written_once_per_set_of_batches(run: Run, example: Pipeline, cache_dir: Path) -> None:
    run(example, extra=[top_ranked])
    folder = cache_dir / example.name / example.signature / "arrow"
    first = sorted(folder.glob("ranked_instructions.*.arrow"))
    run(example, extra=[top_ranked], selection=[top_ranked.key])

    assert len(first) == 1
    assert sorted(folder.glob("ranked_instructions.*.arrow")) == first
