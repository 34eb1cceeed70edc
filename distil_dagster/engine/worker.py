"""The loop of a step replica's worker process.

Data flow: the parent sends the step (pickled, loaded here), then tasks naming input slices of
committed batches and where the output goes; the worker reads its inputs, runs the step (retries
and imputation as inline), writes a leaf's Parquet file atomically or appends an intermediate
batch to its own segment, and sends back where and how much it wrote. Batches may come as a group
(a list of tasks: the parent had several waiting for this worker): they are computed one after
another, each noted in shared memory as it starts (the parent times each batch and names it if
the worker dies), and their results go back in one message; a leaf's are written to one file, the first task's, each result
naming its first row there. Logs travel
to the parent over the same pipe. SIGINT and SIGTERM are ignored: the parent decides when to
stop (a signal to the whole process group must not kill the workers under a graceful stop).
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import pickle
import signal
import threading
import time
import traceback
from collections import OrderedDict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, NamedTuple

from distil_dagster.cache.batch_store import append_batch, arrow_bytes, read_rows, write_batch
from distil_dagster.cache.segments import SegmentWriter
from distil_dagster.engine.batch import Batch, Rows
from distil_dagster.engine.step_modules import import_by_path
from distil_dagster.engine.step_runner import StepCallResult, call_step
from distil_dagster.engine.tasks import GenerateTask, ProcessTask, SliceRef, Task, TaskResult
from distil_dagster.errors import RemoteError
from distil_dagster.steps.base import GeneratorStep, Step, _Step

__all__ = ["TaskRunner", "WorkerSpec", "load_step", "worker_main"]


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


def _unpickle_step(spec: WorkerSpec) -> _Step:
    import_by_path(spec.modules)
    step = pickle.loads(spec.step)
    if not isinstance(step, _Step):
        raise TypeError(f"expected a step, got {type(step).__name__}")
    return step


class _Pipe:
    """The worker's end of its pipe; sends are serialized (results and logs come from several threads)."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.lock = threading.Lock()

    def send(self, message: object) -> None:
        with self.lock:
            self.conn.send(message)


class _PipeLogHandler(logging.Handler):
    def __init__(self, pipe: _Pipe, prefix: str) -> None:
        super().__init__()
        self.pipe = pipe
        self.prefix = prefix

    def emit(self, record: logging.LogRecord) -> None:
        with contextlib.suppress(OSError, ValueError):  # the parent is gone; nothing left to tell
            self.pipe.send(("log", record.levelno, f"{self.prefix} {self.format(record)}"))


class _FileCache:
    """The last few input batches read (consecutive batches often slice the same upstream batch)."""

    def __init__(self, size: int = 8) -> None:
        self.size = size
        self.files: OrderedDict[tuple[str, int | None], Rows] = OrderedDict()
        self.lock = threading.Lock()

    def rows(self, ref: SliceRef) -> Rows:
        with self.lock:
            return self._rows(ref)

    def _rows(self, ref: SliceRef) -> Rows:
        key = (ref.path, ref.offset)
        rows = self.files.get(key)
        if rows is None:
            rows = read_rows(Path(ref.path), ref.size, ref.offset)
            self.files[key] = rows
            if len(self.files) > self.size:
                self.files.popitem(last=False)
        else:
            self.files.move_to_end(key)
        return rows[ref.start : ref.end]


class _Written(NamedTuple):
    """Where an output batch went and its size (all ``None``: an empty batch, no file)."""

    size: int | None = None
    file: str | None = None
    offset: int | None = None
    schema: Any = None  # a leaf file's pyarrow schema
    first_row: int | None = None  # in a leaf file shared with other batches
    arrow: bytes | None = None  # a small leaf batch's rows, for the parent's Arrow file

    def result(self, task: Task, num_rows: int, last_batch: bool, failed_rows: int = 0) -> TaskResult:
        """The task's result, saying where its output went."""
        return TaskResult(
            task,
            [],
            num_rows,
            self.size,
            last_batch,
            failed_rows,
            schema=self.schema,
            file=self.file,
            offset=self.offset,
            first_row=self.first_row,
            arrow=self.arrow,
        )


