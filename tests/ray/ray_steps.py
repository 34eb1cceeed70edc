"""Steps that misbehave on purpose inside Ray actors (importable by the actors' workers)."""

from __future__ import annotations

import json
import os
import threading

from distil_dagster.steps import Step, StepInput
from distil_dagster.steps.typing import StepOutput


class ExitOnce(Step):
    """Adds ``double``; the first time it sees ``fault_id`` its process exits (``os._exit(3)``).

    ``marker`` (a file) records that the fault fired: it is created just before the exit, so the
    restarted actor computes the batch normally.
    """

    fault_id: int = -1
    marker: str = ""

    signature_exclude = frozenset({"marker"})

    @property
    def inputs(self) -> list[str]:
        return ["id"]

    @property
    def outputs(self) -> list[str]:
        return ["double"]

    def process(self, *inputs: StepInput) -> StepOutput:
        rows = inputs[0]
        if any(r["id"] == self.fault_id for r in rows) and not os.path.exists(self.marker):
            open(self.marker, "w").close()
            os._exit(3)
        yield [{**row, "double": row["id"] * 2} for row in rows]


class SignalOnce(Step):
    """Adds ``double``; on the batch holding ``fault_id`` it sends ``signum`` to ``signal_pid``, once
    (``marker``, a file, records that it did)."""

    fault_id: int = -1
    signal_pid: int = 0
    signum: int = 15
    marker: str = ""

    signature_exclude = frozenset({"signal_pid", "marker"})

    @property
    def inputs(self) -> list[str]:
        return ["id"]

    @property
    def outputs(self) -> list[str]:
        return ["double"]

    def process(self, *inputs: StepInput) -> StepOutput:
        rows = inputs[0]
        if any(r["id"] == self.fault_id for r in rows) and not os.path.exists(self.marker):
            open(self.marker, "w").close()
            os.kill(self.signal_pid, self.signum)
        yield [{**row, "double": row["id"] * 2} for row in rows]


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
