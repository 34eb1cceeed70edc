"""Recovery from what a crash or a bad disk leaves behind.

A batch file the journal does not count is removed on the next run and recomputed (rows exactly
once). A committed file that is cut short or garbled is reported as ``CacheCorruptedError``
naming the file, when a resume (or ``create_distiset``) reads it: never silently wrong data.
A crash is simulated by dropping the last journal lines of an unfinished leaf.
"""

from __future__ import annotations

import datetime
import decimal
import pickle
import re
import shutil
from pathlib import Path

import pytest

from distil_dagster.cache.batch_store import read_leaf_table, read_rows, write_rows
from distil_dagster.distiset import create_distiset
from distil_dagster.errors import CacheCorruptedError
from distil_dagster.pipeline import Pipeline
from distil_dagster.steps import LoadDataFromDicts, Step, StepInput
from distil_dagster.steps.typing import StepOutput
from tests.cache.steps import Label


class Square(Step):
    """Writes ``square = id * id``."""

    @property
    def inputs(self) -> list[str]:
        return ["id"]

    @property
    def outputs(self) -> list[str]:
        return ["square"]

    def process(self, inputs: StepInput) -> StepOutput:
        yield [{**row, "square": row["id"] ** 2} for row in inputs]


EXPECTED = [{"id": i, "square": i * i, "label": f"L{i}"} for i in range(10)]


def build(cache_dir: Path) -> Pipeline:
    with Pipeline(name="recovery", cache_dir=cache_dir, seed=0) as pipeline:
        gen = LoadDataFromDicts(name="gen", data=[{"id": i} for i in range(10)], batch_size=5)
        gen >> Square(name="square", input_batch_size=5) >> Label(name="label", input_batch_size=5)
    return pipeline


def _crash_before_last_leaf_batch(folder) -> dict:
    """Drop the journal lines from the leaf's last batch on; return that batch's record."""
    journal = folder.journal()
    index = next(i for i, r in enumerate(journal) if r["step"] == "label" and r["last"])
    dropped = folder.keep_journal_lines(index)
    assert dropped[0]["step"] == "label"
    return dropped[0]


def _square_file_read_by(folder, record: dict) -> str:
    """The committed intermediate segment holding the batch the leaf batch ``record`` was built from."""
    ((seq, _start, _end),) = record["from"]["square"]
    (source,) = [r for r in folder.records("square") if r["seq"] == seq]
    assert source["file"].startswith("steps/square/") and source["file"].endswith(".seg"), source
    return source["file"]


def test_uncommitted_and_stray_files_are_removed_and_rows_come_out_once(tmp_path: Path, cache, rows) -> None:
    pipeline = build(tmp_path)
    pipeline.run()
    folder = cache(pipeline)
    lost = _crash_before_last_leaf_batch(folder)
    assert (folder.root / lost["file"]).is_file(), "written but no longer committed"
    shutil.copyfile(folder.root / "data/label/00001.parquet", folder.root / "data/label/00007.parquet")
    (segment,) = {r["file"] for r in folder.records("square")}
    shutil.copyfile(folder.root / segment, folder.root / "steps/square/1-stray-001.seg")
    (folder.root / "data/label/.00002.parquet.999.tmp").write_bytes(b"half a file")

    result = rows(build(tmp_path).run())

    assert result == EXPECTED
    assert not (folder.root / "data/label/00007.parquet").exists()
    assert not (folder.root / "steps/square/1-stray-001.seg").exists()
    assert not (folder.root / "data/label/.00002.parquet.999.tmp").exists()
    assert sorted(p.name for p in (folder.root / "data/label").iterdir()) == ["00001.parquet", "00002.parquet"]
    assert "never committed" in folder.log_text
    assert [(r["seq"], r["rows"]) for r in folder.records("label")] == [(0, 5), (1, 5)]


def test_stray_leaf_file_in_a_finished_cache_is_not_read(tmp_path: Path, cache, rows) -> None:
    pipeline = build(tmp_path)
    pipeline.run()
    folder = cache(pipeline)
    shutil.copyfile(folder.root / "data/label/00001.parquet", folder.root / "data/label/00003.parquet")

    assert rows(build(tmp_path).run()) == EXPECTED
    assert rows(create_distiset(folder.root)) == EXPECTED


def test_torn_last_journal_line_is_dropped_and_recomputed(tmp_path: Path, cache, rows) -> None:
    pipeline = build(tmp_path)
    pipeline.run()
    folder = cache(pipeline)
    text = folder.journal_path.read_text()
    folder.journal_path.write_text(text[: len(text) - 10])

    assert rows(build(tmp_path).run()) == EXPECTED
    assert [(r["seq"], r["rows"]) for r in folder.records("label")] == [(0, 5), (1, 5)]


