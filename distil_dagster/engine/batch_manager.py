"""The batch manager: turns committed output batches into the next input batches of each step.

Data flow: the scheduler ``register``s every committed output batch (rows in memory, or on disk
when replayed from the journal); the batch manager routes it (seeded), appends it to the streams
of the consumers, and ``next_batch`` cuts the next input batch of the deepest ready step.
Batch composition depends only on upstream seq_nos and row counts, never on arrival timing, so
a resumed run rebuilds exactly the batches of the first run: steps skip the seq_nos already
committed without reading their inputs.

Semantics (distilabel 1.5): a normal step gets ``input_batch_size`` rows per predecessor (the
remainder last); a global step gets everything once; a routed step gets its share of each
upstream batch cut into ``input_batch_size`` pieces; a convergence step re-joins, for each
upstream batch in order, the rows of the branches it was routed to.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING

from distil_dagster.cache.journal import BatchRecord
from distil_dagster.engine.batch import Batch, Loader, Piece, Rows, Stream

if TYPE_CHECKING:
    from distil_dagster.pipeline.dag import DAG

__all__ = ["BatchManager"]


class _Planner(ABC):
    """Cuts the input batches of one step, in seq_no order."""

    def __init__(self, step: str, input_batch_size: int, streams: list[Stream], committed: set[int]) -> None:
        self.step = step
        self.ibs = input_batch_size
        self.streams = streams
        self.by_source = {s.source: s for s in streams}
        self.committed = committed
        self.seq = 0
        self.done = False

    @abstractmethod
    def ready(self) -> bool: ...

    @abstractmethod
    def build(self, load: bool) -> Batch: ...

    def _next_seq(self) -> int:
        seq = self.seq
        self.seq += 1
        return seq


class _NormalPlanner(_Planner):
    def ready(self) -> bool:
        return not self.done and all(s.available >= self.ibs or s.finished for s in self.streams)

    def build(self, load: bool) -> Batch:
        data, created = [], {}
        for stream in self.streams:
            rows, provenance = stream.take(self.ibs, load)
            data.append(rows)
            created[stream.source] = provenance
        last = all(s.finished and s.available == 0 for s in self.streams)
        self.done = last
        return Batch(self.step, self._next_seq(), last, data, created)


class _GlobalPlanner(_Planner):
    def ready(self) -> bool:
        return not self.done and all(s.finished for s in self.streams)

    def build(self, load: bool) -> Batch:
        data, created = [], {}
        for stream in self.streams:
            rows, provenance = stream.take(stream.available, load)
            data.append(rows)
            created[stream.source] = provenance
        self.done = True
        return Batch(self.step, self._next_seq(), True, data, created)


class _RoutedPlanner(_Planner):
    """One predecessor that routes; batches never cross an upstream batch boundary."""

    def ready(self) -> bool:
        stream = self.streams[0]
        return not self.done and (stream.front_remaining() > 0 or (stream.finished and stream.available == 0))

    def build(self, load: bool) -> Batch:
        stream = self.streams[0]
        source = stream.queue[0].seq_no if stream.front_remaining() > 0 else None
        rows, provenance = stream.take(min(self.ibs, stream.front_remaining()), load)
        last = stream.finished and stream.available == 0
        self.done = last
        return Batch(self.step, self._next_seq(), last, [rows], {stream.source: provenance}, source_seq=source)


@dataclass
class _Branch:
    """The rows one routed branch contributes to the group being re-joined (read on demand)."""

    name: str
    pieces: list[Piece]
    provenance: list[tuple[int, int, int]]
    count: int
    rows: Rows | None = None

    def load(self, loader: Loader) -> Rows:
        if self.rows is None:
            self.rows = [row for piece in self.pieces for row in piece.load(loader)]
        return self.rows


class _ConvergencePlanner(_Planner):
    """Re-joins, per upstream batch, the rows of the routed branches it went through."""

    def __init__(
        self, step: str, input_batch_size: int, streams: list[Stream], committed: set[int], branch_sizes: dict[str, int]
    ) -> None:
        super().__init__(step, input_batch_size, streams, committed)
        self.branch_sizes = branch_sizes
        self.groups: dict[int, tuple[list[str], int]] = {}
        self.last_group: int | None = None
        self.next_group = 0
        self.active: list[_Branch] | None = None
        self.chunk = 0
        self.chunks = 0
        self.group_is_last = False

    def expect(self, source_seq: int, routed_to: list[str], rows: int, last: bool) -> None:
        self.groups[source_seq] = (routed_to, rows)
        if last:
            self.last_group = source_seq

    def _needed(self, branch: str, rows: int) -> int:
        return math.ceil(rows / self.branch_sizes[branch])

    def _group_ready(self, n: int) -> bool:
        routed, rows = self.groups[n]
        return all(self.by_source[r].pieces_from_source(n) >= self._needed(r, rows) for r in routed)

    def ready(self) -> bool:
        if self.done:
            return False
        if self.active is not None:
            return True
        while self.next_group in self.groups and self._group_ready(self.next_group):
            if self.groups[self.next_group][1] > 0 or self.next_group == self.last_group:
                return True
            self._take_group()  # an empty upstream batch: nothing to re-join
            self.active = None
        return self.last_group is not None and self.next_group > self.last_group

    def _take_group(self) -> None:
        routed, rows = self.groups.pop(self.next_group)
        self.active = [_Branch(r, *self.by_source[r].take_pieces(self._needed(r, rows))) for r in routed]
        self.chunks = max([math.ceil(b.count / self.ibs) for b in self.active] + [1])
        self.chunk = 0
        self.group_is_last = self.next_group == self.last_group
        self.next_group += 1

    def build(self, load: bool) -> Batch:
        if self.active is None and self.next_group in self.groups:
            self._take_group()
        if self.active is None:  # upstream finished after an empty tail: close the stream
            self.done = True
            return Batch(self.step, self._next_seq(), True, [], {})
        lo, hi = self.chunk * self.ibs, (self.chunk + 1) * self.ibs
        data, created = [], {}
        for branch in self.active:
            data.append(branch.load(self.by_source[branch.name].loader)[lo:hi] if load else [])
            created[branch.name] = _slice_provenance(branch.provenance, lo, min(hi, branch.count))
        self.chunk += 1
        last = self.group_is_last and self.chunk >= self.chunks
        if self.chunk >= self.chunks:
            self.active = None
        self.done = last
        return Batch(self.step, self._next_seq(), last, data, created)


def _slice_provenance(provenance: list[tuple[int, int, int]], lo: int, hi: int) -> list[tuple[int, int, int]]:
    """The part of a concatenation of row ranges that covers rows ``[lo, hi)``."""
    out, position = [], 0
    for seq, start, end in provenance:
        size = end - start
        a, b = max(lo, position), min(hi, position + size)
        if a < b:
            out.append((seq, start + a - position, start + b - position))
        position += size
    return out


class BatchManager:
    """Routes committed batches to consumers and cuts every step's next input batch.

    Args:
        dag: the pipeline graph (sub-DAG being run).
        committed: step -> seq_nos already committed (skipped, never recomputed).
        loader: reads the rows of a committed batch from the cache.
        seed: the pipeline seed for routing decisions.
    """

    def __init__(self, dag: DAG, committed: dict[str, set[int]], loader: Loader, seed: int) -> None:
        self.dag = dag
        self.seed = seed
        self.order = dag.topological_order()
        self.planners: dict[str, _Planner] = {}
        self.streams: dict[tuple[str, str], Stream] = {}
        for name in self.order:
            step = dag.step(name)
            if step.is_generator:
                continue
            conv = dag.convergence_upstream(name)
            streams = [Stream(p, loader, keep_empty=conv is not None) for p in dag.predecessors(name)]
            for stream in streams:
                self.streams[(stream.source, name)] = stream
            ibs = int(getattr(step, "input_batch_size", 1) or 1)
            done = committed.get(name, set())
            planner: _Planner
            if step.is_global:
                planner = _GlobalPlanner(name, ibs, streams, done)
            elif conv is not None:
                sizes = {p: int(getattr(dag.step(p), "input_batch_size", 1) or 1) for p in dag.predecessors(name)}
                planner = _ConvergencePlanner(name, ibs, streams, done, sizes)
            elif dag.routed_upstream(name) is not None:
                planner = _RoutedPlanner(name, ibs, streams, done)
            else:
                planner = _NormalPlanner(name, ibs, streams, done)
            self.planners[name] = planner
        self._reverse = [n for n in reversed(self.order) if n in self.planners]

    def register(self, record: BatchRecord, rows: Rows | None) -> None:
        """Hand a committed output batch to its consumers (routing it first if needed).

        ``rows`` may be ``None`` (replayed from the journal: read lazily). Each consumer gets
        its own shallow copy of the rows, so steps may mutate rows in place.
        """
        name = record.step
        routing = self.dag.routing.get(name)
        if routing is not None and record.routed_to is None:
            record.routed_to = routing.function.route(routing.targets, self.seed, name, record.seq_no)
        successors = self.dag.successors(name)
        for consumer in successors:
            stream = self.streams.get((name, consumer))
            if stream is None:
                continue
            share = rows if rows is None else [dict(r) for r in rows]
            count = record.num_rows
            if routing is not None and consumer in routing.targets and consumer not in (record.routed_to or []):
                share, count = [], 0
            stream.add(Piece(record, share, count, record.last_batch))
        if routing is not None:
            for planner in self.planners.values():
                if isinstance(planner, _ConvergencePlanner) and self.dag.convergence_upstream(planner.step) == name:
                    # A convergence step may sit after only some of the routed branches.
                    mine = [t for t in record.routed_to or [] if t in planner.by_source]
                    planner.expect(record.seq_no, mine, record.num_rows if mine else 0, record.last_batch)

    def next_batch(self, load: bool = True) -> Batch | None:
        """The next input batch to compute (deepest ready step first), or ``None``.

        ``load=False`` leaves the rows on disk: the batch carries only its provenance.
        """
        for name in self._reverse:
            planner = self.planners[name]
            while planner.ready():
                batch_seq = planner.seq
                if batch_seq in planner.committed:
                    planner.build(load=False)
                    continue
                return planner.build(load=load)
        return None

    def is_done(self, step: str) -> bool:
        planner = self.planners.get(step)
        return planner.done if planner is not None else False

    def hungry_generators(self, generators: list[str], saturated: set[str]) -> list[str]:
        """Generators to ask for more rows: those whose consumers wait for rows (distilabel's
        ``empty_buffers``) first, then the others; none feeding only ``saturated`` consumers."""
        hungry, others = [], []
        for gen in generators:
            consumers = [c for c in self.dag.successors(gen) if c in self.planners and not self.planners[c].done]
            if consumers and all(c in saturated for c in consumers):
                continue
            if any(self.streams[(gen, c)].available < self.planners[c].ibs for c in consumers):
                hungry.append(gen)
            else:
                others.append(gen)
        return hungry + others
