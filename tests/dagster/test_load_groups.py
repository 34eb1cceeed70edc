"""``DistilDagsterResource(load_groups=...)``: a materialization runs the load stages of its selection."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest

from distil_dagster.dagster import DistilDagsterResource
from distil_dagster.dagster.names import identifier
from tests.dagster.conftest import Run, materialization
from tests.engine.test_load_groups import build

pytestmark = pytest.mark.timeout(60)


def _key(leaf: str) -> dg.AssetKey:
    return dg.AssetKey([identifier("load-groups"), leaf])


@pytest.mark.parametrize("executor", ["inline", "processes"])
def test_stages_load_in_isolation_and_each_leaf_counts_its_rows_once(run: Run, tmp_path: Path, executor: str) -> None:
    events = tmp_path / "events"
    pipeline = build(tmp_path / "cache", events)
    resource = DistilDagsterResource(cache_dir=str(tmp_path / "cache"), executor=executor, load_groups=[["b"], ["c"]])

    result = run(pipeline, distil_dagster=resource)

    assert result.success
    for leaf in ("b", "c"):
        meta = materialization(result, _key(leaf))
        assert meta["rows"] == 20 and meta["computed_rows"] == 20 and meta["reused_rows"] == 0
    assert events.read_text().split("\n")[:-1] == [
        "load a",
        "unload a",
        "load b",
        "unload b",
        "load c",
        "unload c",
    ]


def test_a_subset_runs_only_the_stages_of_its_selection(run: Run, tmp_path: Path) -> None:
    events = tmp_path / "events"
    pipeline = build(tmp_path / "cache", events)
    resource = DistilDagsterResource(
        cache_dir=str(tmp_path / "cache"), executor="inline", sequential_step_execution=True
    )

    result = run(pipeline, selection=[_key("b")], distil_dagster=resource)

    assert result.success
    assert materialization(result, _key("b"))["rows"] == 20
    assert events.read_text().split("\n")[:-1] == ["load a", "unload a", "load b", "unload b"]


def test_invalid_load_groups_fail_the_run_naming_the_step(run: Run, tmp_path: Path) -> None:
    pipeline = build(tmp_path / "cache", tmp_path / "events")
    resource = DistilDagsterResource(cache_dir=str(tmp_path / "cache"), executor="inline", load_groups=[["nope"]])

    result = run(pipeline, distil_dagster=resource, raise_on_error=False)

    assert not result.success
    failures = [e for e in result.all_events if e.is_step_failure]
    assert failures and "unknown step 'nope'" in str(failures[0].step_failure_data.error)
    assert not (tmp_path / "events").exists()


def test_load_groups_and_sequential_execution_together_are_refused(run: Run, tmp_path: Path) -> None:
    pipeline = build(tmp_path / "cache", tmp_path / "events")
    resource = DistilDagsterResource(
        cache_dir=str(tmp_path / "cache"), executor="inline", load_groups=[["b"]], sequential_step_execution=True
    )

    result = run(pipeline, distil_dagster=resource, raise_on_error=False)

    failures = [e for e in result.all_events if e.is_step_failure]
    assert failures and "set load_groups or sequential_step_execution, not both" in str(
        failures[0].step_failure_data.error
    )
