"""The Dagster face of distil_dagster: leaf steps as assets, the engine as a resource, the cache as an IO manager.

```python
from distil_dagster.dagster import (
    DistilDagsterIOManager, DistilDagsterResource, build_pipeline_asset_checks, build_pipeline_assets,
)

assets = build_pipeline_assets(pipeline)
defs = dg.Definitions(
    assets=[assets],
    asset_checks=build_pipeline_asset_checks(pipeline),
    resources={"distil_dagster": DistilDagsterResource(), "distil_dagster_io_manager": DistilDagsterIOManager()},
    executor=dg.in_process_executor,
)
```

This package is the only one importing ``dagster``; it drives the engine through
``distil_dagster.engine.runner.execute_pipeline``, the API ``Pipeline.run()`` uses.
"""

from distil_dagster.dagster.assets import DEFAULT_IO_MANAGER_KEY, DEFAULT_RESOURCE_KEY, build_pipeline_assets
from distil_dagster.dagster.checks import build_pipeline_asset_checks
from distil_dagster.dagster.engine_run import EngineRunError
from distil_dagster.dagster.io_manager import DistilDagsterIOManager, LeafDataError
from distil_dagster.dagster.leaf_data import LeafOutput
from distil_dagster.dagster.resource import DistilDagsterResource
from distil_dagster.dagster.run_config import build_run_config
from distil_dagster.dagster.translator import DistilDagsterTranslator, LeafStep

__all__ = [
    "DEFAULT_IO_MANAGER_KEY",
    "DEFAULT_RESOURCE_KEY",
    "DistilDagsterIOManager",
    "DistilDagsterResource",
    "DistilDagsterTranslator",
    "EngineRunError",
    "LeafDataError",
    "LeafOutput",
    "LeafStep",
    "build_pipeline_asset_checks",
    "build_pipeline_assets",
    "build_run_config",
]
