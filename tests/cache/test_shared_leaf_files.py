"""Leaf batches written at once share one Parquet file, each counted by its first row there.

The committer puts a leaf's batches of one commit group into the first one's file; readers
(Distiset, Dagster leaf data, asset checks) take each counted batch's rows only, so rows of a
batch whose journal line was lost are never read, and a batch recomputed later goes to a file
of its own instead of replacing one that still holds counted batches.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq

from distil_dagster.cache.batch_store import LeafPart, leaf_parts, leaf_runs, read_leaf_part, read_leaf_run, write_batch
from distil_dagster.cache.committer import BatchCommitter
from distil_dagster.cache.journal import BatchRecord, CommitJournal
from distil_dagster.cache.layout import CacheLayout
from distil_dagster.dagster.leaf_data import leaf_output
from distil_dagster.distiset import create_distiset
from distil_dagster.pipeline import Pipeline
from distil_dagster.steps import LoadDataFromDicts
from tests.cache.steps import Label

EXPECTED = [{"id": i, "label": f"L{i}"} for i in range(6)]


def _pipeline(cache_dir: Path) -> Pipeline:
    with Pipeline(name="shared", cache_dir=cache_dir) as pipeline:
        LoadDataFromDicts(name="gen", data=[{"id": i} for i in range(6)], batch_size=2) >> Label(
            name="label", input_batch_size=2
        )
    return pipeline


def _share_leaf_file(root: Path, keep: int, failed_seq: int | None = None) -> Path:
    """Rewrite a finished cache as if the leaf's 3 batches had been written at once into one
    file, the journal counting the first ``keep`` of them (``failed_seq``: with failed rows)."""
    journal = CommitJournal(root / "commits.jsonl")
    committed = journal.read()
    journal.close()
    leaf = [r for _, r in sorted(committed["label"].items())]
    rows = [
        row for run in leaf_runs(leaf_parts(root, leaf)) for table in read_leaf_run(run) for row in table.to_pylist()
    ]
    for path in (root / "data" / "label").iterdir():
        path.unlink()
    shared = root / "data" / "label" / "00001.parquet"
    size, _ = write_batch(shared, rows, "label", fsync=False)
    first = 0
    for record in leaf:
        record.file, record.size, record.first_row = "data/label/00001.parquet", size, first
        first += record.num_rows
        if record.seq_no == failed_seq:
            record.failed_rows, record.failed_runs = 1, 1
    others = [r for step, records in committed.items() if step != "label" for r in records.values()]
    lines = [r.to_json() for r in others + leaf[:keep]]
    (root / "commits.jsonl").write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return shared


def _rows(distiset) -> list[dict]:
    return distiset["default"]["train"].to_list()


def test_rows_of_a_shared_file_that_the_journal_does_not_count_are_never_read(tmp_path: Path) -> None:
    pipeline = _pipeline(tmp_path)
    pipeline.run(executor="inline")
    root = CacheLayout.for_pipeline(tmp_path, "shared", pipeline.signature).root
    shared = _share_leaf_file(root, keep=2)  # the last batch's line was lost (a kill)
    size = shared.stat().st_size

    assert _rows(_pipeline(tmp_path).run(executor="inline")) == EXPECTED

    assert shared.stat().st_size == size, "the file still counted for two batches is kept as it is"
    assert pq.read_metadata(shared).num_rows == 6, "with the uncounted batch's rows, which are not read"
    records = leaf_output(root, "label").records
    assert [(r.file, r.first_row) for r in records] == [
        ("data/label/00001.parquet", 0),
        ("data/label/00001.parquet", 2),
        ("data/label/00003.parquet", None),
    ]
    assert leaf_output(root, "label").part_rows() == [2, 2, 2]
    assert _rows(create_distiset(root)) == EXPECTED


def test_a_recomputed_batch_never_replaces_a_file_that_still_holds_counted_batches(tmp_path: Path) -> None:
    pipeline = _pipeline(tmp_path)
    pipeline.run(executor="inline")
    root = CacheLayout.for_pipeline(tmp_path, "shared", pipeline.signature).root
    shared = _share_leaf_file(root, keep=3, failed_seq=0)  # batch 0 had failed rows: rerun
    inode = shared.stat().st_ino

    assert _rows(_pipeline(tmp_path).run(executor="inline")) == EXPECTED

    assert shared.stat().st_ino == inode, "batches 1 and 2 are still read from their file"
    records = leaf_output(root, "label").records
    assert [(r.seq_no, r.file, r.first_row, r.failed_rows) for r in records] == [
        (0, "data/label/00001-1.parquet", None, 0),
        (1, "data/label/00001.parquet", 2, 0),
        (2, "data/label/00001.parquet", 4, 0),
    ]
    assert _rows(create_distiset(root)) == EXPECTED


def test_the_committer_writes_a_groups_batches_of_a_leaf_into_the_first_ones_file(tmp_path: Path) -> None:
    layout = CacheLayout(tmp_path)
    layout.create()
    committer = BatchCommitter(layout, fsync=False)
    with committer._cond:  # held: the writer thread takes the four batches as one group
        for seq in range(4):
            rows = [{"id": seq * 3 + i, "text": None if seq == 0 else f"t{seq}"} for i in range(3 if seq != 2 else 0)]
            path = layout.leaf_file("leaf", seq) if rows else None  # an empty batch has no file
            committer.submit(BatchRecord("leaf", seq, len(rows), seq == 3), rows, path)
    committer.close()

    journal = CommitJournal(layout.journal)
    records = [r for _, r in sorted(journal.read()["leaf"].items())]
    journal.close()
    assert [(r.file, r.first_row, r.num_rows) for r in records] == [
        ("data/leaf/00001.parquet", 0, 3),
        ("data/leaf/00001.parquet", 3, 3),
        (None, None, 0),  # an empty batch has no file
        ("data/leaf/00001.parquet", 6, 3),
    ]
    assert sorted(p.name for p in (tmp_path / "data" / "leaf").iterdir()) == ["00001.parquet"]
    tables = [t for run in leaf_runs(leaf_parts(tmp_path, records)) for t in read_leaf_run(run)]
    rows = [row for table in tables for row in table.to_pylist()]
    assert [row["id"] for row in rows] == [0, 1, 2, 3, 4, 5, 9, 10, 11]
    assert [row["text"] for row in rows] == [None] * 3 + ["t1"] * 3 + ["t3"] * 3


def test_a_group_whose_batches_cannot_be_stored_together_is_written_batch_by_batch(tmp_path: Path) -> None:
    layout = CacheLayout(tmp_path)
    layout.create()
    committer = BatchCommitter(layout, fsync=False)
    with committer._cond:
        committer.submit(BatchRecord("leaf", 0, 1, False), [{"x": 1}], layout.leaf_file("leaf", 0))
        committer.submit(BatchRecord("leaf", 1, 1, True), [{"x": "one"}], layout.leaf_file("leaf", 1))
    try:
        committer.close()
    except Exception as exc:
        error = exc
    assert "Leaf step 'leaf' wrote batch 1" in str(error), "the error names the batch that does not fit"
    journal = CommitJournal(layout.journal)
    records = journal.read()["leaf"]
    journal.close()
    assert [(r.seq_no, r.file, r.first_row) for r in records.values()] == [(0, "data/leaf/00001.parquet", None)]
    assert read_leaf_part(LeafPart(tmp_path / "data/leaf/00001.parquet")).to_pylist() == [{"x": 1}]
