"""The local-process backend: one worker process per step replica.

Data flow: ``start`` launches every replica (forkserver by default: no threads or CUDA state
inherited, and workers fork from a process that already imported the engine) and waits until
each reports loaded or load-failed. ``submit`` sends a task to an idle replica of its step, or
queues it. ``receive`` blocks in ``multiprocessing.connection.wait`` on every worker's pipe and
process sentinel: a result, a log line, or a death (which fails the run at once, naming step,
replica and batch). Only small messages cross the pipes; rows travel through the cache files.

A lone sequential replica of a step whose batches take little time gets the batches queued for it
as one group, in one message, its results coming back in one (a leaf's group goes to one Parquet
file, see ``worker.py``): on fast steps the messages and a file per batch cost more than the
step. A group is about ``_GROUP_SECONDS`` of the step's recent work per batch, so a kill loses at
most that, and a slow step (an LLM) is never grouped.
"""

from __future__ import annotations

import contextlib
import logging
import pickle
import time
from collections import deque
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from typing import Any

from distil_dagster.engine.devices import assign_devices
from distil_dagster.engine.remote_errors import convert_remote_error, load_error
from distil_dagster.engine.remote_errors import task_label as _task_label
from distil_dagster.engine.step_modules import modules_by_path
from distil_dagster.engine.tasks import GenerateTask, ProcessTask, Task, TaskResult
from distil_dagster.engine.worker import WorkerSpec, worker_main
from distil_dagster.engine.worker_server import process_context
from distil_dagster.errors import (
    RemoteError,
    StepExecutionError,
    StepLoadError,
    StepTimeoutError,
    WorkerDiedError,
)
from distil_dagster.steps.base import Step, _Step

__all__ = ["ProcessBackend"]

_STOP_TIMEOUT = 10.0
#: A group of batches is about this many seconds of the step's work (what a kill costs).
_GROUP_SECONDS = 0.1
_GROUP_BATCHES = 64
_GROUP_ROWS = 10_000


def _task_key(task: Task) -> tuple[bool, int]:
    return (True, task.seq_no) if isinstance(task, GenerateTask) else (False, task.batch.seq_no)


@dataclass(eq=False)
class _Replica:
    """A worker process holding up to ``slots`` tasks: it computes that many at once
    (``Step.concurrent_batches``), or, when ``sequential``, computes one while the next waits
    in its pipe (so it never idles while its result travels to the scheduler and back)."""

    step: str
    index: int
    process: BaseProcess
    conn: Connection
    slots: int = 1
    sequential: bool = False
    tasks: dict[tuple[bool, int], Task] = field(default_factory=dict)
    started: dict[tuple[bool, int], float] = field(default_factory=dict)
    alive: bool = True
    #: ``[seq_no, time.monotonic()]`` of the batch of a group the worker last started (shared memory).
    progress: Any = None

    def computing(self) -> tuple[tuple[bool, int], float] | None:
        """The batch of a group the worker computes, and since when (``None``: not in a group)."""
        if self.progress is None:
            return None
        with self.progress.get_lock():
            seq, since = self.progress[0], self.progress[1]
        key = (False, int(seq))
        return (key, since) if seq >= 0 and key in self.tasks else None

    def since(self) -> float:
        """When the batch it computes (the earliest, computing several at once) started."""
        current = self.computing()
        return current[1] if current is not None else min(self.started.values(), default=time.monotonic())

    def label(self) -> str:
        """The batches it holds, for messages (a sequential worker's timed one is the one it computes)."""
        labels = {key: _task_label(task) for key, task in self.tasks.items()}
        current = self.computing()
        if not self.sequential or len(labels) < 2 or not (current or self.started):
            return ", ".join(labels.values()) or "no batch"
        keys = list(labels)
        at = keys.index(current[0] if current is not None else next(iter(self.started)))
        notes = []
        if at:
            notes.append(f"{', '.join(labels[k] for k in keys[:at])} computed with it, not yet written")
        if at + 1 < len(keys):
            notes.append(f"{', '.join(labels[k] for k in keys[at + 1 :])} waiting behind it")
        return f"{labels[keys[at]]} ({'; '.join(notes)})"


@dataclass
class _StepWorkers:
    replicas: list[_Replica] = field(default_factory=list)
    idle: deque[_Replica] = field(default_factory=deque)
    queue: deque[Task] = field(default_factory=deque)
    seconds: float | None = None  # recent worker seconds per batch (moving average)

    def take(self, replica: _Replica) -> list[Task]:
        """The next queued task, with those after it that join it in a group (see the module)."""
        tasks = [self.queue.popleft()]
        if not (replica.sequential and isinstance(tasks[0], ProcessTask) and self.seconds is not None):
            return tasks
        limit = min(_GROUP_BATCHES, int(_GROUP_SECONDS / max(self.seconds, 1e-6)))
        rows = _input_rows(tasks[0])
        while len(tasks) < limit and self.queue and isinstance(self.queue[0], ProcessTask):
            rows += _input_rows(self.queue[0])
            if rows > _GROUP_ROWS:
                break
            tasks.append(self.queue.popleft())
        return tasks


