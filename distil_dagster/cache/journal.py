"""The commit journal: one JSON line per committed output batch, appended, never rewritten.

A batch to recompute (a step with ``use_cache=False``, a batch with failed rows) is un-committed
by appending a retraction line before its file is removed, so the journal stays the truth.

A batch counts as done exactly when its line is in the journal, and its line is appended only
after its file was renamed into place. A line cut short by a kill is the uncommitted tail and
is dropped (the file is truncated back to the last whole line before appending again).

Every line ends with ``"crc":<CRC-32 of the line without it>``: a line damaged on disk (a digit of
a row count or a size changed) is reported, never read as another batch. Lines of journals
written before checksums have none and are read as they are.
"""

from __future__ import annotations

import json
import os
import re
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from distil_dagster.cache.atomic import make_private_dirs
from distil_dagster.errors import CacheCorruptedError

__all__ = ["BatchRecord", "CommitJournal", "is_complete"]


@dataclass(slots=True)
class BatchRecord:
    """A committed output batch of one step.

    Attributes:
        step: the producing step.
        seq_no: the batch's number among the step's outputs (0-based).
        num_rows: rows in the batch.
        last_batch: whether it is the step's last batch.
        file: path of the batch's file relative to the signature folder (``None`` when empty).
        size: size of the batch in bytes (the whole file, or the range at ``offset``).
        offset: where the batch starts in its file, for a batch in a segment (``None``: the
            file is the batch).
        failed_rows: rows whose step failed (outputs imputed with ``None``).
        failed_runs: runs in which this batch ended with failed rows (it is recomputed on the
            next run while this is within the configured reruns).
        created_from: predecessor -> ``[(source seq_no, start row, end row), ...]``.
        routed_to: for a routing step's batch, the steps it was routed to.
        source_seq: for a routed step's batch, the upstream batch it was cut from.
        first_row: for a leaf batch in a Parquet file shared with other batches, the batch's
            first row there (its rows are ``[first_row, first_row + num_rows)``); ``None``: the
            file is the batch.
    """

    step: str
    seq_no: int
    num_rows: int
    last_batch: bool
    file: str | None = None
    size: int | None = None
    offset: int | None = None
    failed_rows: int = 0
    failed_runs: int = 0
    created_from: dict[str, list[tuple[int, int, int]]] = field(default_factory=dict)
    routed_to: list[str] | None = None
    source_seq: int | None = None
    first_row: int | None = None

    def to_json(self) -> str:
        data: dict[str, Any] = {"step": self.step, "seq": self.seq_no, "rows": self.num_rows, "last": self.last_batch}
        if self.file is not None:
            data["file"], data["size"] = self.file, self.size
            if self.offset is not None:
                data["offset"] = self.offset
            if self.first_row is not None:
                data["first_row"] = self.first_row
        if self.failed_rows:
            data["failed"] = self.failed_rows
            data["failed_runs"] = self.failed_runs
        if self.created_from:
            data["from"] = self.created_from
        if self.routed_to is not None:
            data["routed"] = self.routed_to
        if self.source_seq is not None:
            data["source"] = self.source_seq
        return _seal(json.dumps(data, separators=(",", ":"), ensure_ascii=False))

    @classmethod
    def from_json(cls, line: str) -> BatchRecord:
        data = json.loads(line)
        return cls(
            step=data["step"],
            seq_no=int(data["seq"]),
            num_rows=int(data["rows"]),
            last_batch=bool(data["last"]),
            file=data.get("file"),
            size=data.get("size"),
            offset=data.get("offset"),
            failed_rows=int(data.get("failed", 0)),
            failed_runs=int(data.get("failed_runs", 0)),
            created_from={k: [tuple(x) for x in v] for k, v in data.get("from", {}).items()},
            routed_to=data.get("routed"),
            source_seq=data.get("source"),
            first_row=data.get("first_row"),
        )


def is_complete(records: dict[int, BatchRecord]) -> bool:
    """Whether a step's committed batches are all of them: its last batch and every one before."""
    last = next((seq for seq, r in records.items() if r.last_batch), None)
    return last is not None and all(seq in records for seq in range(last + 1))


_SEAL = re.compile(r',"crc":(\d+)\}$')


def _seal(text: str) -> str:
    """``text`` (a JSON object) with the CRC-32 of its UTF-8 bytes as a last member ``crc``."""
    return f'{text[:-1]},"crc":{zlib.crc32(text.encode("utf-8"))}}}'


def _unseal(line: str) -> str:
    """A journal line without its ``crc``, which must match (raises ``ValueError``); older lines have none."""
    match = _SEAL.search(line)
    if match is None:
        return line
    text = line[: match.start()] + "}"
    if zlib.crc32(text.encode("utf-8")) != int(match.group(1)):
        raise ValueError("the line does not match its checksum")
    return text


def _retraction(line: str) -> tuple[str, int] | None:
    if not line.startswith('{"retract"'):
        return None
    step, seq = json.loads(line)["retract"]
    return str(step), int(seq)


class CommitJournal:
    """Append-only journal of :class:`BatchRecord` lines in ``commits.jsonl``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def read(self, repair: bool = False) -> dict[str, dict[int, BatchRecord]]:
        """Committed records by step and seq_no; a torn last line does not count.

        ``repair=True`` (only the run holding the folder's lock) also cuts the torn line off, so
        the next append starts on a fresh line; readers outside a run must not repair.
        """
        records: dict[str, dict[int, BatchRecord]] = {}
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return records
        good_end = 0
        lines = raw.split(b"\n")
        for number, line in enumerate(lines, start=1):
            is_tail = number == len(lines)
            if not line:
                if not is_tail:
                    good_end += 1
                continue
            try:
                text = _unseal(line.decode("utf-8"))
                retracted = _retraction(text)
                record = BatchRecord.from_json(text) if retracted is None else None
            except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
                if is_tail:
                    break  # torn write of the last commit: it never counted
                raise CacheCorruptedError(
                    f"Commit journal {self.path} is corrupted at line {number} ({exc}); "
                    "run again with use_cache=False to recompute."
                ) from exc
            if is_tail:
                break  # no newline: the commit was cut short
            if record is not None:
                records.setdefault(record.step, {})[record.seq_no] = record
            elif retracted is not None:
                records.get(retracted[0], {}).pop(retracted[1], None)
            good_end += len(line) + 1
        if repair and good_end < len(raw):
            with open(self.path, "r+b") as handle:
                handle.truncate(good_end)
        return records

    def append(self, records: list[BatchRecord], fsync: bool) -> None:
        """Append records, one line each, with one write (and one fsync)."""
        self._write("".join(r.to_json() + "\n" for r in records), fsync)

    def retract(self, keys: list[tuple[str, int]], fsync: bool) -> None:
        """Un-commit batches (to recompute them): later reads no longer count them."""
        lines = (_seal(json.dumps({"retract": [s, q]}, separators=(",", ":"), ensure_ascii=False)) for s, q in keys)
        self._write("".join(line + "\n" for line in lines), fsync)

    def _write(self, text: str, fsync: bool) -> None:
        if not text:
            return
        if self._fd is None:
            make_private_dirs(self.path.parent)
            self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        payload = text.encode("utf-8")
        view = memoryview(payload)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]
        if fsync:
            os.fsync(self._fd)

    def sync(self) -> None:
        """fsync what was appended (when appends skip their own fsync)."""
        if self._fd is not None:
            os.fsync(self._fd)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
