"""Run events for observers (the Dagster layer, progress displays): what was committed, when steps finish."""

from __future__ import annotations

from typing import Protocol

from distil_dagster.cache.journal import BatchRecord

__all__ = ["RunListener", "StagedListener"]


class RunListener(Protocol):
    """Receives events of one run. Called from engine threads: keep handlers short and thread-safe."""

    def on_start(self, steps: list[str], reused: dict[str, list[BatchRecord]]) -> None:
        """The run starts (after replay): the steps it covers and the batches reused from the cache."""

    def on_commit(self, records: list[BatchRecord]) -> None:
        """These batches are durable (their journal lines are written)."""

    def on_finish(self, error: BaseException | None) -> None:
        """The run ended (successfully when ``error`` is ``None``)."""


class StagedListener:
    """One listener's view of a run made of several engine passes (load stages) as of one run.

    A step is announced once (at the first pass covering it: later passes reuse what the earlier
    ones committed); the run finishes at the first error or at the end of the last pass.
    """

    def __init__(self, inner: RunListener) -> None:
        self.inner = inner
        self.last = False
        self._started: set[str] = set()

    def on_start(self, steps: list[str], reused: dict[str, list[BatchRecord]]) -> None:
        new = [step for step in steps if step not in self._started]
        self._started.update(new)
        self.inner.on_start(new, {step: reused.get(step, []) for step in new})

    def on_commit(self, records: list[BatchRecord]) -> None:
        self.inner.on_commit(records)

    def on_finish(self, error: BaseException | None) -> None:
        if error is not None or self.last:
            self.inner.on_finish(error)
