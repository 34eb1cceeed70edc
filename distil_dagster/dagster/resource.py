"""``DistilDagsterResource``: engine settings, and the engine run of the current Dagster run.

The resource holds configuration only; the live state (engine thread, listener, progress) is an
:class:`~distil_dagster.dagster.engine_run.EngineRun` created in ``setup_for_execution`` and
joined in ``teardown_after_execution``. With the in-process executor that is one engine per
Dagster run; with a multiprocess executor each step process has its own, and the cache lock
plus resume-from-journal keep every batch computed once.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

from dagster import ConfigurableResource, DagsterLogManager, InitResourceContext
from pydantic import Field, PrivateAttr

from distil_dagster.dagster.engine_run import EngineRun, EngineRunError, EngineSettings
from distil_dagster.engine.config import EngineConfig
from distil_dagster.engine.interrupts import WaitInterrupted, interruptible_wait, kill_workers
from distil_dagster.engine.run_log import LOGGER_NAME
from distil_dagster.pipeline.base import Pipeline
from distil_dagster.pipeline.load_groups import LoadGroups

__all__ = ["DistilDagsterResource", "forward_logs"]


def forward_logs(log: DagsterLogManager, records: list[logging.LogRecord]) -> None:
    """Write engine log records into the Dagster event log (from the thread that owns ``log``)."""
    for record in records:
        log.log(record.levelno, record.getMessage())


class DistilDagsterResource(ConfigurableResource):
    """Runs distil_dagster pipelines for the assets built by ``build_pipeline_assets``.

    Every field has an offline default: ``DistilDagsterResource()`` runs the local-process
    engine with the pipeline's own cache folder.
    """

    cache_dir: str | None = Field(
        default=None, description="Cache root; default: the pipeline's (DISTIL_DAGSTER_CACHE_DIR or ~/.cache)."
    )
    executor: str = Field(
        default="processes",
        description="Engine backend: 'processes' (a worker per step replica), 'inline', or 'ray' (an actor per replica).",
    )
    ray_address: str | None = Field(
        default=None,
        description="With executor 'ray': the cluster to connect to ('auto', 'ray://host:10001'); default: RAY_ADDRESS or a local instance.",
    )
    use_cache: bool = Field(default=True, description="Resume from (or return) the cache; False recomputes.")
    step_retries: int = Field(
        default=2, ge=0, description="Retries of a failing batch before its rows are marked failed."
    )
    fsync: bool = Field(default=True, description="fsync batch files and the journal (survives power loss).")
    lock_timeout: float = Field(
        default=600.0, gt=0, description="Seconds to wait for another run of the same pipeline."
    )
    cuda_devices: list[int] | None = Field(
        default=None, description="CUDA devices the engine may give to steps (default: all visible)."
    )
    log_level: str = Field(default="INFO", description="Lowest engine log level forwarded to the Dagster log.")
    progress_interval: float = Field(
        default=2.0, gt=0, description="Seconds between progress reports (log line, AssetObservation) of a waiting op."
    )
    stop_timeout: float = Field(
        default=120.0, gt=0, description="Seconds to wait for in-flight batches when the run is terminated."
    )
    step_timeout: float | None = Field(
        default=None,
        gt=0,
        description="Seconds one batch may take in a step before the run fails naming step, replica and batch.",
    )
    load_groups: list[list[str]] | None = Field(
        default=None,
        description=(
            "Steps loaded together, stage after stage, each stage unloaded before the next loads (as "
            "Pipeline.run(load_groups=...)); default: every step at once."
        ),
    )
    sequential_step_execution: bool = Field(
        default=False, description="Load and run one step at a time (load_groups='sequential_step_execution')."
    )

    _run_id: str | None = PrivateAttr(default=None)
    _engine_runs: dict[str, EngineRun] = PrivateAttr(default_factory=dict)
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    def engine_config(self) -> EngineConfig:
        """The engine settings this resource asks for."""
        values: dict[str, object] = {
            "step_retries": self.step_retries,
            "fsync": self.fsync,
            "lock_timeout": self.lock_timeout,
            "step_timeout": self.step_timeout,
        }
        if self.cuda_devices is not None:
            values["cuda_devices"] = list(self.cuda_devices)
        if self.ray_address is not None:
            values["ray_address"] = self.ray_address
        return EngineConfig.model_validate(values)

    def settings(self) -> EngineSettings:
        level = logging.getLevelName(self.log_level.upper())
        if not isinstance(level, int):
            raise EngineRunError(f"DistilDagsterResource.log_level {self.log_level!r} is not a logging level name.")
        return EngineSettings(
            cache_dir=Path(self.cache_dir).expanduser() if self.cache_dir else None,
            executor=self.executor,
            use_cache=self.use_cache,
            config=self.engine_config(),
            log_level=level,
            progress_interval=self.progress_interval,
            load_groups=self._load_groups(),
        )

    def _load_groups(self) -> LoadGroups | None:
        if self.sequential_step_execution and self.load_groups is not None:
            raise EngineRunError("DistilDagsterResource: set load_groups or sequential_step_execution, not both.")
        return "sequential_step_execution" if self.sequential_step_execution else self.load_groups

    def engine_run_for(self, pipeline: Pipeline) -> EngineRun:
        """The engine run of ``pipeline`` in the current Dagster run (one per pipeline, made on first use)."""
        if self._run_id is None:
            raise EngineRunError(
                "DistilDagsterResource is not set up for a run; it only works inside a Dagster run "
                "(materialize(), the UI or `dagster asset materialize`)."
            )
        with self._lock:
            run = self._engine_runs.get(pipeline.name)
            if run is None:
                run = self._engine_runs[pipeline.name] = EngineRun(self._run_id, self.settings())
            return run

    def setup_for_execution(self, context: InitResourceContext) -> None:
        self._run_id = context.run.run_id if context.run else "no-run"
        self._engine_runs = {}

    def teardown_after_execution(self, context: InitResourceContext) -> None:
        runs, self._engine_runs, self._run_id = list(self._engine_runs.values()), {}, None
        log = context.log or logging.getLogger(LOGGER_NAME)
        for run in runs:
            self._finish(run, context, log)

    def _finish(self, run: EngineRun, context: InitResourceContext, log: Any) -> None:
        unfinished = run.unfinished()
        if run.running and unfinished:
            log.warning(
                f"The Dagster run ended before steps {unfinished} finished; stopping the engine. "
                "Committed batches are kept: the next materialization resumes from them."
            )
            run.stop()
        abandoned = None
        try:
            with interruptible_wait():  # the run was stopped already: another signal ends the wait
                ended = run.join(self.stop_timeout if run.stop_event.is_set() else None)
        except WaitInterrupted as signal_name:
            ended, abandoned = False, f"Second {signal_name} while the engine finished the batches in flight"
        if not ended:
            # Workers ignore SIGTERM: left running, they would hold up this process's exit.
            kill_workers()
        if context.log is not None:
            forward_logs(context.log, run.take_logs())
        if not ended:
            log.warning(
                f"{abandoned or f'The engine did not stop within {self.stop_timeout:.0f} s'}; batches still in "
                "flight are abandoned and recomputed by the next run (committed batches are kept)."
            )
