"""A fault scenario's pipeline as Dagster assets, for ``dagster asset materialize`` in a child.

    FAULT_SPEC=<Spec JSON> FAULT_ENGINE=<JSON: executor, step_timeout, lock_timeout> \\
    DISTIL_DAGSTER_CACHE_DIR=... dagster asset materialize -f tests/reliability/children/dagster_fault_definitions.py --select '*'

The pipeline is the one ``fault_target.py`` builds from the same spec (same signature folder).
"""

import json
import os

import dagster as dg

from distil_dagster.dagster import (
    DistilDagsterIOManager,
    DistilDagsterResource,
    build_pipeline_asset_checks,
    build_pipeline_assets,
)
from tests.reliability.children.pipelines import Spec, build

spec = Spec.from_json(os.environ["FAULT_SPEC"])
engine = json.loads(os.environ.get("FAULT_ENGINE", "{}"))
pipeline = build(spec)

defs = dg.Definitions(
    assets=[build_pipeline_assets(pipeline)],
    asset_checks=build_pipeline_asset_checks(pipeline),
    resources={
        "distil_dagster": DistilDagsterResource(
            executor=engine.get("executor", "processes"),
            step_timeout=engine.get("step_timeout"),
            lock_timeout=engine.get("lock_timeout", 60.0),
            progress_interval=0.1,
            stop_timeout=30.0,
        ),
        "distil_dagster_io_manager": DistilDagsterIOManager(),
    },
    executor=dg.in_process_executor,
)
