"""One kill-test shape as Dagster assets, for ``dagster asset materialize`` in the reliability suite.

    KILL_SHAPE=fanin DISTIL_DAGSTER_CACHE_DIR=... dagster asset materialize -f tests/reliability/dagster_kill_definitions.py --select '*'

The pipeline is ``tests/e2e/kill_target.py``'s, so its leaves compare with a ``pipeline.run()``.
"""

import os

import dagster as dg

from distil_dagster.dagster import DistilDagsterIOManager, DistilDagsterResource, build_pipeline_assets
from tests.e2e.kill_target import build

pipeline = build(os.environ.get("KILL_SHAPE", "linear"), cache_dir=None)

defs = dg.Definitions(
    assets=[build_pipeline_assets(pipeline)],
    resources={
        "distil_dagster": DistilDagsterResource(),
        "distil_dagster_io_manager": DistilDagsterIOManager(),
    },
    executor=dg.in_process_executor,
)
