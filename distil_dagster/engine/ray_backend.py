"""The Ray backend: one Ray actor per step replica, batches handed over through the cache folder.

Data flow: ``start`` connects to Ray (starting a local instance when none is running), creates
one actor per step replica with the step's resources (CPUs, GPUs, memory, custom resources; Ray
places GPU steps and sets their ``CUDA_VISIBLE_DEVICES``) and waits until each has loaded its
step. ``submit`` calls ``run`` on a replica with a free slot (one, or ``Step.concurrent_batches``
in a threaded actor) or queues the task; ``receive`` blocks in ``ray.wait`` on the calls in
flight, bounded by the first step timeout. As with local processes, actors read their inputs from committed batch files and write
their output file themselves (the cache folder must be shared storage on a cluster); only tasks,
counts and log lines travel through Ray. The scheduler and the commit protocol stay here, in the
driver. A dead actor is restarted by Ray (``max_restarts``) and its batch re-submitted, a bounded
number of times; then the task fails with ``WorkerDiedError``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import ray
from ray.exceptions import RayError, RayTaskError

from distil_dagster.engine.devices import required_gpus
from distil_dagster.engine.ray_actor import LogLines, StepActor
from distil_dagster.engine.remote_errors import convert_remote_error, load_error, task_label
from distil_dagster.engine.step_modules import modules_by_path
from distil_dagster.engine.tasks import GenerateTask, Task, TaskResult
from distil_dagster.engine.worker import WorkerSpec
from distil_dagster.errors import (
    PipelineValidationError,
    RemoteError,
    RemoteTraceback,
    StepExecutionError,
    StepLoadError,
    StepTimeoutError,
    WorkerDiedError,
)
from distil_dagster.steps.base import Step, _Step

__all__ = ["RayBackend", "actor_options"]

_STOP_TIMEOUT = 10.0
_PLACEMENT_LOG_INTERVAL = 30.0


@dataclass(eq=False)
class _Replica:
    """An actor; it computes up to ``slots`` tasks at once (``Step.concurrent_batches``, in threads)."""

    step: str
    index: int
    actor: Any  # a ray.actor.ActorHandle (untyped)
    slots: int = 1
    calls: dict[Any, Task] = field(default_factory=dict)  # ray.ObjectRef of each task in flight
    started: dict[Any, float] = field(default_factory=dict)
    resubmits: dict[tuple[bool, int], int] = field(default_factory=dict)
    alive: bool = True


def _key(task: Task) -> tuple[bool, int]:
    return (True, task.seq_no) if isinstance(task, GenerateTask) else (False, task.batch.seq_no)


@dataclass
class _StepWorkers:
    replicas: list[_Replica] = field(default_factory=list)
    idle: deque[_Replica] = field(default_factory=deque)
    queue: deque[Task] = field(default_factory=deque)


def actor_options(step: _Step) -> dict[str, Any]:
    """Ray actor options of one replica of ``step``, from its ``StepResources`` (and model's GPUs).

    Without ``cpus`` an actor holds no CPU while it runs (Ray's default for actors), so any
    number of replicas fit on a small cluster; GPUs are placed by Ray.
    """
    resources = step.resources
    options: dict[str, Any] = {}
    if resources.cpus:
        options["num_cpus"] = int(resources.cpus)
    gpus = required_gpus(step)
    if gpus:
        options["num_gpus"] = gpus
    if resources.memory:
        options["memory"] = int(resources.memory)
    if resources.resources:
        options["resources"] = dict(resources.resources)
    return options


def _kill(actor: Any) -> None:
    with contextlib.suppress(RayError, ValueError):  # already dead, or Ray already shut down
        ray.kill(actor, no_restart=True)


def _demand(options: dict[str, Any]) -> dict[str, float]:
    demand = {"CPU": options.get("num_cpus", 0), "GPU": options.get("num_gpus", 0), "memory": options.get("memory", 0)}
    demand.update(options.get("resources", {}))
    return {k: float(v) for k, v in demand.items() if v}


class RayBackend:
    """Runs each step replica as a Ray actor.

    Args:
        retries: extra attempts per failing batch (in the actor).
        fsync: actors fsync the files they write.
        logger: receives the actors' log lines.
        address: the Ray cluster to connect to when Ray is not initialized yet (``None``: Ray's
            default: ``RAY_ADDRESS``, a cluster ``ray start`` started on this machine, else a new
            local instance).
        step_timeout: seconds a task may run before its actor is killed and the task fails with
            ``StepTimeoutError`` (``None``: no limit).
        max_resubmits: times a batch whose actor died is re-submitted to the restarted actor
            (also each actor's ``max_restarts``).
    """

    in_memory = False

    def __init__(
        self,
        retries: int,
        fsync: bool,
        logger: logging.Logger,
        address: str | None = None,
        step_timeout: float | None = None,
        max_resubmits: int = 2,
    ) -> None:
        self.retries = retries
        self.fsync = fsync
        self.logger = logger
        self.address = address
        self.step_timeout = step_timeout
        self.max_resubmits = max_resubmits
        self.workers: dict[str, _StepWorkers] = {}
        self.replicas: list[_Replica] = []
        self._results: deque[TaskResult] = deque()
        self._started_ray = False

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self, steps: dict[str, _Step]) -> None:
        self._connect()
        options = {name: actor_options(step) for name, step in steps.items()}
        counts = {
            name: int(step.resources.replicas or 1) if not step.is_generator else 1 for name, step in steps.items()
        }
        self._check_resources(options, counts)
        remote_class = ray.remote(StepActor)
        for name, step in steps.items():
            # cloudpickle ships classes of the driver's __main__ (a script, a notebook) by value;
            # classes of importable modules by reference, as pickle does.
            shipped = ray.cloudpickle.dumps(step.model_copy(update={"pipeline": None}))
            modules = modules_by_path(type(step))
            group = self.workers[name] = _StepWorkers()
            slots = max(1, step.concurrent_batches()) if isinstance(step, Step) and not step.is_global else 1
            for index in range(counts[name]):
                spec = WorkerSpec(shipped, name, index, {}, self.retries, self.fsync, modules)
                actor = remote_class.options(
                    max_restarts=self.max_resubmits, max_task_retries=0, max_concurrency=slots, **options[name]
                ).remote(spec, list(sys.path))
                replica = _Replica(name, index, actor, slots)
                group.replicas.append(replica)
                self.replicas.append(replica)
        self._await_loaded()

    def _connect(self) -> None:
        if ray.is_initialized():
            return
        main = threading.current_thread() is threading.main_thread()
        sigterm = signal.getsignal(signal.SIGTERM) if main else None
        ray.init(
            address=self.address or None,
            include_dashboard=False,
            logging_level=logging.WARNING,
            configure_logging=True,
        )
        if sigterm is not None:  # ray.init replaces the SIGTERM handler (with sys.exit): keep the run's graceful stop
            signal.signal(signal.SIGTERM, sigterm)
        self._started_ray = True
        self.logger.info("Ray started (%s).", self.address or os.environ.get("RAY_ADDRESS") or "local instance")

    def _check_resources(self, options: dict[str, dict[str, Any]], counts: dict[str, int]) -> None:
        """Fail before any actor starts when the replicas ask for more than the cluster has in all."""
        total: dict[str, float] = {}
        for name, opts in options.items():
            for key, amount in _demand(opts).items():
                total[key] = total.get(key, 0.0) + amount * counts[name]
        if not total:
            return
        cluster = ray.cluster_resources()
        problems = [
            f"The steps' replicas ask for {amount:g} {key} in all; the Ray cluster has {cluster.get(key, 0):g} "
            f"(steps: {sorted(n for n, o in options.items() if _demand(o).get(key))}). Lower StepResources "
            "or replicas, or add nodes."
            for key, amount in total.items()
            if amount > cluster.get(key, 0.0)
        ]
        if problems:
            raise PipelineValidationError(problems)

    def _await_loaded(self) -> None:
        pending = {r.actor.ready.remote(): r for r in self.replicas}
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=_PLACEMENT_LOG_INTERVAL)
            if not ready:
                waiting = sorted({f"{r.step}:{r.index}" for r in pending.values()})
                self.logger.info("Waiting for Ray to place and load %d replica(s): %s.", len(waiting), waiting)
                continue
            for call in ready:
                replica = pending.pop(call)
                try:
                    failure, logs = ray.get(call)
                except RayError as exc:
                    error = StepLoadError(
                        f"Step '{replica.step}' (replica {replica.index}) died while loading; no data was processed."
                    )
                    raise error from exc
                self._log(logs)
                if failure:
                    raise load_error(replica.step, replica.index, failure)
                self.workers[replica.step].idle.extend([replica] * replica.slots)
                self.logger.info("Step '%s' loaded (replica %d).", replica.step, replica.index)

    def stop(self) -> None:
        try:
            self._unload()
        finally:
            for replica in self.replicas:
                _kill(replica.actor)
            self.replicas.clear()
            self.workers.clear()
            if self._started_ray:
                ray.shutdown()
                self._started_ray = False

    def _unload(self) -> None:
        """Ask every live replica to unload its step, waiting a bounded time."""
        calls = {r.actor.stop.remote(): r for r in self.replicas if r.alive}
        if not calls:
            return
        done, _ = ray.wait(list(calls), num_returns=len(calls), timeout=_STOP_TIMEOUT)
        for call in done:
            try:
                self._log(ray.get(call))
            except RayError as exc:
                replica = calls[call]
                reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
                self.logger.warning("Step '%s' (replica %d) failed to unload: %s", replica.step, replica.index, reason)
        if len(done) < len(calls):
            self.logger.warning("%d replica(s) did not unload in time; killing them.", len(calls) - len(done))

    # -- tasks -----------------------------------------------------------------------------------
    def submit(self, task: Task) -> None:
        step = task.step if isinstance(task, GenerateTask) else task.batch.step
        group = self.workers[step]
        if group.idle:
            self._send(group.idle.popleft(), task)
        elif any(r.alive for r in group.replicas):
            group.queue.append(task)
        else:
            self._results.append(TaskResult(task, error=WorkerDiedError(f"Step '{step}' has no live replica left.")))

    def _send(self, replica: _Replica, task: Task) -> None:
        call = replica.actor.run.remote(task)
        replica.calls[call] = task
        replica.started[call] = time.monotonic()

    def receive(self) -> TaskResult:
        while not self._results:
            busy = {call: r for r in self.replicas for call in r.calls}
            if not busy:
                raise RuntimeError("receive() called with no task running; this is a bug, please report it.")
            ready, _ = ray.wait(list(busy), num_returns=1, timeout=self._wait_timeout())
            for call in ready:
                if call in busy[call].calls:  # not failed meanwhile with its replica
                    self._collect(busy[call], call)
            if not ready:
                self._expire()
        return self._results.popleft()

    def _wait_timeout(self) -> float | None:
        """Seconds until the first running task reaches the step timeout (``None``: no limit)."""
        if self.step_timeout is None:
            return None
        first = min(t for r in self.replicas for t in r.started.values()) + self.step_timeout
        return max(0.0, first - time.monotonic())

    def _collect(self, replica: _Replica, call: Any) -> None:
        task = replica.calls[call]
        try:
            result, logs = ray.get(call)
        except RayTaskError as exc:  # the actor method itself raised: a bug, reported whole
            error = StepExecutionError(
                f"Step '{replica.step}' (replica {replica.index}) failed on {task_label(task)} in Ray."
            )
            error.__cause__ = RemoteTraceback(str(exc))
            self._fail(replica, error)
            return
        except RayError as exc:
            self._died(replica, call, exc)
            return
        del replica.calls[call], replica.started[call]
        replica.resubmits.pop(_key(task), None)
        self._log(logs)
        result.task = task  # the scheduler's own object
        if isinstance(result.error, RemoteError):
            result.error = convert_remote_error(result.error, replica.step, replica.index, task)
        group = self.workers[replica.step]
        if group.queue:
            self._send(replica, group.queue.popleft())
        else:
            group.idle.append(replica)
        self._results.append(result)

    def _died(self, replica: _Replica, call: Any, exc: RayError) -> None:
        """The actor died during a task: re-submit it to the restarted actor, a bounded number of times."""
        task = replica.calls[call]
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        count = replica.resubmits.get(_key(task), 0)
        if count < self.max_resubmits:
            replica.resubmits[_key(task)] = count + 1
            self.logger.warning(
                "The actor of step '%s' (replica %d) died on %s (%s); re-submitting it to the restarted actor "
                "(%d of %d).",
                replica.step,
                replica.index,
                task_label(task),
                reason,
                count + 1,
                self.max_resubmits,
            )
            del replica.calls[call], replica.started[call]
            self._send(replica, task)
            return
        error = WorkerDiedError(
            f"The actor of step '{replica.step}' (replica {replica.index}) died while processing "
            f"{task_label(task)}, also after {count} re-submission(s) to a restarted actor; committed batches "
            "are kept and the next run resumes from them."
        )
        error.__cause__ = exc
        self._fail(replica, error)

    def _expire(self) -> None:
        """Kill the actors with a task past the step timeout; their tasks fail."""
        assert self.step_timeout is not None
        now = time.monotonic()
        for replica in self.replicas:
            late = [replica.calls[c] for c, t in replica.started.items() if now - t >= self.step_timeout]
            if not late:
                continue
            label = ", ".join(task_label(t) for t in late)
            self.logger.error(
                "Step '%s' (replica %d) exceeded the step timeout of %ss on %s; killing its actor.",
                replica.step,
                replica.index,
                f"{self.step_timeout:g}",
                label,
            )
            self._fail(
                replica,
                StepTimeoutError(
                    f"Step '{replica.step}' (replica {replica.index}) took longer than the step timeout of "
                    f"{self.step_timeout:g}s on {label}; its Ray actor was killed. Committed batches are kept and "
                    "the next run resumes from them (raise EngineConfig.step_timeout if the step is just slow)."
                ),
            )

    def _fail(self, replica: _Replica, error: StepExecutionError) -> None:
        """Retire a replica: kill its actor, fail its tasks (which stops the run) and, once no replica of
        the step is left, the step's queued tasks; the other replicas finish what they hold."""
        _kill(replica.actor)
        replica.alive = False
        self._results.extend(TaskResult(task, error=error) for task in replica.calls.values())
        replica.calls.clear()
        replica.started.clear()
        group = self.workers[replica.step]
        group.idle = deque(r for r in group.idle if r is not replica)
        if not any(r.alive for r in group.replicas):
            while group.queue:
                self._results.append(TaskResult(group.queue.popleft(), error=error))

    def _log(self, lines: LogLines) -> None:
        for level, line in lines:
            self.logger.log(level, line)
