"""The public engine entry point: validate, lock the cache folder, resume or return, run.

``Pipeline.run()`` and the Dagster resource both call :func:`run_pipeline`.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from distil_dagster.cache.atomic import atomic_write_bytes
from distil_dagster.cache.committer import BatchCommitter
from distil_dagster.cache.journal import BatchRecord, CommitJournal
from distil_dagster.cache.layout import CacheLayout
from distil_dagster.cache.lock import run_lock
from distil_dagster.cache.snapshot import write_snapshot
from distil_dagster.distiset import Distiset, create_distiset
from distil_dagster.engine.backend import InlineBackend, WorkerBackend
from distil_dagster.engine.config import EngineConfig
from distil_dagster.engine.run_log import run_logging
from distil_dagster.engine.scheduler import RunSummary, Scheduler
from distil_dagster.errors import PipelineValidationError
from distil_dagster.pipeline.serialization import dump_yaml

if TYPE_CHECKING:
    from distil_dagster.pipeline.base import Pipeline

__all__ = ["apply_parameters", "run_pipeline"]


def apply_parameters(pipeline: Pipeline, parameters: dict[str, dict[str, Any]]) -> None:
    """Validate the pipeline with ``parameters`` and set them on the steps (one error for all)."""
    pipeline.validate(parameters)
    problems = []
    for name, values in parameters.items():
        step = pipeline.dag.step(name)
        try:
            step.set_runtime_parameters(values)
        except ValidationError as exc:
            for err in exc.errors():
                where = ".".join(str(p) for p in err["loc"])
                problems.append(f"Step '{name}': runtime parameter '{where}' is invalid: {err['msg']}.")
    for name in pipeline.dag.names:
        for param in pipeline.dag.step(name).missing_runtime_parameters():
            problems.append(
                f"Step '{name}': runtime parameter '{param}' is required; pass it with run(parameters={{'{name}': {{'{param}': ...}}}})."
            )
    if problems:
        raise PipelineValidationError(problems)


def _is_finished(pipeline: Pipeline, committed: dict[str, dict[int, BatchRecord]]) -> bool:
    return all(any(r.last_batch for r in committed.get(n, {}).values()) for n in pipeline.dag.names)


def _remove_uncounted(layout: CacheLayout, committed: dict[str, dict[int, BatchRecord]]) -> int:
    """Delete batch files (and temp files) the journal does not count; returns how many."""
    counted = {r.file for recs in committed.values() for r in recs.values() if r.file}
    removed = 0
    for base in (layout.data_dir, layout.steps_dir):
        if not base.exists():
            continue
        for path in base.rglob("*"):
            if path.is_file() and layout.relative(path) not in counted:
                path.unlink()
                removed += 1
    return removed


def _log_resume(logger: logging.Logger, pipeline: Pipeline, committed: dict[str, dict[int, BatchRecord]]) -> None:
    parts = []
    for name in pipeline.dag.names:
        records = committed.get(name, {})
        done = any(r.last_batch for r in records.values())
        parts.append(f"{name}: {len(records)} batch(es) reused{'' if not done else ', finished'}")
    logger.info("Load pipeline from cache: %s.", "; ".join(parts))


def run_pipeline(
    pipeline: Pipeline,
    parameters: dict[str, dict[str, Any]] | None = None,
    use_cache: bool = True,
    executor: str = "inline",
    config: EngineConfig | None = None,
    dry_run: bool = False,
    backend: WorkerBackend | None = None,
) -> Distiset:
    """Run ``pipeline`` to completion and return its Distiset (see ``Pipeline.run``)."""
    config = config or EngineConfig()
    if executor != "inline" and backend is None:
        raise PipelineValidationError([f"Unknown executor {executor!r}; this version offers 'inline'."])
    saved = {n: pipeline.dag.step(n).model_dump(exclude={"pipeline"}) for n in pipeline.dag.names} if dry_run else None
    apply_parameters(pipeline, parameters or {})
    temp_dir = Path(tempfile.mkdtemp(prefix="distil-dagster-dry-run-")) if dry_run else None
    try:
        cache_dir = temp_dir if temp_dir is not None else pipeline.cache_dir
        layout = CacheLayout.for_pipeline(cache_dir, pipeline.name, pipeline.signature)
        _execute(pipeline, layout, use_cache, config, dry_run, backend)
        distiset = create_distiset(layout.data_dir, enable_metadata=pipeline.enable_metadata, keep_in_memory=dry_run)
        return distiset
    finally:
        if saved is not None:
            for name, fields in saved.items():
                step = pipeline.dag.step(name)
                step.set_runtime_parameters(
                    {k: v for k, v in fields.items() if k in step.runtime_parameters_names and k != "resources"}
                )
        if temp_dir is not None:
            shutil.rmtree(temp_dir, ignore_errors=True)


def _execute(
    pipeline: Pipeline,
    layout: CacheLayout,
    use_cache: bool,
    config: EngineConfig,
    dry_run: bool,
    backend: WorkerBackend | None,
) -> RunSummary | None:
    layout.create()
    with run_logging(layout.log_file) as logger, run_lock(layout, config.lock_timeout, logger):
        started = time.time()
        if not use_cache:
            layout.clear_outputs()
        committed = CommitJournal(layout.journal).read()
        if committed and _is_finished(pipeline, committed):
            logger.info(
                "Pipeline '%s' already finished in %s; returning its Distiset from the cache.",
                pipeline.name,
                layout.root,
            )
            return None
        if committed:
            _log_resume(logger, pipeline, committed)
        removed = _remove_uncounted(layout, committed)
        if removed:
            logger.info("Removed %d batch file(s) that were written but never committed; they are recomputed.", removed)
        yaml_text = dump_yaml(pipeline).encode("utf-8")
        atomic_write_bytes(layout.pipeline_yaml, yaml_text, config.fsync)
        committer = BatchCommitter(layout, fsync=config.fsync, max_pending=config.max_pending_writes)
        worker_backend = backend or InlineBackend(config.step_retries, logger)
        scheduler = Scheduler(
            pipeline.dag, layout, committed, worker_backend, committer, pipeline.seed, logger, dry_run=dry_run
        )
        status = "failed"
        summary: RunSummary | None = None
        try:
            scheduler.replay()
            work = scheduler.steps_with_work()
            worker_backend.start({n: pipeline.dag.step(n) for n in work})
            try:
                summary = scheduler.run()
            finally:
                worker_backend.stop()
            status = "finished"
        finally:
            try:
                committer.close()
            finally:
                write_snapshot(layout, pipeline, CommitJournal(layout.journal).read(), status, started, config.fsync)
        _log_summary(logger, pipeline, summary)
        return summary


def _log_summary(logger: logging.Logger, pipeline: Pipeline, summary: RunSummary | None) -> None:
    if summary is None:
        return
    for name, stats in summary.steps.items():
        logger.info(
            "Step '%s': %d batch(es), %d row(s) computed; %d batch(es) reused; %d failed row(s); %.3f s.",
            name,
            stats.batches,
            stats.rows,
            stats.reused_batches,
            stats.failed_rows,
            stats.seconds,
        )
    logger.info("Pipeline '%s' finished in %.3f s.", pipeline.name, summary.seconds)
