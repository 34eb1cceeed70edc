"""Progress of the steps of an engine run, as the waiting ops see it."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace

from distil_dagster.cache.journal import BatchRecord
from distil_dagster.engine.scheduler import StepStats

__all__ = ["StepProgress", "Update"]


@dataclass
class StepProgress(StepStats):
    """Counters of one step in this run (computed now, or reused from the cache).

    ``finished`` once its last batch and every batch before it are committed (replicas may
    commit out of order).
    """

    finished: bool = False
    records: list[BatchRecord] = field(default_factory=list, repr=False)
    _last_seq: int | None = field(default=None, repr=False)
    _seqs: set[int] = field(default_factory=set, repr=False)

    def add(self, record: BatchRecord, reused: bool, elapsed: float) -> None:
        self.records.append(record)
        self._seqs.add(record.seq_no)
        if record.last_batch:
            self._last_seq = record.seq_no
        self.failed_rows += record.failed_rows
        if reused:
            self.reused_batches += 1
            self.reused_rows += record.num_rows
        else:
            self.batches += 1
            self.rows += record.num_rows
            self.seconds = elapsed
        self.finished = self._last_seq is not None and len(self._seqs) == self._last_seq + 1

    @property
    def total_batches(self) -> int:
        return self.batches + self.reused_batches

    @property
    def total_rows(self) -> int:
        return self.rows + self.reused_rows

    def counters(self) -> StepProgress:
        """A copy without the records (cheap to hand out while the step runs)."""
        return replace(self, records=[], _seqs=set())


@dataclass(frozen=True)
class Update:
    """What an op waiting for its step learns on one wake-up.

    Attributes:
        logs: engine log records to forward.
        progress: the counters of the op's step.
        report: when a progress report is due, the counters of every step that committed since.
    """

    logs: list[logging.LogRecord]
    progress: StepProgress
    report: dict[str, StepProgress]
