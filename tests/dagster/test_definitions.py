"""definitions.py: loads, validates with the dagster CLI, and its schedule asks for a run."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import dagster as dg
import pytest

from tests.dagster.conftest import GROUPED, RANKED

pytestmark = pytest.mark.timeout(60)

REPO = Path(__file__).resolve().parents[2]
DAGSTER = Path(sys.executable).with_name("dagster")


@pytest.fixture
def definitions() -> ModuleType:
    spec = importlib.util.spec_from_file_location("distil_dagster_example_definitions", REPO / "definitions.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_definitions_expose_the_example_with_offline_defaults(definitions: ModuleType) -> None:
    defs: dg.Definitions = definitions.defs

    assert {GROUPED, RANKED} <= set(defs.resolve_asset_graph().get_all_asset_keys())
    job = defs.resolve_implicit_global_asset_job_def()
    assert job.executor_def is dg.in_process_executor
    assert job.execute_in_process(instance=dg.DagsterInstance.ephemeral()).success


def test_the_schedule_requests_a_run_of_every_leaf(definitions: ModuleType) -> None:
    defs: dg.Definitions = definitions.defs
    schedule = defs.resolve_schedule_def("instructions_demo_nightly")

    with dg.build_schedule_context(repository_def=defs.get_repository_def()) as context:
        result = schedule.evaluate_tick(context)

    (request,) = result.run_requests or []
    assert request.run_config == {}  # every runtime parameter has its default
    job = defs.resolve_job_def(schedule.job_name)  # the request runs the schedule's job
    assert job.asset_layer.selected_asset_keys == {GROUPED, RANKED}
    assert job.executor_def is dg.in_process_executor


def test_dagster_definitions_validate_passes(tmp_path: Path) -> None:
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path), "DISTIL_DAGSTER_CACHE_DIR": str(tmp_path / "cache")}
    (tmp_path / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")

    done = subprocess.run(
        [str(DAGSTER), "definitions", "validate", "-f", "definitions.py"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert done.returncode == 0, done.stderr[-3000:]
    assert "All code locations passed validation" in done.stderr + done.stdout
