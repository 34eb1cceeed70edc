"""The live engine run behind one Dagster run: started once, watched by every step op.

Data flow: the first op calls :meth:`EngineRun.start`, which applies the run's parameters to a
copy of the pipeline (errors raise in that op) and runs ``execute_pipeline`` on the selected
leaves in a background thread (a pass per load stage when the resource sets ``load_groups``). The engine reports to this object as its ``RunListener``
(engine threads) and its log records arrive through a logging handler; both land in the state
below, guarded by one ``Condition``. Each op blocks in :meth:`EngineRun.updates` until its step
has its last batch committed, receiving an :class:`Update` whenever something happened or
``progress_interval`` passed: log records to forward and, at most once per interval for the
whole run, a progress report of the steps that committed batches since the last one. Nothing polls.
"""

from __future__ import annotations

import copy
import enum
import functools
import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from distil_dagster.cache.journal import BatchRecord
from distil_dagster.cache.layout import CacheLayout
from distil_dagster.dagster.progress import StepProgress, Update
from distil_dagster.engine.config import EngineConfig
from distil_dagster.engine.run_log import LOGGER_NAME
from distil_dagster.engine.runner import apply_parameters, execute_in_stages
from distil_dagster.errors import DistilDagsterError
from distil_dagster.pipeline.base import Pipeline
from distil_dagster.pipeline.load_groups import LoadGroups

__all__ = ["EngineRun", "EngineRunError", "EngineSettings"]


class EngineRunError(DistilDagsterError, RuntimeError):
    """The engine run behind a Dagster run failed or stopped before a step finished."""


@dataclass(frozen=True)
class EngineSettings:
    """How the resource asks the engine to run (from its config)."""

    cache_dir: Path | None
    executor: str
    use_cache: bool
    config: EngineConfig
    log_level: int
    progress_interval: float
    load_groups: LoadGroups | None = None


class _State(enum.Enum):
    IDLE = "idle"
    RUNNING = "running"
    DONE = "done"


class _Forward(logging.Handler):
    def __init__(self, run: EngineRun, level: int) -> None:
        super().__init__(level)
        self._run = run

    def emit(self, record: logging.LogRecord) -> None:
        self._run.add_log(record)


