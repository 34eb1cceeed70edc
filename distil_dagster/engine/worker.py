"""The loop of a step replica's worker process.

Data flow: the parent sends the step (pickled, loaded here), then tasks naming input slices of
committed batch files and an output path; the worker reads its inputs, runs the step (retries
and imputation as inline), writes the output file atomically and sends back counts. Logs travel
to the parent over the same pipe. SIGINT is ignored: the parent decides when to stop.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import pickle
import signal
import sys
import time
import traceback
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path

from distil_dagster.cache.batch_store import read_rows, write_rows
from distil_dagster.engine.batch import Batch, Rows
from distil_dagster.engine.step_runner import call_step
from distil_dagster.engine.tasks import GenerateTask, ProcessTask, SliceRef, Task, TaskResult
from distil_dagster.errors import RemoteError
from distil_dagster.steps.base import GeneratorStep, Step, _Step

__all__ = ["WorkerSpec", "worker_main"]


@dataclass
class WorkerSpec:
    """What a worker process needs: its step, replica number, environment and settings.

    Attributes:
        step: the pickled step, unpickled inside the worker so a failure is reported, not fatal.
        name: the step's name (for messages before the step exists).
        replica: the replica number.
        env: environment variables set before the step is unpickled (``CUDA_VISIBLE_DEVICES``).
        modules: ``(module name, file)`` of modules the worker cannot import by name (a file
            loaded by path, e.g. Dagster's ``-f definitions.py``): imported from their file first.
    """

    step: bytes
    name: str
    replica: int
    env: dict[str, str] = field(default_factory=dict)
    retries: int = 2
    fsync: bool = True
    modules: list[tuple[str, str]] = field(default_factory=list)


def _import_by_path(modules: list[tuple[str, str]]) -> None:
    for name, path in modules:
        if name in sys.modules:
            continue
        module_spec = importlib.util.spec_from_file_location(name, path)
        if module_spec is None or module_spec.loader is None:
            raise ImportError(f"cannot import module {name!r} from {path}")
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[name] = module
        module_spec.loader.exec_module(module)


def _unpickle_step(spec: WorkerSpec) -> _Step:
    _import_by_path(spec.modules)
    step = pickle.loads(spec.step)
    if not isinstance(step, _Step):
        raise TypeError(f"expected a step, got {type(step).__name__}")
    return step


class _PipeLogHandler(logging.Handler):
    def __init__(self, conn: Connection, prefix: str) -> None:
        super().__init__()
        self.conn = conn
        self.prefix = prefix

    def emit(self, record: logging.LogRecord) -> None:
        with contextlib.suppress(OSError, ValueError):  # the parent is gone; nothing left to tell
            self.conn.send(("log", record.levelno, f"{self.prefix} {self.format(record)}"))


class _FileCache:
    """The last few input files read (consecutive batches often slice the same upstream file)."""

    def __init__(self, size: int = 8) -> None:
        self.size = size
        self.files: OrderedDict[str, Rows] = OrderedDict()

    def rows(self, ref: SliceRef) -> Rows:
        rows = self.files.get(ref.path)
        if rows is None:
            rows = read_rows(Path(ref.path), ref.size)
            self.files[ref.path] = rows
            if len(self.files) > self.size:
                self.files.popitem(last=False)
        else:
            self.files.move_to_end(ref.path)
        return rows[ref.start : ref.end]


def worker_main(conn: Connection, spec: WorkerSpec) -> None:
    """Entry point of a worker process (spawned or forked from the forkserver)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.environ.update(spec.env)
    logger = logging.getLogger("distil_dagster")
    logger.handlers[:] = [_PipeLogHandler(conn, f"[{spec.name}:{spec.replica}]")]
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:
        step = _unpickle_step(spec)
    except BaseException:
        conn.send(("load_failed", "The step could not be recreated in its worker process:\n" + traceback.format_exc()))
        return
    try:
        step.load()
    except BaseException:
        conn.send(("load_failed", traceback.format_exc()))
        return
    conn.send(("loaded", None))
    generator: Iterator[tuple[Rows, bool]] | None = None
    files = _FileCache()
    try:
        while True:
            try:
                task: Task | None = conn.recv()
            except EOFError:
                return  # the parent died
            if task is None:
                return
            started = time.perf_counter()
            if isinstance(task, GenerateTask):
                assert isinstance(step, GeneratorStep)
                if generator is None:
                    generator = step.process_applying_mappings(task.offset)
                result = _generate(step, generator, task, spec)
            else:
                assert isinstance(step, Step)
                result = _process(step, task, files, spec, logger)
            result.seconds = time.perf_counter() - started
            conn.send(("result", result))
    finally:
        step.unload()


def _write(rows: Rows, output: str | None, step: str, fsync: bool) -> int | None:
    if not rows or output is None:
        return None
    return write_rows(Path(output), rows, step, fsync)


def _process(step: Step, task: ProcessTask, files: _FileCache, spec: WorkerSpec, logger: logging.Logger) -> TaskResult:
    batch = task.batch
    try:
        data = [[row for ref in refs for row in files.rows(ref)] for refs in task.inputs or []]
        full = Batch(batch.step, batch.seq_no, batch.last_batch, data, batch.created_from, batch.source_seq)
        result = call_step(step, full, spec.retries, logger)
        size = _write(result.rows, task.output, batch.step, spec.fsync)
    except Exception as exc:
        return _error(task, exc)
    return TaskResult(task, [], len(result.rows), size, batch.last_batch, result.failed_rows)


def _generate(
    step: GeneratorStep, generator: Iterator[tuple[Rows, bool]], task: GenerateTask, spec: WorkerSpec
) -> TaskResult:
    try:
        try:
            rows, last = next(generator)
        except StopIteration:
            rows, last = [], True
        rows = list(rows)
        size = _write(rows, task.output, task.step, spec.fsync)
    except Exception as exc:
        return _error(task, exc)
    return TaskResult(task, [], len(rows), size, bool(last))


def _error(task: Task, exc: BaseException) -> TaskResult:
    """An error crosses the pipe as text: its type, message and formatted traceback (cause included)."""
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return TaskResult(task, error=RemoteError(type(exc).__name__, str(exc), text))
