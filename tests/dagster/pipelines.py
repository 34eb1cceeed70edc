"""Small pipelines for the Dagster tests (the shipped example covers routing and convergence)."""

from __future__ import annotations

import threading
from pathlib import Path

from distil_dagster.pipeline import Pipeline
from distil_dagster.steps import GlobalStep, LoadDataFromDicts, Step, StepInput
from distil_dagster.steps.typing import StepOutput

ROWS = 20


class Double(Step):
    """Adds ``double``: twice ``id``; raises on ids divisible by ``fail_every`` (0: never)."""

    fail_every: int = 0

    @property
    def inputs(self) -> list[str]:
        return ["id"]

    @property
    def outputs(self) -> list[str]:
        return ["double"]

    def process(self, *inputs: StepInput) -> StepOutput:
        rows = inputs[0]
        if self.fail_every and any(row["id"] % self.fail_every == 0 for row in rows):
            raise RuntimeError("flaky model")
        for row in rows:
            row["double"] = row["id"] * 2
        yield rows


class Explode(GlobalStep):
    """A global step that always fails (stops the run)."""

    @property
    def outputs(self) -> list[str]:
        return ["boom"]

    def process(self, *inputs: StepInput) -> StepOutput:
        raise RuntimeError("the global step exploded")


class Gate(Step):
    """Passes rows through; from batch ``hold_from`` on it waits for :data:`GATE` (bounded)."""

    hold_from: int = 1

    @property
    def outputs(self) -> list[str]:
        return ["passed"]

    def process(self, *inputs: StepInput) -> StepOutput:
        rows = inputs[0]
        if rows and rows[0]["id"] >= self.hold_from:
            GATE.wait(timeout=30)
        for row in rows:
            row["passed"] = True
        yield rows


GATE = threading.Event()
"""Released by the test that uses :class:`Gate` (one such test at a time in a process)."""


def build_linear(cache_dir: Path, *, fail_every: int = 0, name: str = "linear") -> Pipeline:
    """load -> double: one leaf, ``input_batch_size=1`` so a failing row fails alone."""
    with Pipeline(name=name, cache_dir=cache_dir) as pipeline:
        load = LoadDataFromDicts(name="load", data=[{"id": i} for i in range(ROWS)], batch_size=5)
        load >> Double(name="double", fail_every=fail_every, input_batch_size=1)
    return pipeline


def build_exploding(cache_dir: Path) -> Pipeline:
    """load -> explode (a global step that raises)."""
    with Pipeline(name="exploding", cache_dir=cache_dir) as pipeline:
        load = LoadDataFromDicts(name="load", data=[{"id": i} for i in range(ROWS)], batch_size=5)
        load >> Explode(name="explode")
    return pipeline


def build_gated(cache_dir: Path) -> Pipeline:
    """load -> gate, one row per batch; the gate holds from row 1 until :data:`GATE` is set."""
    with Pipeline(name="gated", cache_dir=cache_dir) as pipeline:
        load = LoadDataFromDicts(name="load", data=[{"id": i} for i in range(ROWS)], batch_size=1)
        load >> Gate(name="gate", input_batch_size=1)
    return pipeline
