"""Segments: intermediate batches appended to one file per writer, read back by byte range.

The journal counts a batch by file, offset and size. Bytes it does not count (a batch cut by a
kill, one whose commit never came) are dead: the next run cuts a segment back to its last
counted byte and removes segments nothing counts; rows come out exactly once.
"""

from __future__ import annotations

import itertools
import threading
from pathlib import Path

import pytest

from distil_dagster.cache.batch_store import append_batch, read_rows
from distil_dagster.cache.segments import SegmentWriter, trim
from distil_dagster.errors import CacheCorruptedError
from tests.cache.test_recovery import EXPECTED, build


def _rows(tag: int, count: int = 3) -> list[dict]:
    return [{"id": i, "tag": tag, "text": f"batch {tag} row {i}", "nested": {"t": (tag, i)}} for i in range(count)]


def test_batches_read_back_exactly_from_their_ranges_across_rotated_segments(tmp_path: Path) -> None:
    writer = SegmentWriter(tmp_path / "steps" / "a", fsync=True, max_bytes=400)
    ranges = [(rows, *append_batch(writer, rows)) for rows in (_rows(n) for n in range(8))]
    writer.close()

    files = {path for _, path, _, _ in ranges}
    assert len(files) > 1, "max_bytes starts new segments"
    assert all(p.parent == tmp_path / "steps" / "a" and p.suffix == ".seg" for p in files)
    for rows, path, offset, size in ranges:
        assert read_rows(path, size, offset) == rows
    for path in files:  # back to back: no gap, no overlap, nothing after the last batch
        spans = sorted((offset, size) for _, p, offset, size in ranges if p == path)
        assert spans[0][0] == 0
        assert all(a + n == b for (a, n), (b, _) in itertools.pairwise(spans))
        assert path.stat().st_size == spans[-1][0] + spans[-1][1]


def test_two_writers_in_one_folder_never_share_a_file(tmp_path: Path) -> None:
    first, second = SegmentWriter(tmp_path, fsync=False), SegmentWriter(tmp_path, fsync=False)
    a, b = append_batch(first, _rows(1)), append_batch(second, _rows(2))
    assert a[0] != b[0]
    assert (a[1], b[1]) == (0, 0)
    assert read_rows(a[0], a[2], a[1]) == _rows(1) and read_rows(b[0], b[2], b[1]) == _rows(2)


def test_appends_from_several_threads_get_disjoint_ranges(tmp_path: Path) -> None:
    writer = SegmentWriter(tmp_path, fsync=False)
    results: dict[int, tuple[Path, int, int]] = {}
    lock = threading.Lock()

    def work(tag: int) -> None:
        placed = append_batch(writer, _rows(tag, 20))
        with lock:
            results[tag] = placed

    threads = [threading.Thread(target=work, args=(tag,)) for tag in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for tag, (path, offset, size) in results.items():
        assert read_rows(path, size, offset) == _rows(tag, 20)
    spans = sorted((offset, size) for _, offset, size in results.values())
    assert all(a + n <= b for (a, n), (b, _) in itertools.pairwise(spans))


def test_a_flipped_byte_in_a_batch_range_is_never_read_as_other_rows(tmp_path: Path) -> None:
    writer = SegmentWriter(tmp_path, fsync=False)
    append_batch(writer, _rows(0))
    path, offset, size = append_batch(writer, _rows(1))
    append_batch(writer, _rows(2))
    content = path.read_bytes()
    silent = []
    for at in range(offset, offset + size):
        path.write_bytes(content[:at] + bytes([content[at] ^ 0x5A]) + content[at + 1 :])
        try:
            got = read_rows(path, size, offset)
        except CacheCorruptedError as exc:
            assert str(path) in str(exc)
            continue
        if got != _rows(1):
            silent.append(at)
    assert not silent, f"bytes flipped at {silent[:10]} were read as other rows"


def test_a_cut_or_missing_segment_and_a_bad_range_are_reported_with_the_path(tmp_path: Path) -> None:
    writer = SegmentWriter(tmp_path, fsync=False)
    path, offset, size = append_batch(writer, _rows(0))
    with pytest.raises(CacheCorruptedError, match=rf"{path}: the journal gives a batch offset -1"):
        read_rows(path, size, -1)
    with pytest.raises(CacheCorruptedError, match=rf"{path} is not a batch file"):
        read_rows(path, size - 1, offset + 1)
    trim(path, size // 2)
    with pytest.raises(CacheCorruptedError, match=rf"{path} ends before the batch at offset 0"):
        read_rows(path, size, offset)
    path.unlink()
    with pytest.raises(CacheCorruptedError, match=rf"{path} is missing"):
        read_rows(path, size, offset)


def test_trim_cuts_a_tail_and_never_extends(tmp_path: Path) -> None:
    path = tmp_path / "s.seg"
    path.write_bytes(b"x" * 10)
    assert trim(path, 4) and path.read_bytes() == b"xxxx"
    assert not trim(path, 8) and path.read_bytes() == b"xxxx"


def test_resume_cuts_uncounted_tails_removes_uncounted_segments_and_gives_rows_once(
    tmp_path: Path, executor: str, cache, rows
) -> None:
    """What a kill leaves: a batch appended but not counted, a torn tail, a segment never counted."""
    pipeline = build(tmp_path)
    pipeline.run(executor=executor)
    folder = cache(pipeline)
    journal = folder.journal()
    last_square = max(i for i, r in enumerate(journal) if r["step"] == "square")
    dropped = folder.keep_journal_lines(last_square)[0]  # killed after appending it, before counting it
    keep = journal[:last_square]
    segment = folder.root / dropped["file"]
    with segment.open("ab") as handle:
        handle.write(b"DDB1 torn batch")
    stray = segment.with_name("999-dead-001.seg")
    stray.write_bytes(segment.read_bytes())
    counted_end = max(r["offset"] + r["size"] for r in keep if r.get("file") == dropped["file"])

    assert rows(build(tmp_path).run(executor=executor)) == EXPECTED

    assert segment.stat().st_size == counted_end, "cut back to its last counted batch"
    assert not stray.exists()
    (again,) = [r for r in folder.records("square") if r["seq"] == dropped["seq"]]
    assert again["file"] != dropped["file"], "a recomputed batch goes to the new run's own segment"
    assert rows(build(tmp_path).run(executor=executor)) == EXPECTED


def test_a_name_taken_by_another_writer_is_never_appended_to(tmp_path: Path) -> None:
    writer = SegmentWriter(tmp_path, fsync=False)
    taken = tmp_path / f"{writer._token}-001.seg"  # another node's writer with the same pid and random part
    taken.write_bytes(b"someone else's batch")
    path, offset, size = append_batch(writer, _rows(1))
    assert path != taken and offset == 0
    assert taken.read_bytes() == b"someone else's batch"
    assert read_rows(path, size, offset) == _rows(1)
