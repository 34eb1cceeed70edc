"""The worker side of the Ray backend: a step replica as a Ray actor.

Data flow: the constructor (re-run by Ray when it restarts the actor) recreates and loads the
step with worker.py's code; ``run`` computes one task with worker.py's ``TaskRunner`` (inputs
read from committed batch files, the output file written here) and returns the small result
with the log lines the task produced, which the driver writes to the run's log.
"""

from __future__ import annotations

import logging
import os
import sys

from distil_dagster.engine.tasks import Task, TaskResult
from distil_dagster.engine.worker import TaskRunner, WorkerSpec, load_step
from distil_dagster.errors import RemoteError

__all__ = ["LogLines", "StepActor"]

LogLines = list[tuple[int, str]]


class _LogBuffer(logging.Handler):
    """Keeps an actor's log lines until its next reply carries them to the driver."""

    def __init__(self, prefix: str) -> None:
        super().__init__()
        self.prefix = prefix
        self.lines: LogLines = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append((record.levelno, f"{self.prefix} {self.format(record)}"))

    def take(self) -> LogLines:
        lines, self.lines = self.lines, []
        return lines


class StepActor:
    """The worker side of a replica, run as a Ray actor: worker.py's loading and task code.

    The step is loaded in the constructor, so an actor restarted by Ray loads it again.
    ``sys_path``: the driver's import path; folders of it that exist here and are missing from
    the actor's path are appended (as a spawned process inherits its parent's path).
    """

    def __init__(self, spec: WorkerSpec, sys_path: list[str]) -> None:
        os.environ.update(spec.env)
        sys.path.extend(p for p in sys_path if p not in sys.path and os.path.isdir(p))
        self.logs = _LogBuffer(f"[{spec.name}:{spec.replica}]")
        logger = logging.getLogger("distil_dagster")
        logger.handlers[:] = [self.logs]
        logger.setLevel(logging.INFO)
        logger.propagate = False
        self.step, self.failure = load_step(spec)
        self.runner = TaskRunner(self.step, spec, logger) if self.step is not None else None

    def ready(self) -> tuple[str, LogLines]:
        """The load failure's traceback ("" when loaded), and the log lines so far."""
        return self.failure, self.logs.take()

    def run(self, task: Task) -> tuple[TaskResult, LogLines]:
        """Run one task; returns its result and the log lines it produced."""
        if self.runner is None:  # restarted by Ray, and loading failed this time
            message = self.failure.strip().splitlines()[-1] if self.failure.strip() else "load failed"
            return TaskResult(task, error=RemoteError("StepLoadError", message, self.failure)), self.logs.take()
        return self.runner.run(task), self.logs.take()

    def stop(self) -> LogLines:
        """Close the replica's segment, unload the step; returns the last log lines."""
        if self.runner is not None:
            self.runner.close()
        if self.step is not None:
            self.step.unload()
            self.step = None
        return self.logs.take()
