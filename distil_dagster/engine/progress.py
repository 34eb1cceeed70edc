"""Progress of a run for people: a live display on a terminal, periodic log lines otherwise.

Fed by commit events (``RunListener``), so it shows what is durable, and needs no timer
thread: plain lines are emitted on commits at most every ``interval`` seconds.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from distil_dagster.cache.journal import BatchRecord
from distil_dagster.engine.events import RunListener

if TYPE_CHECKING:  # rich is imported only for a live display (~20 ms of every run otherwise)
    from rich.console import Console
    from rich.progress import Progress, TaskID

__all__ = ["Listeners", "ProgressReporter"]


@dataclass
class _Counts:
    batches: int = 0
    rows: int = 0
    total: int | None = None
    started: float = 0.0


class ProgressReporter:
    """A ``RunListener`` showing rows and batches done per step, and rows/s.

    Args:
        logger: where plain progress lines go when not on a terminal.
        totals: rows each step will produce, when known (generators over fixed data).
        interval: seconds between plain lines.
        live: draw a live display (default: when stderr is a terminal).
        console: where the live display draws (default: stderr).
    """

    def __init__(
        self,
        logger: logging.Logger,
        totals: dict[str, int | None],
        interval: float = 10.0,
        live: bool | None = None,
        console: Console | None = None,
    ) -> None:
        self.logger = logger
        self.totals = totals
        self.interval = interval
        self.live = sys.stderr.isatty() if live is None else live
        self.console = console
        self._lock = threading.Lock()
        self._counts: dict[str, _Counts] = {}
        self._last_line = 0.0
        self._progress: Progress | None = None
        self._tasks: dict[str, TaskID] = {}

    def on_start(self, steps: list[str], reused: dict[str, list[BatchRecord]]) -> None:
        now = time.monotonic()
        self._last_line = now
        for name in steps:
            records = reused.get(name, [])
            self._counts[name] = _Counts(len(records), sum(r.num_rows for r in records), self.totals.get(name), now)
        if self.live:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self._progress = Progress(
                TextColumn("{task.description:<28}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("rows  {task.fields[batches]} batches  {task.fields[speed]}"),
                TimeElapsedColumn(),
                console=self.console or Console(stderr=True),
                transient=False,
            )
            for name, counts in self._counts.items():
                self._tasks[name] = self._progress.add_task(
                    name, total=counts.total, completed=counts.rows, batches=counts.batches, speed=""
                )
            self._progress.start()

    def on_commit(self, records: list[BatchRecord]) -> None:
        with self._lock:
            now = time.monotonic()
            for record in records:
                counts = self._counts.get(record.step)
                if counts is None:
                    continue
                counts.batches += 1
                counts.rows += record.num_rows
                if self._progress is not None:
                    self._progress.update(
                        self._tasks[record.step],
                        completed=counts.rows,
                        batches=counts.batches,
                        speed=f"{counts.rows / max(now - counts.started, 1e-9):,.0f} rows/s",
                    )
            if self._progress is None and now - self._last_line >= self.interval:
                self._last_line = now
                self.logger.info("Progress: %s.", self.summary())

    def summary(self) -> str:
        """One line: rows and batches per step."""
        parts = []
        for name, c in self._counts.items():
            total = f"/{c.total}" if c.total is not None else ""
            parts.append(f"{name}: {c.rows}{total} rows, {c.batches} batch(es)")
        return "; ".join(parts)

    def on_finish(self, error: BaseException | None) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None


class Listeners:
    """Several ``RunListener``s as one."""

    def __init__(self, *listeners: RunListener | None) -> None:
        self.listeners = [listener for listener in listeners if listener is not None]

    def on_start(self, steps: list[str], reused: dict[str, list[BatchRecord]]) -> None:
        for listener in self.listeners:
            listener.on_start(steps, reused)

    def on_commit(self, records: list[BatchRecord]) -> None:
        for listener in self.listeners:
            listener.on_commit(records)

    def on_finish(self, error: BaseException | None) -> None:
        for listener in self.listeners:
            listener.on_finish(error)
