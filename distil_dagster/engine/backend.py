"""The worker backend interface: how the scheduler talks to step replicas.

Four calls: ``start`` (load every step replica), ``submit`` (a task), ``receive`` (block for the
next result) and ``stop`` (unload). Tasks and results are small plain objects (``tasks.py``), so
a process or Ray backend carries them as messages. ``in_memory`` tells the scheduler whether the
backend takes rows in the task (inline) or reads committed files itself (process backends).
"""

from __future__ import annotations

from typing import Protocol

from distil_dagster.engine.tasks import Task, TaskResult
from distil_dagster.steps.base import _Step

__all__ = ["WorkerBackend"]


class WorkerBackend(Protocol):
    """Runs step replicas; the scheduler never calls a step directly."""

    in_memory: bool

    def start(self, steps: dict[str, _Step]) -> None:
        """Load every step replica; raise ``StepLoadError`` naming step and replica on failure."""

    def submit(self, task: Task) -> None:
        """Hand a task to a replica of its step (queued while all replicas are busy)."""

    def receive(self) -> TaskResult:
        """Block until the next task finishes and return its result."""

    def stop(self) -> None:
        """Unload and stop every replica; always called, also after a failure."""
