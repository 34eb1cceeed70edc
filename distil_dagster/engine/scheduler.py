"""The scheduler loop: hands ready batches to a worker backend and commits their results.

Data flow: replay the journal into the batch manager (rows stay on disk), then loop: submit the
deepest ready batch (or, when nothing is ready, the next batch of a generator whose consumers
wait), block on the backend for a result, register it with the batch manager (which routes it
and feeds the consumers) and queue it for commit. A batch is registered before anything built
from it can be submitted, so commits reach the journal in dependency order.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from distil_dagster.cache.batch_store import LeafPart, read_leaf_part, read_rows
from distil_dagster.cache.committer import BatchCommitter
from distil_dagster.cache.journal import BatchRecord, is_complete
from distil_dagster.cache.layout import CacheLayout
from distil_dagster.engine.backend import WorkerBackend
from distil_dagster.engine.batch import Batch, Rows
from distil_dagster.engine.batch_manager import BatchManager
from distil_dagster.engine.tasks import GenerateTask, ProcessTask, SliceRef, Task, TaskResult
from distil_dagster.errors import DistilDagsterError, RunInterrupted
from distil_dagster.steps.base import Step

if TYPE_CHECKING:
    from distil_dagster.pipeline.dag import DAG

__all__ = ["RunSummary", "Scheduler", "StepStats"]


@dataclass
class StepStats:
    """Per-step counters reported at the end of a run (and to Dagster as metadata)."""

    batches: int = 0
    rows: int = 0
    failed_rows: int = 0
    reused_batches: int = 0
    reused_rows: int = 0
    seconds: float = 0.0


@dataclass
class RunSummary:
    steps: dict[str, StepStats] = field(default_factory=dict)
    seconds: float = 0.0


@dataclass
class _Generator:
    name: str
    seq_no: int = 0
    offset: int = 0
    finished: bool = False
    in_flight: bool = False


class Scheduler:
    """Drives one run of a (sub-)DAG to completion on a backend.

    Args:
        dag: the graph to run.
        layout: the signature folder.
        committed: the journal's records (step -> seq_no -> record).
        backend: where steps run.
        committer: commits batch files and journal lines.
        seed: the pipeline seed (routing).
        logger: the run's logger.
        dry_run: stop every generator after its first batch.
        capacity: tasks in flight at once (1 for the inline backend).
        leaves: leaf steps of the whole pipeline (their batches are Parquet), default the DAG's.
        stop: when set, no new task is submitted; in-flight tasks finish and the run stops.
        prior_failures: for batches recomputed because their rows failed, in how many runs.
    """

    def __init__(
        self,
        dag: DAG,
        layout: CacheLayout,
        committed: dict[str, dict[int, BatchRecord]],
        backend: WorkerBackend,
        committer: BatchCommitter,
        seed: int,
        logger: logging.Logger,
        dry_run: bool = False,
        capacity: int = 1,
        leaves: set[str] | None = None,
        stop: threading.Event | None = None,
        prior_failures: dict[tuple[str, int], int] | None = None,
    ) -> None:
        self.dag = dag
        self.layout = layout
        self._root = str(layout.root)
        self.committed = committed
        self.backend = backend
        self.committer = committer
        self.logger = logger
        self.dry_run = dry_run
        self.capacity = capacity
        self.leaves = leaves if leaves is not None else set(dag.leaves)
        self.stop = stop or threading.Event()
        self.prior_failures = prior_failures or {}
        self.summary = RunSummary({name: StepStats() for name in dag.names})
        self.manager = BatchManager(dag, {s: set(r) for s, r in committed.items()}, self._load, seed)
        self.generators = [_Generator(n) for n in dag.topological_order() if dag.step(n).is_generator]
        self.in_memory = backend.in_memory
        self.records: dict[tuple[str, int], BatchRecord] = {}
        self._pending: dict[str, int] = {}
        self._in_flight = 0
        self._started: dict[int, float] = {}
        self._bounds: dict[str, int] = {}
        #: Leaf files that committed batches are in: a recomputed batch never writes over one.
        self._taken = {r.file for name in self.leaves for r in committed.get(name, {}).values() if r.file}

    def _load(self, record: BatchRecord) -> Rows:
        if record.file is None:
            return []
        path = self.layout.root / record.file
        if record.first_row is not None:  # a leaf batch in a file shared with others
            rows: Rows = read_leaf_part(LeafPart(path, record.size, record.first_row, record.num_rows)).to_pylist()
            return rows
        return read_rows(path, record.size, record.offset)

    def replay(self) -> None:
        """Feed the committed batches to the batch manager, in dependency order."""
        for name in self.dag.topological_order():
            records = self.committed.get(name, {})
            stats = self.summary.steps[name]
            for seq in sorted(records):
                record = records[seq]
                self.records[(name, seq)] = record
                self.manager.register(record, None)
                stats.reused_batches += 1
                stats.reused_rows += record.num_rows
                stats.failed_rows += record.failed_rows
        for gen in self.generators:
            records = self.committed.get(gen.name, {})
            while gen.seq_no in records:
                record = records[gen.seq_no]
                gen.offset += record.num_rows
                gen.seq_no += 1
                gen.finished = record.last_batch

    def steps_with_work(self) -> list[str]:
        """Steps whose last batch is not committed yet (only these are loaded)."""
        done = {n for n, recs in self.committed.items() if is_complete(recs)}
        return [n for n in self.dag.topological_order() if n not in done]

    def run(self) -> RunSummary:
        """Compute every missing batch. Raises the first error that stops the run."""
        start = time.perf_counter()
        fatal: BaseException | None = None
        while True:
            while self._in_flight < self.capacity and not self.stop.is_set() and fatal is None:
                task = self._next_task()
                if task is None:
                    break
                self._started[id(task)] = time.perf_counter()
                self.backend.submit(task)
                self._in_flight += 1
            if self._in_flight == 0:
                break
            result = self.backend.receive()
            self._in_flight -= 1
            if result.error is not None:
                # Stop scheduling but commit what is still in flight: generated rows are never lost.
                fatal = fatal or result.error
                continue
            self._handle(result)
        if fatal is not None:
            raise fatal
        if self.stop.is_set():
            self.logger.warning("Stop honoured: the batches in flight were committed; the next run resumes from here.")
            raise RunInterrupted(
                "The run was interrupted; committed batches are kept and the next run resumes from them."
            )
        unfinished = [n for n in self.steps_with_work() if not self._finished(n)]
        if unfinished:
            raise DistilDagsterError(
                f"The run ended with steps that did not finish: {unfinished}. This is a bug; please report it."
            )
        self.summary.seconds = time.perf_counter() - start
        return self.summary

    def _finished(self, name: str) -> bool:
        gen = self._generator(name)
        return gen.finished if gen is not None else self.manager.is_done(name)

    def _generator(self, name: str) -> _Generator | None:
        return next((g for g in self.generators if g.name == name), None)

    def _output_path(self, step: str, seq_no: int) -> str:
        """A leaf batch's Parquet file (named by its number, unless a file of that name still holds
        counted batches); for other steps, the folder of their segments."""
        if step in self.leaves:
            attempt = 0
            while (name := self.layout.leaf_name(step, seq_no, attempt)) in self._taken:
                attempt += 1
            return f"{self._root}/{name}"
        return str(self.layout.segment_dir(step))

    def _next_task(self) -> Task | None:
        batch = self.manager.next_batch(load=self.in_memory)
        if batch is not None:
            self._pending[batch.step] = self._pending.get(batch.step, 0) + 1
            if self.in_memory:
                return ProcessTask(batch)
            return ProcessTask(batch, self._slices(batch), self._output_path(batch.step, batch.seq_no))
        waiting = [g.name for g in self.generators if not g.finished and not g.in_flight]
        saturated = {n for n, count in self._pending.items() if count >= self._queue_bound(n)}
        for name in self.manager.hungry_generators(waiting, saturated):
            gen = self._generator(name)
            assert gen is not None
            gen.in_flight = True
            output = None if self.in_memory else self._output_path(gen.name, gen.seq_no)
            return GenerateTask(gen.name, gen.seq_no, gen.offset, output)
        return None

    def _queue_bound(self, step: str) -> int:
        """Batches of ``step`` allowed in flight or queued before generators pause (backpressure):
        twice what its replicas compute at once."""
        bound = self._bounds.get(step)
        if bound is None:
            node = self.dag.step(step)
            slots = node.concurrent_batches() if isinstance(node, Step) and not node.is_global else 1
            bound = self._bounds[step] = 2 * int(node.resources.replicas or 1) * max(1, slots)
        return bound

    def _slices(self, batch: Batch) -> list[list[SliceRef]]:
        slices = []
        for source, ranges in batch.created_from.items():
            refs = []
            for seq, start, end in ranges:
                record = self.records[(source, seq)]
                if end > start and record.file is not None:
                    refs.append(SliceRef(f"{self._root}/{record.file}", record.size, start, end, record.offset))
            slices.append(refs)
        return slices

    def _handle(self, result: TaskResult) -> None:
        task = result.task
        waited = time.perf_counter() - self._started.pop(id(task), time.perf_counter())
        elapsed = result.seconds or waited  # the worker's own time when it reports it
        if isinstance(task, GenerateTask):
            gen = self._generator(task.step)
            assert gen is not None
            last = result.last_batch or self.dry_run
            record = BatchRecord(
                task.step,
                task.seq_no,
                result.num_rows,
                last,
                size=result.size,
                offset=result.offset,
                first_row=result.first_row,
            )
            gen.in_flight = False
            gen.seq_no += 1
            gen.offset += result.num_rows
            gen.finished = last
        else:
            batch = task.batch
            self._pending[batch.step] -= 1
            record = BatchRecord(
                batch.step,
                batch.seq_no,
                result.num_rows,
                batch.last_batch,
                size=result.size,
                offset=result.offset,
                first_row=result.first_row,
                failed_rows=result.failed_rows,
                failed_runs=self.prior_failures.get((batch.step, batch.seq_no), 0) + (1 if result.failed_rows else 0),
                created_from=batch.created_from,
                source_seq=batch.source_seq,
            )
        stats = self.summary.steps[record.step]
        stats.batches += 1
        stats.rows += record.num_rows
        stats.failed_rows += record.failed_rows
        stats.seconds += elapsed
        self.records[(record.step, record.seq_no)] = record
        if self.in_memory:  # the committer writes: a leaf's file, or appended to the step's segment
            leaf = record.step in self.leaves and record.num_rows
            self.manager.register(record, result.rows)
            self.committer.submit(
                record, result.rows, Path(self._output_path(record.step, record.seq_no)) if leaf else None
            )
        else:
            self.manager.register(record, None)
            self.committer.submit(record, None, Path(result.file) if result.file else None, result.schema, result.arrow)
