"""The example pipeline's assets under Dagster's multiprocess executor (each op in its own process).

The shipped definitions use the in-process executor; this file checks the assets stay correct
when every op has its own resource and engine: the cache lock serializes the engines and the
commit journal makes the later ones reuse what the first computed.
"""

import dagster as dg

from distil_dagster.dagster import (
    DistilDagsterIOManager,
    DistilDagsterResource,
    build_pipeline_assets,
)
from distil_dagster.examples.pipelines import build_instructions_pipeline

defs = dg.Definitions(
    assets=[build_pipeline_assets(build_instructions_pipeline())],
    resources={
        "distil_dagster": DistilDagsterResource(),
        "distil_dagster_io_manager": DistilDagsterIOManager(),
    },
    executor=dg.multiprocess_executor.configured({"max_concurrent": 2}),
)
