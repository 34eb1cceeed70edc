"""Steps that misbehave on purpose inside Ray actors (importable by the actors' workers)."""

from __future__ import annotations

import json
import threading

from distil_dagster.steps import Step, StepInput
from distil_dagster.steps.typing import StepOutput


class AssignedResources(Step):
    """Adds ``assigned``: the resources Ray assigned to the actor running it (JSON)."""

    @property
    def inputs(self) -> list[str]:
        return ["id"]

    @property
    def outputs(self) -> list[str]:
        return ["assigned"]

    def process(self, *inputs: StepInput) -> StepOutput:
        import ray

        assigned = json.dumps(dict(sorted(ray.get_runtime_context().get_assigned_resources().items())))
        yield [{**row, "assigned": assigned} for row in inputs[0]]


_MEETING = threading.Barrier(2, timeout=20)


class MeetInPairs(Step):
    """Adds ``met``; each batch waits (20 s at most) until another batch of its process is running.

    With ``concurrent_batches() == 2`` two batches of one replica run at once and meet; one at a
    time, the first batch's wait times out and the step raises.
    """

    @property
    def inputs(self) -> list[str]:
        return ["id"]

    @property
    def outputs(self) -> list[str]:
        return ["met"]

    def concurrent_batches(self) -> int:
        return 2

    def process(self, *inputs: StepInput) -> StepOutput:
        _MEETING.wait()
        yield [{**row, "met": True} for row in inputs[0]]
