"""Tasks the scheduler hands to workers and the results they send back: small, picklable messages.

A task names its inputs either as rows in memory (inline backend) or as slices of committed
batches (process backends: a worker reads them itself), and where its output goes: a leaf's
Parquet file, or the step's segment folder, where the worker appends it to its own segment.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Union

from distil_dagster.engine.batch import Batch, Rows

__all__ = ["GenerateTask", "ProcessTask", "SliceRef", "Task", "TaskResult"]


@dataclass(slots=True, frozen=True)
class SliceRef:
    """Rows ``[start, end)`` of a committed batch of ``size`` bytes: a whole file, or the range at
    ``offset`` in a segment."""

    path: str
    size: int | None
    start: int
    end: int
    offset: int | None = None


@dataclass(slots=True)
class ProcessTask:
    """Compute one input batch of a normal or global step.

    Attributes:
        batch: identity, last flag, provenance and (inline) the rows.
        inputs: (process backends) one list of slices per entry of ``batch.created_from``.
        output: (process backends) where the output batch goes: a leaf's Parquet file, or the
            folder of the step's segments (see ``segments``).
    """

    batch: Batch
    inputs: list[list[SliceRef]] | None = None
    output: str | None = None


@dataclass(slots=True)
class GenerateTask:
    """Produce the next batch of a generator, which resumes at ``offset`` rows."""

    step: str
    seq_no: int
    offset: int
    output: str | None = None


Task = Union[ProcessTask, GenerateTask]


@dataclass(slots=True)
class TaskResult:
    """A finished task: its rows (inline) or where the worker wrote them, and counters.

    ``file``/``offset``/``size``: the batch's Parquet file (``offset`` ``None``; ``first_row``: its
    first row there when the file holds the batches computed with it), or the segment and byte
    range the worker appended it to.

    ``error`` is set when the step failed in a way that stops the run; ``seconds`` is the time
    the worker spent on the task (not the time it waited in a queue).
    """

    task: Task
    rows: Rows = field(default_factory=list)
    num_rows: int = 0
    size: int | None = None
    last_batch: bool = False
    failed_rows: int = 0
    error: BaseException | None = None
    seconds: float = 0.0
    schema: Any = None  # the leaf file's pyarrow schema, when the worker wrote one
    file: str | None = None
    offset: int | None = None
    first_row: int | None = None
    arrow: bytes | None = None  # a small leaf batch's rows as Arrow IPC (see batch_store.arrow_bytes)