@pytest.mark.parametrize("damage", ["truncated", "garbage"])
def test_damaged_intermediate_file_is_reported_with_its_path_on_resume(
    tmp_path: Path, cache, executor: str, damage: str
) -> None:
    pipeline = build(tmp_path)
    pipeline.run()
    folder = cache(pipeline)
    lost = _crash_before_last_leaf_batch(folder)
    damaged = folder.root / _square_file_read_by(folder, lost)
    content = damaged.read_bytes()
    damaged.write_bytes(content[: len(content) // 2] if damage == "truncated" else b"\x00" * len(content))

    with pytest.raises(CacheCorruptedError, match=str(damaged)):
        build(tmp_path).run(executor=executor)


@pytest.mark.parametrize("damage", ["truncated", "garbage"])
def test_damaged_leaf_file_is_reported_with_its_path(tmp_path: Path, cache, damage: str) -> None:
    pipeline = build(tmp_path)
    pipeline.run()
    folder = cache(pipeline)
    damaged = folder.root / "data/label/00002.parquet"
    content = damaged.read_bytes()
    damaged.write_bytes(content[: len(content) // 2] if damage == "truncated" else b"\x00" * len(content))

    with pytest.raises(CacheCorruptedError, match=str(damaged)):
        create_distiset(folder.root)
    with pytest.raises(CacheCorruptedError, match=str(damaged)):
        build(tmp_path).run()


def test_missing_committed_file_is_reported_with_its_path(tmp_path: Path, cache, executor: str) -> None:
    pipeline = build(tmp_path)
    pipeline.run()
    folder = cache(pipeline)
    lost = _crash_before_last_leaf_batch(folder)
    missing = folder.root / _square_file_read_by(folder, lost)
    missing.unlink()

    with pytest.raises(CacheCorruptedError, match=rf"{missing} is missing"):
        build(tmp_path).run(executor=executor)


def test_corrupted_journal_line_in_the_middle_is_reported(tmp_path: Path, cache) -> None:
    pipeline = build(tmp_path)
    pipeline.run()
    folder = cache(pipeline)
    lines = folder.journal_path.read_text().splitlines(keepends=True)
    lines[1] = "{not json\n"
    folder.journal_path.write_text("".join(lines))

    with pytest.raises(CacheCorruptedError, match=rf"Commit journal {folder.journal_path} is corrupted at line 2"):
        build(tmp_path).run()


def test_use_cache_false_recovers_from_a_corrupted_cache(tmp_path: Path, cache, rows) -> None:
    pipeline = build(tmp_path)
    pipeline.run()
    (cache(pipeline).root / "data/label/00001.parquet").write_bytes(b"garbage")

    assert rows(build(tmp_path).run(use_cache=False)) == EXPECTED


@pytest.mark.parametrize("suffix", [".pkl", ".parquet"])
def test_a_flipped_byte_anywhere_in_a_batch_file_is_never_read_as_other_rows(tmp_path: Path, suffix: str) -> None:
    # Sizes match after a bad block on disk: only checksums tell (pickle frame CRC, Parquet page CRCs).
    rows = [{"id": i, "text": f"row {i} " * 3, "score": i / 7, "tags": [f"t{i}"], "meta": {"n": i}} for i in range(6)]
    path = tmp_path / f"00001{suffix}"
    size = write_rows(path, rows, "step", fsync=False)
    content = path.read_bytes()
    read = read_rows if suffix == ".pkl" else lambda p, s: read_leaf_table(p, s).to_pylist()
    silent = []
    for offset in range(len(content)):
        path.write_bytes(content[:offset] + bytes([content[offset] ^ 0x5A]) + content[offset + 1 :])
        try:
            got = read(path, size)
        except CacheCorruptedError as exc:
            assert str(path) in str(exc)
            continue
        if got != rows:
            silent.append(offset)
    assert not silent, f"bytes flipped at {silent[:10]} were read as other rows"


def test_a_bare_pickle_from_an_older_cache_is_still_read(tmp_path: Path) -> None:
    path = tmp_path / "00001.pkl"
    path.write_bytes(pickle.dumps([{"id": 1}], protocol=pickle.HIGHEST_PROTOCOL))

    assert read_rows(path) == [{"id": 1}]


@pytest.mark.parametrize(
    "values",
    [
        [1, None],
        ["a", None],
        [b"x", None],
        [["a"], []],
        [[[1]], [[2, 3]]],
        [[{"a": 1}], [{"a": 2, "b": [1.5]}]],
        [{"k": {"x": [1]}}, {"k": None}],
        [datetime.datetime(2020, 1, 1, tzinfo=datetime.timezone.utc), None],
        [datetime.date(2020, 1, 1), None],
        [decimal.Decimal("1.5"), None],
        [None, None],
    ],
)
def test_every_column_type_passes_its_own_leaf_checksum(tmp_path: Path, values: list) -> None:
    rows = [{"id": i, "value": v} for i, v in enumerate(values)]
    path = tmp_path / "00001.parquet"
    size = write_rows(path, rows, "step", fsync=False)

    assert read_leaf_table(path, size).to_pylist() == read_rows(path, size)  # no false alarm
    assert read_leaf_table(path, size).schema.metadata is None  # the check stays internal


def test_a_changed_digit_in_the_journal_is_reported_not_read_as_another_batch(tmp_path: Path, cache) -> None:
    pipeline = build(tmp_path)
    pipeline.run()
    folder = cache(pipeline)
    lines = folder.journal_path.read_text().splitlines(keepends=True)
    assert '"rows":5' in lines[1]
    lines[1] = lines[1].replace('"rows":5', '"rows":4')  # still valid JSON: only the checksum tells
    folder.journal_path.write_text("".join(lines))

    with pytest.raises(CacheCorruptedError, match=rf"Commit journal {folder.journal_path} is corrupted at line 2"):
        build(tmp_path).run()


def test_a_journal_without_checksums_is_still_read(tmp_path: Path, cache, rows) -> None:
    pipeline = build(tmp_path)
    pipeline.run()
    folder = cache(pipeline)
    text = re.sub(r',"crc":\d+\}', "}", folder.journal_path.read_text())
    folder.journal_path.write_text(text)

    assert rows(build(tmp_path).run()) == EXPECTED
