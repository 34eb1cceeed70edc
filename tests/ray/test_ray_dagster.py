"""The Dagster face on Ray: ``DistilDagsterResource(executor="ray", ray_address=...)`` materializes
a pipeline's assets with step replicas as Ray actors."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest

from distil_dagster.dagster import DistilDagsterIOManager, DistilDagsterResource, build_pipeline_assets
from distil_dagster.distiset import create_distiset
from tests.e2e.kill_target import build


@pytest.mark.timeout(120)
def test_the_resource_runs_the_engine_on_ray(tmp_path: Path, ray_cluster: str) -> None:
    resource = DistilDagsterResource(cache_dir=str(tmp_path / "ray"), executor="ray", ray_address=ray_cluster)
    assert resource.engine_config().ray_address == ray_cluster
    pipeline = build("fanin", tmp_path / "ray", rows=60)
    result = dg.materialize(
        [build_pipeline_assets(pipeline)],
        instance=dg.DagsterInstance.ephemeral(),
        resources={"distil_dagster": resource, "distil_dagster_io_manager": DistilDagsterIOManager()},
    )
    assert result.success
    got = create_distiset(tmp_path / "ray" / pipeline.name / pipeline.signature)
    expected = build("fanin", tmp_path / "inline", rows=60).run(executor="inline")
    assert {k: v["train"].to_list() for k, v in got.items()} == {k: v["train"].to_list() for k, v in expected.items()}
