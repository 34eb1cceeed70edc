"""A slow pipeline as Dagster assets, for the kill-and-rematerialize CLI test.

    DISTIL_DAGSTER_CACHE_DIR=... dagster asset materialize -f tests/e2e/dagster_slow_definitions.py --select slow_hash/hash_b

``load`` (240 ids) -> ``hash_a`` -> ``hash_b`` (the leaf): each hash step does CPU work per row
standing in for a model call, so a run lasts seconds and can be killed in the middle. Progress
is reported every 0.1 s, so the test sees batches being committed.
"""

import hashlib

import dagster as dg

from distil_dagster.dagster import (
    DistilDagsterIOManager,
    DistilDagsterResource,
    build_pipeline_asset_checks,
    build_pipeline_assets,
)
from distil_dagster.pipeline import Pipeline
from distil_dagster.steps import LoadDataFromDicts, Step, StepInput
from distil_dagster.steps.typing import StepOutput

ROWS = 240
ROUNDS = 30000


def digest(value: int, rounds: int = ROUNDS) -> str:
    """The hash ``hash_a``/``hash_b`` compute for ``value`` (the test recomputes it)."""
    data = str(value).encode()
    for _ in range(rounds):
        data = hashlib.sha256(data).digest()
    return data.hex()[:12]


class Hash(Step):
    """Adds ``<column>``: :func:`digest` of ``id`` plus ``offset``."""

    column: str
    offset: int = 0

    @property
    def inputs(self) -> list[str]:
        return ["id"]

    @property
    def outputs(self) -> list[str]:
        return [self.column]

    def process(self, *inputs: StepInput) -> StepOutput:
        rows = inputs[0]
        for row in rows:
            row[self.column] = digest(row["id"] + self.offset)
        yield rows


with Pipeline(name="slow-hash") as slow_hash:
    load = LoadDataFromDicts(name="load", data=[{"id": i} for i in range(ROWS)], batch_size=8)
    hash_a = Hash(name="hash_a", column="ha", input_batch_size=8)
    hash_b = Hash(name="hash_b", column="hb", offset=1, input_batch_size=8)
    load >> hash_a >> hash_b

defs = dg.Definitions(
    assets=[build_pipeline_assets(slow_hash)],
    asset_checks=build_pipeline_asset_checks(slow_hash),
    resources={
        "distil_dagster": DistilDagsterResource(progress_interval=0.1),
        "distil_dagster_io_manager": DistilDagsterIOManager(),
    },
    executor=dg.in_process_executor,
)
