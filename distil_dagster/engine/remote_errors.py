"""Failures reported by a worker (a process or a Ray actor), as the errors inline execution raises.

A worker sends an error as text (``RemoteError``: class name, message, traceback); the driver
rebuilds the matching ``distil_dagster.errors`` class, names step, replica and batch, and chains
the worker's traceback as ``__cause__`` (a ``RemoteTraceback``).
"""

from __future__ import annotations

from distil_dagster import errors
from distil_dagster.engine.tasks import GenerateTask, Task
from distil_dagster.errors import RemoteError, RemoteTraceback, StepExecutionError, StepLoadError

__all__ = ["convert_remote_error", "load_error", "task_label"]


def task_label(task: Task | None) -> str:
    """``batch <seq_no>`` of a task (``no batch`` without one)."""
    if task is None:
        return "no batch"
    seq = task.seq_no if isinstance(task, GenerateTask) else task.batch.seq_no
    return f"batch {seq}"


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else ""


def load_error(step: str, replica: int, traceback: str) -> StepLoadError:
    """A replica's failed ``load()`` (or unpickling): its last line in the message, the traceback as cause."""
    error = StepLoadError(
        f"Step '{step}' (replica {replica}) failed to load; no data was processed. {_last_line(traceback)}"
    )
    error.__cause__ = RemoteTraceback(traceback)
    return error


def convert_remote_error(remote: RemoteError, step: str, replica: int, task: Task | None) -> errors.DistilDagsterError:
    """The worker's error as the class inline execution raises (traceback text as cause)."""
    cls = getattr(errors, remote.kind, None)
    label = f"step '{step}' (replica {replica}, {task_label(task)})"
    error: errors.DistilDagsterError
    if isinstance(task, GenerateTask) and not (isinstance(cls, type) and issubclass(cls, StepExecutionError)):
        error = errors.GeneratorStepError(f"Generator step '{step}' failed in {label}: {remote}.")
    elif (
        isinstance(cls, type)
        and issubclass(cls, errors.DistilDagsterError)
        and cls is not errors.PipelineValidationError
    ):
        error = cls(f"{remote.message} [in {label}]")
    else:
        error = StepExecutionError(f"{remote.kind} in {label}: {remote.message}")
    error.__cause__ = RemoteTraceback(remote.traceback)
    return error
