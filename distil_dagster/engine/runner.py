"""The public engine entry points: validate, lock the cache folder, resume or return, run.

``Pipeline.run()`` calls :func:`run_pipeline`; the Dagster layer calls :func:`execute_pipeline`
(optionally on a subset of steps, with a listener and a stop event) and reads the cache itself.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import logging
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from distil_dagster.cache.atomic import atomic_write_bytes, make_private_dirs
from distil_dagster.cache.batch_store import leaf_parts
from distil_dagster.cache.committer import BatchCommitter
from distil_dagster.cache.journal import BatchRecord, CommitJournal, is_complete
from distil_dagster.cache.layout import CacheLayout
from distil_dagster.cache.leaf_arrow_builder import LeafArrowBuilder
from distil_dagster.cache.lock import run_lock
from distil_dagster.cache.segments import trim
from distil_dagster.cache.snapshot import write_snapshot
from distil_dagster.engine.backend import WorkerBackend
from distil_dagster.engine.config import EngineConfig
from distil_dagster.engine.events import RunListener, StagedListener
from distil_dagster.engine.heap import settled_heap
from distil_dagster.engine.inline import InlineBackend
from distil_dagster.engine.interrupts import interrupt_handlers
from distil_dagster.engine.main_module import start_method_for
from distil_dagster.engine.processes import ProcessBackend
from distil_dagster.engine.progress import Listeners, ProgressReporter
from distil_dagster.engine.run_log import LOGGER_NAME, run_logging
from distil_dagster.engine.scheduler import RunSummary, Scheduler, StepStats
from distil_dagster.engine.worker_server import process_context
from distil_dagster.errors import PipelineValidationError
from distil_dagster.pipeline.load_groups import LoadGroups, load_stages
from distil_dagster.pipeline.serialization import dump_yaml

if TYPE_CHECKING:
    from distil_dagster.distiset import Distiset
    from distil_dagster.pipeline.base import Pipeline
    from distil_dagster.pipeline.dag import DAG

__all__ = ["RunResult", "apply_parameters", "execute_pipeline", "run_pipeline"]

Committed = dict[str, dict[int, BatchRecord]]


@dataclass
class RunResult:
    """What a run leaves behind: where its cache is and what each step did.

    Attributes:
        layout: the signature folder.
        summary: per-step counters (computed and reused batches, rows, failed rows, seconds).
        steps: the steps the run covered (a selection and its ancestors).
        leaves: the leaf steps of the whole pipeline.
        from_cache: the selection was already complete; no step ran.
    """

    layout: CacheLayout
    summary: RunSummary
    steps: list[str]
    leaves: list[str]
    from_cache: bool


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
                f"Step '{name}': runtime parameter '{param}' is required; "
                f"pass it with run(parameters={{'{name}': {{'{param}': ...}}}})."
            )
    if problems:
        raise PipelineValidationError(problems)


def _is_finished(steps: list[str], committed: Committed) -> bool:
    return all(is_complete(committed.get(n, {})) for n in steps)


def _remove_uncounted(layout: CacheLayout, committed: Committed) -> int:
    """Delete batch files (and temp files) the journal does not count; returns how many.

    A segment some record counts stays, cut back to the end of its last counted batch (what
    follows was written by a run that stopped before counting it).
    """
    counted = {r.file for recs in committed.values() for r in recs.values() if r.file}
    segment_ends: dict[str, int] = {}
    for records in committed.values():
        for r in records.values():
            if r.file and r.offset is not None:
                segment_ends[r.file] = max(segment_ends.get(r.file, 0), r.offset + (r.size or 0))
    removed = 0
    for base in (layout.data_dir, layout.steps_dir):
        if not base.exists():
            continue
        for path in base.rglob("*"):
            if not path.is_file():
                continue
            name = layout.relative(path)
            if name not in counted:
                path.unlink()
                removed += 1
            elif name in segment_ends and trim(path, segment_ends[name]):
                removed += 1
    if layout.arrow_dir.exists():  # Arrow files being written by a process that died
        for path in layout.arrow_dir.glob(".*.tmp"):
            if not _pid_alive(path.name.rsplit(".", 2)[-2]):
                path.unlink(missing_ok=True)
    return removed


def _pid_alive(pid: str) -> bool:
    """Whether process ``pid`` (text from a temp file's name) exists (unparsable: assume so)."""
    try:
        os.kill(int(pid), 0)
    except ValueError:
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _to_recompute(pipeline: Pipeline, committed: Committed, config: EngineConfig) -> set[tuple[str, int]]:
    """Committed batches to recompute, with every batch built from them.

    Steps with ``use_cache=False`` (and everything after them), and batches whose rows failed
    while they have reruns left (``EngineConfig.failed_batch_reruns``).
    """
    dag = pipeline.dag
    uncached: set[str] = set()
    for name in dag.names:
        if not dag.step(name).use_cache:
            uncached |= {name} | dag.descendants(name)
    drop = {(s, q) for s in uncached for q in committed.get(s, {})}
    drop |= {
        (s, q)
        for s, records in committed.items()
        for q, r in records.items()
        if r.failed_rows and r.failed_runs <= config.failed_batch_reruns
    }
    if not drop:
        return drop
    for name in dag.topological_order():
        for seq, record in committed.get(name, {}).items():
            if any((source, src) in drop for source, ranges in record.created_from.items() for src, *_ in ranges):
                drop.add((name, seq))
    return drop


def _invalidate(
    layout: CacheLayout, committed: Committed, config: EngineConfig, pipeline: Pipeline, logger: logging.Logger
) -> dict[tuple[str, int], int]:
    """Un-commit what must be recomputed; returns the failed runs so far of each failed batch."""
    drop = _to_recompute(pipeline, committed, config)
    if not drop:
        return {}
    prior = {key: committed[key[0]][key[1]].failed_runs for key in drop if committed[key[0]][key[1]].failed_rows}
    journal = CommitJournal(layout.journal)
    try:
        journal.retract(sorted(drop), config.fsync)
    finally:
        journal.close()
    for step, seq in drop:
        committed[step].pop(seq)
    steps = sorted({s for s, _ in drop})
    logger.info(
        "Recomputing %d committed batch(es) of %s: use_cache=False, or failed rows with reruns left.", len(drop), steps
    )
    return prior


def _reused_summary(steps: list[str], committed: Committed) -> RunSummary:
    summary = RunSummary({n: StepStats() for n in steps})
    for name in steps:
        stats = summary.steps[name]
        for record in committed.get(name, {}).values():
            stats.reused_batches += 1
            stats.reused_rows += record.num_rows
            stats.failed_rows += record.failed_rows
    return summary


def _log_resume(logger: logging.Logger, steps: list[str], committed: Committed) -> None:
    parts = []
    for name in steps:
        records = committed.get(name, {})
        state = "finished" if is_complete(records) else "to continue"
        parts.append(f"{name}: {len(records)} batch(es) reused, {state}")
    logger.info("Load pipeline from cache: %s.", "; ".join(parts))


def run_pipeline(
    pipeline: Pipeline,
    parameters: dict[str, dict[str, Any]] | None = None,
    use_cache: bool = True,
    executor: str = "processes",
    config: EngineConfig | None = None,
    dry_run: bool = False,
    ray_address: str | None = None,
    load_groups: LoadGroups | None = None,
    logging_handlers: Sequence[logging.Handler] = (),
) -> Distiset:
    """Run ``pipeline`` to completion and return its Distiset (see ``Pipeline.run``).

    With ``load_groups``, the stages run one after another (``execute_in_stages``).
    Start-up overlaps: ``datasets`` (~0.5 s to import, needed only for the Distiset) is imported
    on a thread while the workers start.
    """
    if ray_address is not None:
        config = (config or EngineConfig()).model_copy(update={"ray_address": ray_address})
    with settled_heap():  # objects alive now are long-lived: full GC passes skip them
        # While workers start the main thread mostly waits. Not inline (the thread would take the GIL
        # from the engine and its committer) nor with plain fork (a child forked while the thread
        # holds an import lock could never take it).
        background = executor == "ray" or (
            executor == "processes"
            and start_method_for((config or EngineConfig()).start_method, map(pipeline.dag.step, pipeline.dag.names))
            != "fork"
        )
        warm = import_in_background("distil_dagster.distiset") if background else None
        saved = _runtime_values(pipeline) if dry_run else None
        temp_dir = Path(tempfile.mkdtemp(prefix="distil-dagster-dry-run-")) if dry_run else None
        try:
            result = execute_in_stages(
                pipeline,
                parameters,
                use_cache,
                load_groups=load_groups,
                executor=executor,
                config=config,
                dry_run=dry_run,
                cache_dir=temp_dir,
                handle_signals=True,
                progress=not dry_run,
                logging_handlers=logging_handlers,
            )
            if warm is not None:
                warm.join()
            from distil_dagster.distiset import create_distiset

            return create_distiset(result.layout.root, enable_metadata=pipeline.enable_metadata)
        finally:
            if saved is not None:
                for name, values in saved.items():
                    pipeline.dag.step(name).set_runtime_parameters(values)
            if temp_dir is not None:
                shutil.rmtree(temp_dir, ignore_errors=True)


def execute_in_stages(
    pipeline: Pipeline,
    parameters: dict[str, dict[str, Any]] | None = None,
    use_cache: bool = True,
    *,
    steps: list[str] | None = None,
    load_groups: LoadGroups | None = None,
    listener: RunListener | None = None,
    **options: Any,
) -> RunResult:
    """``execute_pipeline`` once per load stage (``pipeline/load_groups.py``) of ``steps`` (default:
    all) and their ancestors, each pass resuming from what the passes before committed; one pass
    without ``load_groups``. ``listener`` sees one run. ``options`` go to ``execute_pipeline``.
    """
    if load_groups is None or not pipeline.dag.is_acyclic():  # a cycle: the pipeline's validation reports it
        return execute_pipeline(pipeline, parameters, use_cache, steps=steps, listener=listener, **options)
    try:
        known = pipeline.dag.names if steps is None else [s for s in steps if s in pipeline.dag]  # the rest: below
        selected = set(pipeline.dag.closure(known))
        stages = [
            kept for stage in load_stages(pipeline.dag, load_groups) if (kept := [s for s in stage if s in selected])
        ]
    except BaseException as exc:
        if listener is not None:
            listener.on_finish(exc)
        raise
    if len(stages) <= 1 or (steps is not None and len(known) < len(steps)):  # one pass; unknown steps refused
        return execute_pipeline(pipeline, parameters, use_cache, steps=steps, listener=listener, **options)
    staged = StagedListener(listener) if listener is not None else None
    for index, stage in enumerate(stages):
        if staged is not None:
            staged.last = index == len(stages) - 1
        result = execute_pipeline(
            pipeline,
            parameters,
            use_cache or index > 0,
            steps=stage,
            listener=staged,
            stage=f"load stage {index + 1}/{len(stages)}: {stage}",
            **options,
        )
    return result


def import_in_background(module: str) -> threading.Thread:
    """Import ``module`` on a daemon thread; a failure is left for the caller's own import to raise."""

    def target() -> None:
        with contextlib.suppress(Exception):
            importlib.import_module(module)

    thread = threading.Thread(target=target, name=f"import {module}", daemon=True)
    thread.start()
    return thread


def _runtime_values(pipeline: Pipeline) -> dict[str, dict[str, Any]]:
    values = {}
    for name in pipeline.dag.names:
        step = pipeline.dag.step(name)
        values[name] = {k: getattr(step, k) for k in step.runtime_parameters_names if k != "resources"}
    return values


EXECUTORS = ("processes", "inline", "ray")


def _require_ray() -> None:
    """Ray is an optional dependency: a clear error, before any work, when it is missing."""
    if importlib.util.find_spec("ray") is None:
        raise PipelineValidationError(
            ["executor='ray' needs Ray, which is not installed: pip install 'distil_dagster[ray]'."]
        )


def make_backend(
    executor: str, config: EngineConfig, logger: logging.Logger, file_fsync: bool | None = None
) -> tuple[WorkerBackend, int]:
    """The backend for ``executor`` and how many tasks the scheduler may hand it at once.

    ``file_fsync``: whether local workers fsync the files they write (``False`` when the
    committer syncs the filesystem per group; default ``config.fsync``). Ray actors may write on
    other nodes, so they always follow ``config.fsync``.
    """
    if executor == "inline":
        return InlineBackend(config.step_retries, logger, config.step_timeout), 1
    if executor == "processes":
        backend = ProcessBackend(
            config.step_retries,
            config.fsync if file_fsync is None else file_fsync,
            logger,
            start_method=config.start_method or "forkserver",
            step_timeout=config.step_timeout,
        )
        backend.cuda_devices = config.cuda_devices
        return backend, 1_000_000
    if executor == "ray":
        _require_ray()
        from distil_dagster.engine.ray_backend import RayBackend  # Ray is optional: imported only when used

        ray_backend = RayBackend(
            config.step_retries, config.fsync, logger, address=config.ray_address, step_timeout=config.step_timeout
        )
        return ray_backend, 1_000_000
    raise PipelineValidationError([f"Unknown executor {executor!r}; choose one of {list(EXECUTORS)}."])


def execute_pipeline(
    pipeline: Pipeline,
    parameters: dict[str, dict[str, Any]] | None = None,
    use_cache: bool = True,
    *,
    steps: list[str] | None = None,
    executor: str = "processes",
    config: EngineConfig | None = None,
    dry_run: bool = False,
    cache_dir: Path | None = None,
    listener: RunListener | None = None,
    stop: threading.Event | None = None,
    handle_signals: bool = False,
    console_log: bool = True,
    progress: bool = False,
    stage: str | None = None,
    logging_handlers: Sequence[logging.Handler] = (),
) -> RunResult:
    """Run ``steps`` (default: all) and their ancestors; committed batches are reused.

    The cache folder is the whole pipeline's signature folder whatever the selection, so a
    subset run and a full run share their batches. Runtime ``parameters`` are set on the
    pipeline's steps (as distilabel does); pass a copy to keep the original untouched.
    ``console_log=False`` keeps the engine's log off stderr (a caller forwarding it elsewhere);
    ``progress=True`` shows per-step progress (live on a terminal, log lines otherwise);
    ``stage`` names the load stage this pass runs, for the log; ``logging_handlers`` also get the
    run's log.
    """
    config = config or EngineConfig()
    if executor not in EXECUTORS:
        raise PipelineValidationError([f"Unknown executor {executor!r}; choose one of {list(EXECUTORS)}."])
    if executor == "ray":
        _require_ray()
    apply_parameters(pipeline, parameters or {})
    pipeline.check_requirements()
    if steps is not None:
        unknown = [s for s in steps if s not in pipeline.dag]
        if unknown:
            raise PipelineValidationError([f"Unknown step(s) {unknown} selected; steps are {pipeline.dag.names}."])
    dag = pipeline.dag.subdag(steps) if steps is not None else pipeline.dag
    layout = CacheLayout.for_pipeline(cache_dir or pipeline.cache_dir, pipeline.name, pipeline.signature)
    layout.create()
    stop = stop or threading.Event()
    if progress:
        totals = {n: dag.step(n).total_rows() for n in dag.names}
        reporter = ProgressReporter(logging.getLogger(LOGGER_NAME), totals, config.progress_interval)
        listener = Listeners(reporter, listener)
    error: BaseException | None = None
    try:
        with (
            settled_heap(),
            run_logging(layout.log_file, console=console_log, extra=logging_handlers) as logger,
            run_lock(layout, config.lock_timeout, logger),
        ):
            if stage is not None:
                logger.info("Pipeline '%s', %s.", pipeline.name, stage)
            if handle_signals:
                with interrupt_handlers(stop, logger):
                    return _execute(pipeline, dag, layout, use_cache, config, dry_run, executor, listener, stop, logger)
            return _execute(pipeline, dag, layout, use_cache, config, dry_run, executor, listener, stop, logger)
    except BaseException as exc:
        error = exc
        raise
    finally:
        if listener is not None:
            listener.on_finish(error)


def _execute(
    pipeline: Pipeline,
    dag: DAG,
    layout: CacheLayout,
    use_cache: bool,
    config: EngineConfig,
    dry_run: bool,
    executor: str,
    listener: RunListener | None,
    stop: threading.Event,
    logger: logging.Logger,
) -> RunResult:
    started = time.time()
    steps = dag.topological_order()
    leaves = pipeline.dag.leaves
    if not use_cache:
        layout.clear_outputs()
    committed = CommitJournal(layout.journal).read(repair=True)
    prior_failures = _invalidate(layout, committed, config, pipeline, logger) if not dry_run else {}
    if committed and _is_finished(steps, committed):
        logger.info("Pipeline '%s' already finished in %s; returning it from the cache.", pipeline.name, layout.root)
        if listener is not None:
            listener.on_start(steps, {n: list(committed.get(n, {}).values()) for n in steps})
        return RunResult(layout, _reused_summary(steps, committed), steps, leaves, from_cache=True)
    if executor == "processes":  # the worker server imports the engine while this thread prepares
        method = start_method_for(config.start_method, (dag.step(name) for name in dag.names), logger)
        config = config.model_copy(update={"start_method": method})
        process_context(method, start_server=True)
    if committed:
        _log_resume(logger, steps, committed)
    removed = _remove_uncounted(layout, committed)
    if removed:
        logger.info(
            "Removed %d batch file(s) (or segment tails) written but never committed; they are recomputed.", removed
        )
    atomic_write_bytes(layout.pipeline_yaml, dump_yaml(pipeline).encode("utf-8"), config.fsync)
    make_private_dirs(layout.artifacts_dir)
    for name in dag.names:  # before the steps are shipped to their workers
        dag.step(name).set_artifacts_directory(layout.artifacts_dir / name)
    if listener is not None:
        listener.on_start(steps, {n: list(committed.get(n, {}).values()) for n in steps})
    committer = BatchCommitter(
        layout,
        fsync=config.fsync,
        max_pending_rows=config.max_pending_rows,
        on_commit=listener.on_commit if listener is not None else None,
        committed_leaf_files={
            name: [part.path for part in leaf_parts(layout.root, (r for _, r in sorted(records.items())))]
            for name, records in committed.items()
        },
        leaf_arrows={
            name: LeafArrowBuilder(layout.root, name, pipeline.enable_metadata)
            for name in leaves
            if not committed.get(name)
        },
    )
    backend, capacity = make_backend(executor, config, logger, file_fsync=committer.file_fsync)
    scheduler = Scheduler(
        dag,
        layout,
        committed,
        backend,
        committer,
        pipeline.seed,
        logger,
        dry_run=dry_run,
        capacity=capacity,
        leaves=set(leaves),
        stop=stop,
        prior_failures=prior_failures,
    )
    status = "failed"
    try:
        scheduler.replay()
        try:
            backend.start({n: dag.step(n) for n in scheduler.steps_with_work()})
            summary = scheduler.run()
        finally:
            backend.stop()
        status = "finished"
    except BaseException:
        status = "interrupted" if stop.is_set() else "failed"
        raise
    finally:
        try:
            committer.close(finish_leaf_arrows=status == "finished")
        finally:
            # What the journal now holds, without reading it back (6,000 lines take ~0.1 s to parse).
            final = {name: dict(records) for name, records in committed.items()}
            for record in committer.committed:
                final.setdefault(record.step, {})[record.seq_no] = record
            write_snapshot(layout, pipeline, final, status, started, config.fsync)
    _log_summary(logger, pipeline, summary)
    return RunResult(layout, summary, steps, leaves, from_cache=False)


def _log_summary(logger: logging.Logger, pipeline: Pipeline, summary: RunSummary) -> None:
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
