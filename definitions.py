"""Example Dagster definitions: the shipped example pipeline as assets, ready for ``dagster dev``.

    dagster dev -w workspace.yaml
    dagster asset materialize -f definitions.py --select 'instructions_demo/*'

Everything works offline: ``instructions_demo`` answers with templates; ``smol_demo`` with real
models shipped inside PyPI packages (SmolLM2-135M-Instruct, all-MiniLM-L6-v2). The cache lives
in ``DISTIL_DAGSTER_CACHE_DIR`` (default ``~/.cache/distil_dagster/pipelines``). Runtime
parameters are the run config of the graph ``instructions_demo``, e.g.
``{"ops": {"instructions_demo": {"config": {"concise": {"template": "TL;DR: {instruction}"}}}}}``.
"""

import dagster as dg

from distil_dagster.dagster import (
    DEFAULT_IO_MANAGER_KEY,
    DEFAULT_RESOURCE_KEY,
    DistilDagsterIOManager,
    DistilDagsterResource,
    build_pipeline_asset_checks,
    build_pipeline_assets,
)
from distil_dagster.examples.pipelines import build_instructions_pipeline
from distil_dagster.examples.smol_pipeline import build_smol_pipeline

instructions = build_instructions_pipeline()
instructions_assets = build_pipeline_assets(instructions)
# Real models, offline: SmolLM2-135M-Instruct answers, MiniLM embeds, near-duplicates are removed.
smol = build_smol_pipeline()
smol_assets = build_pipeline_assets(smol)

nightly_instructions = dg.ScheduleDefinition(
    name="instructions_demo_nightly",
    cron_schedule="0 3 * * *",
    target=dg.AssetSelection.assets(instructions_assets),
    description="Materialize every leaf of the example pipeline each night (resumes from the cache).",
    default_status=dg.DefaultScheduleStatus.STOPPED,
)

defs = dg.Definitions(
    assets=[instructions_assets, smol_assets],
    asset_checks=[*build_pipeline_asset_checks(instructions), *build_pipeline_asset_checks(smol)],
    schedules=[nightly_instructions],
    resources={
        DEFAULT_RESOURCE_KEY: DistilDagsterResource(),
        DEFAULT_IO_MANAGER_KEY: DistilDagsterIOManager(),
    },
    # The engine runs steps in parallel itself: one Dagster process per run drives one engine.
    executor=dg.in_process_executor,
)
