"""Fixtures of the Dagster suite: a cache folder, resources pointing at it, and ``run()``.

``run(pipeline, ...)`` materializes the pipeline's assets (plus any extra assets) with
``dagster.materialize`` and the in-process executor, on a shared ephemeral instance so a later
run sees the materializations of an earlier one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from distil_dagster.dagster import (
    DistilDagsterIOManager,
    DistilDagsterResource,
    build_pipeline_asset_checks,
    build_pipeline_assets,
)
from distil_dagster.examples.pipelines import build_instructions_pipeline
from distil_dagster.pipeline import Pipeline

EXAMPLE_GRAPH = "instructions_demo"
GROUPED = dg.AssetKey([EXAMPLE_GRAPH, "grouped_responses"])
RANKED = dg.AssetKey([EXAMPLE_GRAPH, "ranked_instructions"])

Run = Callable[..., dg.ExecuteInProcessResult]


@pytest.fixture(autouse=True)
def _default_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A pipeline built without ``cache_dir`` (e.g. by definitions.py) writes under tmp_path."""
    monkeypatch.setenv("DISTIL_DAGSTER_CACHE_DIR", str(tmp_path / "default-cache"))


@pytest.fixture
def cache_dir(tmp_path: Path) -> Path:
    return tmp_path / "cache"


@pytest.fixture
def example(cache_dir: Path) -> Pipeline:
    return build_instructions_pipeline(cache_dir)


@pytest.fixture
def instance() -> dg.DagsterInstance:
    return dg.DagsterInstance.ephemeral()


@pytest.fixture
def resources(cache_dir: Path) -> dict[str, Any]:
    return {
        "distil_dagster": DistilDagsterResource(
            cache_dir=str(cache_dir), fsync=False, step_retries=0, executor="inline"
        ),
        "distil_dagster_io_manager": DistilDagsterIOManager(),
    }


@pytest.fixture
def run(instance: dg.DagsterInstance, resources: dict[str, Any]) -> Run:
    def materialize(
        pipeline: Pipeline | None,
        *,
        selection: Sequence[dg.AssetKey] | None = None,
        run_config: dict[str, Any] | None = None,
        extra: Sequence[Any] = (),
        checks: bool = True,
        raise_on_error: bool = True,
        **resource_overrides: Any,
    ) -> dg.ExecuteInProcessResult:
        assets: list[Any] = list(extra)
        if pipeline is not None:
            assets.append(build_pipeline_assets(pipeline))
            if checks:
                assets.extend(build_pipeline_asset_checks(pipeline))
        return dg.materialize(
            assets,
            instance=instance,
            resources={**resources, **resource_overrides},
            selection=selection,
            run_config=run_config,
            raise_on_error=raise_on_error,
        )

    return materialize


def materialization(result: dg.ExecuteInProcessResult, key: dg.AssetKey) -> dict[str, Any]:
    """The metadata of ``key``'s materialization in ``result``, as plain values."""
    (event,) = [e for e in result.get_asset_materialization_events() if e.asset_key == key]
    metadata = event.materialization.metadata
    return {k: getattr(v, "value", v) for k, v in metadata.items()}


def ran_steps(result: dg.ExecuteInProcessResult) -> list[str]:
    """The ops that succeeded in ``result``, as step names (without the graph prefixes)."""
    return sorted(
        e.step_key.split(".")[-1].split("__")[-1] for e in result.all_events if e.is_step_success and e.step_key
    )
