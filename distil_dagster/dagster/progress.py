"""Progress of the steps of an engine run, as the waiting ops see it."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace

from distil_dagster.cache.journal import BatchRecord

__all__ = ["StepProgress", "Update"]


@dataclass
class StepProgress:
    """Counters of one step in this run (computed now, or reused from the cache)."""

    batches: int = 0
    rows: int = 0
    failed_rows: int = 0
    reused_batches: int = 0
    reused_rows: int = 0
    seconds: float = 0.0
    finished: bool = False
    records: list[BatchRecord] = field(default_factory=list, repr=False)

    def add(self, record: BatchRecord, reused: bool, elapsed: float) -> None:
        self.records.append(record)
        self.failed_rows += record.failed_rows
        if reused:
            self.reused_batches += 1
            self.reused_rows += record.num_rows
        else:
            self.batches += 1
            self.rows += record.num_rows
            self.seconds = elapsed
        self.finished = self.finished or record.last_batch

    @property
    def total_batches(self) -> int:
        return self.batches + self.reused_batches

    @property
    def total_rows(self) -> int:
        return self.rows + self.reused_rows

    def counters(self) -> StepProgress:
        """A copy without the records (cheap to hand out while the step runs)."""
        return replace(self, records=[])


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
