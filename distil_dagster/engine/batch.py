"""Batches and the per-consumer streams of committed upstream batches.

A :class:`Batch` is the input of one step call, identified by ``(step, seq_no)``: one list of rows
per predecessor and ``created_from``, the upstream batches and row ranges it was cut from.
A :class:`Piece` is a committed upstream output batch as one consumer sees it; its rows stay on
disk until a batch that needs them is built. A :class:`Stream` orders pieces by ``seq_no`` (so
replicas may finish out of order) and hands out rows in order.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from distil_dagster.cache.journal import BatchRecord

__all__ = ["Batch", "Piece", "Stream"]

Rows = list[dict[str, Any]]
Loader = Callable[[BatchRecord], Rows]


@dataclass(slots=True)
class Batch:
    """The input of one call of a step.

    Attributes:
        step: the step the batch is for.
        seq_no: its number among that step's batches; the output batch has the same number.
        last_batch: whether no batch follows for this step.
        data: one list of rows per predecessor (per routed branch for a convergence step).
        created_from: predecessor -> ``[(source seq_no, start row, end row), ...]``.
        source_seq: for a step receiving routed batches, the upstream batch it was cut from.
    """

    step: str
    seq_no: int
    last_batch: bool
    data: list[Rows]
    created_from: dict[str, list[tuple[int, int, int]]] = field(default_factory=dict)
    source_seq: int | None = None

    @property
    def num_rows(self) -> int:
        return sum(len(rows) for rows in self.data)


@dataclass(slots=True)
class Piece:
    """A committed output batch of a predecessor, as delivered to one consumer."""

    record: BatchRecord
    rows: Rows | None
    num_rows: int
    last_batch: bool

    @property
    def seq_no(self) -> int:
        return self.record.seq_no

    def load(self, loader: Loader) -> Rows:
        if self.rows is None:
            self.rows = loader(self.record)
        return self.rows


class Stream:
    """One predecessor's committed batches, in ``seq_no`` order, as seen by one consumer."""

    def __init__(self, source: str, loader: Loader, keep_empty: bool = False) -> None:
        self.source = source
        self.keep_empty = keep_empty
        self.loader = loader
        self.pending: dict[int, Piece] = {}
        self.next_seq = 0
        self.queue: deque[Piece] = deque()
        self.offset = 0
        self.available = 0
        self.finished = False

    def add(self, piece: Piece) -> None:
        """Accept a piece; pieces become available once every earlier seq_no has arrived."""
        self.pending[piece.seq_no] = piece
        while self.next_seq in self.pending:
            ready = self.pending.pop(self.next_seq)
            self.next_seq += 1
            self.queue.append(ready)
            self.available += ready.num_rows
            if ready.last_batch:
                self.finished = True
        self._drop_consumed()

    def _drop_consumed(self) -> None:
        while self.queue and self.offset >= self.queue[0].num_rows:
            if self.keep_empty and self.queue[0].num_rows == 0:
                break
            self.queue.popleft()
            self.offset = 0

    def front_remaining(self) -> int:
        """Rows left in the first available piece (0 when none)."""
        return self.queue[0].num_rows - self.offset if self.queue else 0

    def take(self, n: int, load: bool) -> tuple[Rows, list[tuple[int, int, int]]]:
        """Take up to ``n`` rows in order; ``load=False`` only advances (rows not read)."""
        rows: Rows = []
        created: list[tuple[int, int, int]] = []
        while n > 0 and self.queue:
            piece = self.queue[0]
            k = min(n, piece.num_rows - self.offset)
            if k > 0:
                created.append((piece.seq_no, self.offset, self.offset + k))
                if load:
                    data = piece.load(self.loader)
                    rows.extend(data[self.offset : self.offset + k] if (self.offset or k < len(data)) else data)
                self.offset += k
                self.available -= k
                n -= k
            self._drop_consumed()
        return rows, created

    def take_pieces(self, count: int) -> tuple[list[Piece], list[tuple[int, int, int]], int]:
        """Take the next ``count`` pieces cut from one upstream batch (their rows stay unread).

        Returns the non-empty pieces, their provenance and their row count.
        """
        pieces: list[Piece] = []
        created: list[tuple[int, int, int]] = []
        total = 0
        while count > 0 and self.queue:
            piece = self.queue.popleft()
            remaining = piece.num_rows - self.offset
            if remaining > 0 or piece.record.source_seq is not None:
                count -= 1
            if remaining > 0:
                pieces.append(piece)
                created.append((piece.seq_no, self.offset, piece.num_rows))
                total += remaining
                self.available -= remaining
            self.offset = 0
        return pieces, created, total

    def pieces_from_source(self, source_seq: int) -> int:
        """How many available pieces were cut from upstream batch ``source_seq``."""
        return sum(1 for p in self.queue if p.record.source_seq == source_seq)