def _input_rows(task: Task) -> int:
    assert isinstance(task, ProcessTask)
    return sum(ref.end - ref.start for refs in task.inputs or [] for ref in refs)


class ProcessBackend:
    """Runs each step replica in its own process.

    Args:
        retries: extra attempts per failing batch (in the worker).
        fsync: workers fsync the files they write.
        logger: receives the workers' log lines.
        start_method: ``forkserver`` (default), ``spawn`` or ``fork``.
        envs: per step, per replica environment variables (e.g. ``CUDA_VISIBLE_DEVICES``).
        step_timeout: seconds a task may run before its worker is killed and the task fails with
            ``StepTimeoutError`` (``None``: no limit).
    """

    in_memory = False

    def __init__(
        self,
        retries: int,
        fsync: bool,
        logger: logging.Logger,
        start_method: str = "forkserver",
        envs: dict[str, list[dict[str, str]]] | None = None,
        step_timeout: float | None = None,
    ) -> None:
        self.retries = retries
        self.step_timeout = step_timeout
        self.fsync = fsync
        self.logger = logger
        self.context = process_context(start_method)
        self.envs = envs or {}
        self.cuda_devices: list[int | str] | None = None
        self.workers: dict[str, _StepWorkers] = {}
        self.replicas: list[_Replica] = []
        self._results: deque[TaskResult] = deque()

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self, steps: dict[str, _Step]) -> None:
        self.envs = {**assign_devices(steps, self.cuda_devices, self.logger), **self.envs}
        for name, step in steps.items():
            shipped = pickle.dumps(step.model_copy(update={"pipeline": None}))
            modules = modules_by_path(type(step))
            count = int(step.resources.replicas or 1) if not step.is_generator else 1
            group = self.workers[name] = _StepWorkers()
            for index in range(count):
                env = self.envs.get(name, [])
                spec = WorkerSpec(
                    shipped, name, index, env[index] if index < len(env) else {}, self.retries, self.fsync, modules
                )
                parent, child = self.context.Pipe()
                progress = self.context.Array("d", [-1.0, 0.0])
                process = self.context.Process(
                    target=worker_main, args=(child, spec, progress), name=f"{name}:{index}", daemon=True
                )
                process.start()
                child.close()
                slots = step.concurrent_batches() if isinstance(step, Step) and not step.is_global else 1
                # A lone sequential replica gets its next batch ahead; with several replicas each
                # holds one, so none waits on a batch queued behind another's (distilabel #1049).
                ahead = slots <= 1 and count == 1 and not step.is_global
                replica = _Replica(
                    name,
                    index,
                    process,
                    parent,
                    slots=2 if ahead else max(1, slots),
                    sequential=ahead,
                    progress=progress,
                )
                group.replicas.append(replica)
                self.replicas.append(replica)
        self._await_loaded()

    def _await_loaded(self) -> None:
        pending = set(self.replicas)
        while pending:
            ready = wait([r.conn for r in pending] + [r.process.sentinel for r in pending])
            for replica in list(pending):
                if replica.conn in ready:
                    kind, payload = self._recv(replica, loading=True)
                    if kind == "log":
                        continue
                    if kind == "load_failed":
                        raise load_error(replica.step, replica.index, str(payload))
                    pending.discard(replica)
                    self.workers[replica.step].idle.extend([replica] * replica.slots)
                    self.logger.info("Step '%s' loaded (replica %d).", replica.step, replica.index)
                elif replica.process.sentinel in ready:
                    raise StepLoadError(
                        f"Step '{replica.step}' (replica {replica.index}) died while loading "
                        f"(exit code {replica.process.exitcode}); no data was processed."
                    )

    def stop(self) -> None:
        for replica in self.replicas:
            with contextlib.suppress(OSError, ValueError):  # the worker may already be gone
                replica.conn.send(None)
        for replica in self.replicas:
            replica.process.join(_STOP_TIMEOUT)
            if replica.process.is_alive():
                self.logger.warning(
                    "Step '%s' (replica %d) did not stop in time; killing it.", replica.step, replica.index
                )
                replica.process.kill()
                replica.process.join(_STOP_TIMEOUT)
            replica.conn.close()
        self.replicas.clear()
        self.workers.clear()

    # -- tasks -----------------------------------------------------------------------------------
    def submit(self, task: Task) -> None:
        step = task.step if isinstance(task, GenerateTask) else task.batch.step
        group = self.workers[step]
        while group.idle and not group.idle[0].alive:
            group.idle.popleft()
        if group.idle:
            self._send(group.idle.popleft(), [task])
        elif any(r.alive for r in group.replicas):
            group.queue.append(task)
        else:
            self._results.append(TaskResult(task, error=WorkerDiedError(f"Step '{step}' has no live worker left.")))

    def _send(self, replica: _Replica, tasks: list[Task]) -> None:
        """Hand ``tasks`` to ``replica`` (several: a group). A batch's clock starts when the worker
        starts it: now, unless a sequential worker is busy (then when its results come)."""
        if not (replica.sequential and replica.tasks):
            replica.started[_task_key(tasks[0])] = time.monotonic()
        for task in tasks:
            replica.tasks[_task_key(task)] = task
        replica.conn.send(tasks if len(tasks) > 1 else tasks[0])

    def receive(self) -> TaskResult:
        while not self._results:
            busy = [r for r in self.replicas if r.tasks]
            if not busy:
                raise RuntimeError("receive() called with no task running; this is a bug, please report it.")
            ready = wait([r.conn for r in busy] + [r.process.sentinel for r in busy], self._wait_timeout(busy))
            for replica in busy:
                if replica.conn in ready:
                    self._drain(replica)
                elif replica.process.sentinel in ready:
                    self._died(replica)
            if not ready:
                self._expire(busy)
        return self._results.popleft()

    def _wait_timeout(self, busy: list[_Replica]) -> float | None:
        """Seconds until the first running task reaches the step timeout (``None``: no limit)."""
        if self.step_timeout is None or not busy:
            return None
        first = min(r.since() for r in busy) + self.step_timeout
        return max(0.0, first - time.monotonic())

    def _expire(self, busy: list[_Replica]) -> None:
        """Kill the workers whose task is past the step timeout; their tasks fail."""
        assert self.step_timeout is not None
        now = time.monotonic()
        for replica in busy:
            if not replica.tasks or now - replica.since() < self.step_timeout:
                continue
            self.logger.error(
                "Step '%s' (replica %d) exceeded the step timeout of %ss on %s; stopping its worker.",
                replica.step,
                replica.index,
                f"{self.step_timeout:g}",
                replica.label(),
            )
            error = StepTimeoutError(
                f"Step '{replica.step}' (replica {replica.index}) took longer than the step timeout of "
                f"{self.step_timeout:g}s on {replica.label()}; its worker was stopped. Committed "
                "batches are kept and the next run resumes from them (raise EngineConfig.step_timeout if "
                "the step is just slow)."
            )
            self._fail(replica, error)

    def _recv(self, replica: _Replica, loading: bool = False) -> tuple[str, Any]:
        try:
            message = replica.conn.recv()
        except (EOFError, OSError):
            if loading:
                replica.process.join(1.0)
                raise StepLoadError(
                    f"Step '{replica.step}' (replica {replica.index}) died while loading "
                    f"(exit code {replica.process.exitcode}); no data was processed."
                ) from None
            self._died(replica)
            return "died", None
        if message[0] == "log":
            self.logger.log(message[1], message[2])
            return "log", None
        return message[0], message[1]

    def _drain(self, replica: _Replica) -> None:
        kind, payload = self._recv(replica)
        if kind not in ("result", "results"):
            return
        group = self.workers[replica.step]
        for result in payload if kind == "results" else [payload]:
            key = _task_key(result.task)
            result.task = replica.tasks.pop(key, result.task)  # the scheduler's own object
            replica.started.pop(key, None)
            if isinstance(result.error, RemoteError):
                result.error = convert_remote_error(result.error, replica.step, replica.index, result.task)
            elif result.error is None:
                group.seconds = result.seconds if group.seconds is None else 0.8 * group.seconds + 0.2 * result.seconds
            self._results.append(result)
        if replica.sequential and replica.tasks:  # the batch waiting in its pipe starts now
            replica.started = {next(iter(replica.tasks)): time.monotonic()}
        if group.queue:
            self._send(replica, group.take(replica))
        else:
            group.idle.append(replica)

    def _died(self, replica: _Replica) -> None:
        replica.process.join(1.0)
        error = WorkerDiedError(
            f"The worker of step '{replica.step}' (replica {replica.index}) died with exit code "
            f"{replica.process.exitcode} while processing {replica.label()}; committed batches are "
            "kept and the next run resumes from them."
        )
        self._fail(replica, error)

    def _fail(self, replica: _Replica, error: StepExecutionError) -> None:
        """Retire a dead or stopped worker: its tasks fail with ``error`` (which stops the run).

        Tasks queued for its step fail too once no replica of the step is left; the other
        workers finish what they hold, so their results are still committed.
        """
        if replica.process.is_alive():
            replica.process.kill()
            replica.process.join(_STOP_TIMEOUT)
        replica.alive = False
        tasks = list(replica.tasks.values())
        replica.tasks.clear()
        replica.started.clear()
        self._results.extend(TaskResult(task, error=error) for task in tasks)
        group = self.workers[replica.step]
        if not any(r.alive for r in group.replicas):
            while group.queue:
                self._results.append(TaskResult(group.queue.popleft(), error=error))