class EngineRun:
    """One engine run for one Dagster run (one per process with a multiprocess executor)."""

    def __init__(self, run_id: str, settings: EngineSettings) -> None:
        self.run_id = run_id
        self.settings = settings
        self.layout: CacheLayout | None = None
        self.stop_event = threading.Event()
        self._cond = threading.Condition()
        self._state = _State.IDLE
        self._selection: tuple[tuple[str, ...], Any] | None = None
        self._steps: dict[str, StepProgress] = {}
        self._reported: dict[str, int] = {}
        self._reported_at = 0.0
        self._logs: list[logging.LogRecord] = []
        self._error: BaseException | None = None
        self._started_at = 0.0
        self._thread: threading.Thread | None = None

    # -- lifecycle (op and resource threads) ---------------------------------------------------
    def start(self, pipeline: Pipeline, leaves: list[str], parameters: dict[str, dict[str, Any]]) -> None:
        """Start the engine on ``leaves`` and their ancestors, unless this run already started it."""
        selection = (tuple(sorted(leaves)), parameters)
        with self._cond:
            if self._state is not _State.IDLE:
                if selection != self._selection:
                    raise EngineRunError(
                        f"The engine of run {self.run_id} was started for {self._selection}, "
                        f"not {selection}; one Dagster run drives one engine run."
                    )
                return
            run_copy = copy.deepcopy(pipeline)  # parameters of one run must not leak into the next
            apply_parameters(run_copy, parameters)
            cache_dir = self.settings.cache_dir or run_copy.cache_dir
            self.layout = CacheLayout.for_pipeline(cache_dir, run_copy.name, run_copy.signature)
            self._selection = selection
            self._state = _State.RUNNING
            self._started_at = self._reported_at = time.monotonic()
            self._thread = threading.Thread(
                target=self._run, args=(run_copy, list(leaves)), name=f"distil-dagster-{self.run_id[:8]}", daemon=True
            )
            self._thread.start()

    def _run(self, pipeline: Pipeline, leaves: list[str]) -> None:
        logger = logging.getLogger(LOGGER_NAME)
        handler = _Forward(self, self.settings.log_level)
        previous_level = logger.level
        if self.settings.log_level < logging.INFO:
            logger.setLevel(self.settings.log_level)
        logger.addHandler(handler)
        try:
            execute_in_stages(
                pipeline,
                None,
                self.settings.use_cache,
                steps=leaves,
                load_groups=self.settings.load_groups,
                executor=self.settings.executor,
                config=self.settings.config,
                cache_dir=self.settings.cache_dir,
                listener=self,
                stop=self.stop_event,
                console_log=False,
            )
        except BaseException:
            pass  # already recorded by on_finish; the waiting ops raise it
        finally:
            logger.removeHandler(handler)
            logger.setLevel(previous_level)

    def stop(self) -> None:
        """Ask the engine to stop gracefully (no new batches; in-flight ones are committed)."""
        self.stop_event.set()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the engine thread; returns whether it ended."""
        if self._thread is not None:
            self._thread.join(timeout)
        return not self.running

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def unfinished(self) -> list[str]:
        """Steps of the run without their last batch (the selected leaves before the engine started)."""
        with self._cond:
            if self._state is _State.IDLE:
                return []
            if not self._steps:
                return list(self._selection[0]) if self._selection else []
            return [name for name, progress in self._steps.items() if not progress.finished]

    # -- RunListener (engine threads) ----------------------------------------------------------
    def on_start(self, steps: list[str], reused: dict[str, list[BatchRecord]]) -> None:
        with self._cond:
            for step in steps:
                progress = self._steps.setdefault(step, StepProgress())
                for record in sorted(reused.get(step, []), key=lambda r: r.seq_no):
                    progress.add(record, reused=True, elapsed=0.0)
            self._cond.notify_all()

    def on_commit(self, records: list[BatchRecord]) -> None:
        with self._cond:
            elapsed = time.monotonic() - self._started_at
            for record in records:
                self._steps.setdefault(record.step, StepProgress()).add(record, reused=False, elapsed=elapsed)
            self._cond.notify_all()

    def on_finish(self, error: BaseException | None) -> None:
        with self._cond:
            self._error = error
            self._state = _State.DONE
            self._cond.notify_all()

    def add_log(self, record: logging.LogRecord) -> None:
        with self._cond:
            self._logs.append(record)
            self._cond.notify_all()

    # -- waiting (op threads) ------------------------------------------------------------------
    def take_logs(self) -> list[logging.LogRecord]:
        """Log records not forwarded yet."""
        with self._cond:
            logs, self._logs = self._logs, []
            return logs

    def updates(self, step: str) -> Iterator[Update]:
        """Updates until ``step`` finished; raises :class:`EngineRunError` if the run ends first."""
        seen = -1
        while True:
            with self._cond:
                self._cond.wait_for(functools.partial(self._ready, step, seen), self.settings.progress_interval)
                progress = self._steps.get(step, StepProgress()).counters()
                logs, self._logs = self._logs, []
                report = self._due_report()
                error, state = self._error, self._state
            yield Update(logs, progress, report)
            seen = progress.total_batches
            if progress.finished:
                return
            if state is _State.DONE:
                raise self._ended_error(step, error)

    def records(self, step: str) -> list[BatchRecord]:
        """The committed batches of ``step`` (reused and computed), in seq order."""
        with self._cond:
            return sorted(self._steps.get(step, StepProgress()).records, key=lambda r: r.seq_no)

    def progress(self, step: str) -> StepProgress:
        with self._cond:
            return self._steps.get(step, StepProgress()).counters()

    def _ready(self, step: str, seen: int) -> bool:
        progress = self._steps.get(step)
        count = progress.total_batches if progress is not None else 0
        finished = progress is not None and progress.finished
        return bool(self._logs) or count != seen or finished or self._state is _State.DONE

    def _due_report(self) -> dict[str, StepProgress]:
        now = time.monotonic()
        if now - self._reported_at < self.settings.progress_interval:
            return {}
        report = {n: p.counters() for n, p in self._steps.items() if p.total_batches != self._reported.get(n, 0)}
        if report:
            self._reported_at = now
            self._reported.update({n: p.total_batches for n, p in report.items()})
        return report

    def _ended_error(self, step: str, error: BaseException | None) -> EngineRunError:
        log = self.layout.log_file if self.layout is not None else "pipeline.log"
        if error is None:
            return EngineRunError(f"The engine run ended without finishing step '{step}'; see {log}.")
        reason = "was stopped" if self.stop_event.is_set() else "failed"
        detail = str(error).rstrip(".")
        exc = EngineRunError(f"The engine run {reason} before step '{step}' finished: {detail}. Log: {log}.")
        exc.__cause__ = error
        return exc
