"""Run events for observers (the Dagster layer, progress displays): what was committed, when steps finish."""

from __future__ import annotations

from typing import Protocol

from distil_dagster.cache.journal import BatchRecord

__all__ = ["RunListener"]


class RunListener(Protocol):
    """Receives events of one run. Called from engine threads: keep handlers short and thread-safe."""

    def on_start(self, steps: list[str], reused: dict[str, list[BatchRecord]]) -> None:
        """The run starts (after replay): the steps it covers and the batches reused from the cache."""

    def on_commit(self, records: list[BatchRecord]) -> None:
        """These batches are durable (their journal lines are written)."""

    def on_finish(self, error: BaseException | None) -> None:
        """The run ended (successfully when ``error`` is ``None``)."""