class _Output:
    """Where a replica's output batches go: a leaf's Parquet file per batch, or appended to the
    replica's own segment in the step's folder (one writer, created with the first batch)."""

    def __init__(self, step: str, fsync: bool) -> None:
        self.step = step
        self.fsync = fsync
        self.segments: SegmentWriter | None = None
        self.lock = threading.Lock()

    def write(self, rows: Rows, output: str | None) -> _Written:
        if not rows or output is None:
            return _Written()
        if output.endswith(".parquet"):
            size, table = write_batch(Path(output), rows, self.step, self.fsync)
            return _Written(size, output, None, None if table is None else table.schema, None, arrow_bytes(table))
        with self.lock:
            if self.segments is None:
                self.segments = SegmentWriter(Path(output), self.fsync)
        path, offset, size = append_batch(self.segments, rows)
        return _Written(size, str(path), offset)

    def write_shared(self, outputs: list[Rows], output: str) -> list[_Written]:
        """Several leaf batches into one Parquet file at ``output``, each counted by its first row
        (batches that cannot be stored together: each to its own file, see ``write``)."""
        size, table = write_batch(Path(output), [row for rows in outputs for row in rows], self.step, self.fsync)
        assert table is not None
        written, first = [], 0
        for rows in outputs:
            piece = table.slice(first, len(rows))
            written.append(_Written(size, output, None, table.schema, first, arrow_bytes(piece)))
            first += len(rows)
        return written

    def close(self) -> None:
        if self.segments is not None:
            self.segments.close()


def load_step(spec: WorkerSpec) -> tuple[_Step | None, str]:
    """Recreate and load the step of ``spec``: ``(step, "")``, or ``(None, traceback text)`` on failure."""
    try:
        step = _unpickle_step(spec)
    except BaseException:
        return None, "The step could not be recreated in its worker process:\n" + traceback.format_exc()
    try:
        step.load()
    except BaseException:
        return None, traceback.format_exc()
    return step, ""


class TaskRunner:
    """Runs the tasks of one loaded step replica, one at a time (any backend's worker side).

    Keeps what lives across tasks: the generator's iterator (recreated from the task's offset
    after a restart) and the last input files read.
    """

    def __init__(self, step: _Step, spec: WorkerSpec, logger: logging.Logger) -> None:
        self.step = step
        self.spec = spec
        self.logger = logger
        self.generator: Iterator[tuple[Rows, bool]] | None = None
        self.files = _FileCache()
        self.output = _Output(spec.name, spec.fsync)

    def run(self, task: Task) -> TaskResult:
        """Compute ``task``, write its output file and return the counts (errors as ``RemoteError``)."""
        started = time.perf_counter()
        if isinstance(task, GenerateTask):
            assert isinstance(self.step, GeneratorStep)
            if self.generator is None:
                self.generator = self.step.process_applying_mappings(task.offset)
            result = _generate(self.generator, task, self.output)
        else:
            assert isinstance(self.step, Step)
            result = _process(self.step, task, self.files, self.output, self.spec, self.logger)
        result.seconds = time.perf_counter() - started
        return result

    def run_group(self, tasks: list[ProcessTask], starting: Callable[[ProcessTask], None]) -> list[TaskResult]:
        """Compute ``tasks`` one after another (``starting(task)`` before each) and write their
        outputs: a leaf's into one file, the first task's."""
        assert isinstance(self.step, Step)
        computed: list[tuple[ProcessTask, StepCallResult | TaskResult, float]] = []
        for task in tasks:
            starting(task)
            started = time.perf_counter()
            try:
                done: StepCallResult | TaskResult = _compute(self.step, task, self.files, self.spec, self.logger)
            except Exception as exc:
                done = _error(task, exc)
            computed.append((task, done, time.perf_counter() - started))
        outputs = [
            (t, r)
            for t, r, _ in computed
            if isinstance(r, StepCallResult) and r.rows and t.output and t.output.endswith(".parquet")
        ]
        started = time.perf_counter()
        shared: dict[int, _Written] = {}
        if len(outputs) > 1:
            try:
                written = self.output.write_shared([r.rows for _, r in outputs], str(outputs[0][0].output))
                shared = {id(t): w for (t, _), w in zip(outputs, written)}
            except Exception:  # written one by one below: each failure is reported with its batch
                shared = {}
        results = []
        for task, done, seconds in computed:
            if isinstance(done, StepCallResult):
                try:
                    write = shared.get(id(task)) or self.output.write(done.rows, task.output)
                except Exception as exc:
                    done = _error(task, exc)
                else:
                    done = write.result(task, len(done.rows), task.batch.last_batch, done.failed_rows)
            done.seconds = seconds
            results.append(done)
        spent = (time.perf_counter() - started) / len(results)
        for result in results:
            result.seconds += spent
        return results

    def close(self) -> None:
        """Close the replica's segment (after its last task)."""
        self.output.close()


