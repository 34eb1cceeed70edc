"""The worker backend interface and the inline backend.

The scheduler talks to workers through four calls: ``start`` (load every step replica),
``submit`` (a task), ``receive`` (block for the next result) and ``stop`` (unload). Tasks and
results are small plain objects, so a process or Ray backend can carry them as messages.
The inline backend runs every task in the calling thread, one at a time: the reference
behaviour the other backends must match.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol, Union

from distil_dagster.engine.batch import Batch, Rows
from distil_dagster.engine.step_runner import call_step
from distil_dagster.errors import GeneratorStepError, StepExecutionError, StepLoadError
from distil_dagster.steps.base import GeneratorStep, Step, _Step

__all__ = ["GenerateTask", "InlineBackend", "ProcessTask", "Task", "TaskResult", "WorkerBackend"]


@dataclass(slots=True)
class ProcessTask:
    """Compute one input batch of a normal or global step."""

    batch: Batch


@dataclass(slots=True)
class GenerateTask:
    """Produce the next batch of a generator, which resumes at ``offset`` rows."""

    step: str
    seq_no: int
    offset: int


Task = Union[ProcessTask, GenerateTask]


@dataclass(slots=True)
class TaskResult:
    """What a worker sends back: the rows (or the error that stops the run)."""

    task: Task
    rows: Rows = field(default_factory=list)
    last_batch: bool = False
    failed_rows: int = 0
    error: StepExecutionError | None = None


class WorkerBackend(Protocol):
    """Runs step replicas; the scheduler never touches steps directly."""

    def start(self, steps: dict[str, _Step]) -> None:
        """Load every step (replica); raise :class:`StepLoadError` naming the step on failure."""

    def submit(self, task: Task) -> None:
        """Hand a task to a worker of its step."""

    def receive(self) -> TaskResult:
        """Block until the next task finishes and return its result."""

    def stop(self) -> None:
        """Unload every loaded step; always called."""


class InlineBackend:
    """Runs every step in the calling process, one task at a time."""

    def __init__(self, retries: int, logger: logging.Logger) -> None:
        self.retries = retries
        self.logger = logger
        self.steps: dict[str, _Step] = {}
        self._loaded: list[_Step] = []
        self._results: deque[TaskResult] = deque()
        self._generators: dict[str, Iterator[tuple[Rows, bool]]] = {}

    def start(self, steps: dict[str, _Step]) -> None:
        self.steps = steps
        for name, step in steps.items():
            try:
                step.load()
            except Exception as exc:
                raise StepLoadError(
                    f"Step '{name}' (replica 0) failed to load: {exc!r}; no data was processed."
                ) from exc
            self._loaded.append(step)
            self.logger.info("Step '%s' loaded (replica 0).", name)

    def submit(self, task: Task) -> None:
        if isinstance(task, GenerateTask):
            self._results.append(self._generate(task))
            return
        step = self.steps[task.batch.step]
        assert isinstance(step, Step)
        try:
            result = call_step(step, task.batch, self.retries, self.logger)
        except StepExecutionError as exc:
            self._results.append(TaskResult(task, error=exc))
            return
        self._results.append(TaskResult(task, result.rows, task.batch.last_batch, result.failed_rows))

    def _generate(self, task: GenerateTask) -> TaskResult:
        step = self.steps[task.step]
        assert isinstance(step, GeneratorStep)
        iterator = self._generators.get(task.step)
        if iterator is None:
            iterator = self._generators[task.step] = step.process_applying_mappings(task.offset)
        try:
            rows, last = next(iterator)
        except StopIteration:
            rows, last = [], True
        except Exception as exc:
            error = GeneratorStepError(
                f"Generator step '{task.step}' failed producing batch {task.seq_no} (offset {task.offset}): {exc!r}."
            )
            error.__cause__ = exc
            return TaskResult(task, error=error)
        return TaskResult(task, list(rows), bool(last))

    def receive(self) -> TaskResult:
        return self._results.popleft()

    def stop(self) -> None:
        for iterator in self._generators.values():
            close = getattr(iterator, "close", None)
            if close is not None:
                close()
        while self._loaded:
            step = self._loaded.pop()
            try:
                step.unload()
            except Exception:
                self.logger.exception("Step '%s' failed to unload.", step.name)