def worker_main(conn: Connection, spec: WorkerSpec, progress: Any = None) -> None:
    """Entry point of a worker process (spawned or forked from the forkserver).

    ``progress``: a shared ``[seq_no, time.monotonic()]`` where a group's batches are noted as they start.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    os.environ.update(spec.env)
    pipe = _Pipe(conn)
    logger = logging.getLogger("distil_dagster")
    logger.handlers[:] = [_PipeLogHandler(pipe, f"[{spec.name}:{spec.replica}]")]
    logger.setLevel(logging.INFO)
    logger.propagate = False
    step, failure = load_step(spec)
    if step is None:
        pipe.send(("load_failed", failure))
        return
    pipe.send(("loaded", None))
    gc.freeze()  # the loaded step and its models live as long as this process: full GC passes skip them
    runner = TaskRunner(step, spec, logger)
    slots = step.concurrent_batches() if isinstance(step, Step) and not step.is_global else 1
    # Several batches at once (I/O-bound steps): computed in threads; the parent never sends more.
    pool = ThreadPoolExecutor(slots, thread_name_prefix=spec.name) if slots > 1 else None
    try:
        while True:
            try:
                task: Task | None = conn.recv()
            except EOFError:
                return  # the parent died
            if task is None:
                return
            if isinstance(task, list):  # a group: computed in turn, results sent at once
                pipe.send(("results", runner.run_group(task, lambda t: _note(progress, t))))
            elif pool is None:
                pipe.send(("result", runner.run(task)))
            else:
                pool.submit(lambda t: pipe.send(("result", runner.run(t))), task)
    finally:
        if pool is not None:
            pool.shutdown(wait=True)
        runner.close()
        step.unload()


def _note(progress: Any, task: ProcessTask) -> None:
    """Note in shared memory that ``task`` starts now (the parent reads it for timeouts and messages)."""
    if progress is not None:
        with progress.get_lock():
            progress[0], progress[1] = task.batch.seq_no, time.monotonic()


def _compute(
    step: Step, task: ProcessTask, files: _FileCache, spec: WorkerSpec, logger: logging.Logger
) -> StepCallResult:
    batch = task.batch
    data = [[row for ref in refs for row in files.rows(ref)] for refs in task.inputs or []]
    full = Batch(batch.step, batch.seq_no, batch.last_batch, data, batch.created_from, batch.source_seq)
    return call_step(step, full, spec.retries, logger)


def _process(
    step: Step, task: ProcessTask, files: _FileCache, output: _Output, spec: WorkerSpec, logger: logging.Logger
) -> TaskResult:
    try:
        result = _compute(step, task, files, spec, logger)
        written = output.write(result.rows, task.output)
    except Exception as exc:
        return _error(task, exc)
    return written.result(task, len(result.rows), task.batch.last_batch, result.failed_rows)


def _generate(generator: Iterator[tuple[Rows, bool]], task: GenerateTask, output: _Output) -> TaskResult:
    try:
        try:
            rows, last = next(generator)
        except StopIteration:
            rows, last = [], True
        rows = list(rows)
        written = output.write(rows, task.output)
    except Exception as exc:
        return _error(task, exc)
    return written.result(task, len(rows), bool(last))


def _error(task: Task, exc: BaseException) -> TaskResult:
    """An error crosses the pipe as text: its type, message and formatted traceback (cause included)."""
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return TaskResult(task, error=RemoteError(type(exc).__name__, str(exc), text))
