"""Batch composition: what each step receives, whatever the upstream batching (distilabel 1.5.3).

A step gets exactly ``input_batch_size`` rows per predecessor (remainder last), one list per
predecessor; a global step gets everything once; empty or expanded upstream batches do not
disturb the sizes; leaf rows come out in generator order. Every step here writes the size of the
batch it received into its output rows, so the leaf rows show what each step saw.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from pathlib import Path

import pyarrow.parquet as pq

from distil_dagster.pipeline import Pipeline
from distil_dagster.steps import GlobalStep, LoadDataFromDicts, Step, StepInput, StepResources
from distil_dagster.steps.typing import StepOutput


class SeenBatch(Step):
    """Adds ``<name>_len`` (rows in the batch it received) and ``<name>_double`` (2 * id)."""

    @property
    def inputs(self) -> list[str]:
        return ["id"]

    @property
    def outputs(self) -> list[str]:
        return [f"{self.name}_len", f"{self.name}_double"]

    def process(self, inputs: StepInput) -> StepOutput:
        for row in inputs:
            row[f"{self.name}_len"] = len(inputs)
            row[f"{self.name}_double"] = 2 * row["id"]
        yield inputs


class UnevenDelay(Step):
    """Works longer on some batches (CPU), so replicas finish out of order; adds ``<name>_len``."""

    @property
    def inputs(self) -> list[str]:
        return ["id"]

    @property
    def outputs(self) -> list[str]:
        return [f"{self.name}_len"]

    def process(self, inputs: StepInput) -> StepOutput:
        digest = b"x"
        for _ in range(20_000 * ((inputs[0]["id"] * 7) % 5)):
            digest = hashlib.sha256(digest).digest()
        yield [{**row, f"{self.name}_len": len(inputs)} for row in inputs]


class PerPredecessor(Step):
    """Concatenates every predecessor's rows, tagging each with the per-predecessor sizes."""

    @property
    def inputs(self) -> list[str]:
        return ["id"]

    @property
    def outputs(self) -> list[str]:
        return ["sizes"]

    def process(self, *inputs: StepInput) -> StepOutput:
        sizes = [len(rows) for rows in inputs]
        yield [{**row, "sizes": sizes} for rows in inputs for row in rows]


class GlobalCollect(GlobalStep):
    """Records every call (the ids it got) in ``log_path`` and adds ``global_len``."""

    log_path: str

    @property
    def inputs(self) -> list[str]:
        return ["id"]

    @property
    def outputs(self) -> list[str]:
        return ["global_len"]

    def process(self, inputs: StepInput) -> StepOutput:
        with open(self.log_path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps([row["id"] for row in inputs]) + "\n")
        yield [{**row, "global_len": len(inputs)} for row in inputs]


class DropSome(Step):
    """Keeps the rows whose id is not a multiple of 3 and not in 10..14 (a whole batch of 5)."""

    @property
    def inputs(self) -> list[str]:
        return ["id"]

    def process(self, inputs: StepInput) -> StepOutput:
        yield [row for row in inputs if row["id"] % 3 != 0 and not 10 <= row["id"] < 15]


class TwoPerRow(Step):
    """Emits two rows per input row (``copy`` 0 and 1)."""

    @property
    def inputs(self) -> list[str]:
        return ["id"]

    @property
    def outputs(self) -> list[str]:
        return ["copy"]

    def process(self, inputs: StepInput) -> StepOutput:
        yield [{**row, "copy": copy} for row in inputs for copy in (0, 1)]


def _ids(n: int, start: int = 0, **extra: object) -> list[dict[str, object]]:
    return [{"id": i, **extra} for i in range(start, start + n)]


def test_linear_chain_gets_exact_input_batch_sizes_whatever_the_upstream_batching(
    tmp_path: Path, executor: str, cache, rows
) -> None:
    with Pipeline(name="linear", cache_dir=tmp_path, seed=0) as pipeline:
        gen = LoadDataFromDicts(name="gen", data=_ids(30), batch_size=7)
        a = SeenBatch(name="a", input_batch_size=5)
        b = SeenBatch(name="b", input_batch_size=13)
        gen >> a >> b

    result = rows(pipeline.run(executor=executor))

    assert [r["id"] for r in result] == list(range(30))
    assert [r["a_len"] for r in result] == [5] * 30
    assert [r["b_len"] for r in result] == [13] * 26 + [4] * 4
    assert [r["a_double"] for r in result] == [2 * i for i in range(30)]
    assert [r["b_double"] for r in result] == [2 * i for i in range(30)]
    folder = cache(pipeline)
    assert folder.batch_sizes("gen") == [7, 7, 7, 7, 2]
    assert folder.batch_sizes("a") == [5, 5, 5, 5, 5, 5]
    assert folder.batch_sizes("b") == [13, 13, 4]
    assert [r["last"] for r in folder.records("b")] == [False, False, True]


def test_leaf_batches_are_parquet_files_numbered_by_their_first_batch(tmp_path: Path, executor: str, cache) -> None:
    with Pipeline(name="layout", cache_dir=tmp_path, seed=0) as pipeline:
        gen = LoadDataFromDicts(name="gen", data=_ids(30), batch_size=7)
        gen >> SeenBatch(name="a", input_batch_size=5) >> SeenBatch(name="b", input_batch_size=13)

    pipeline.run(executor=executor)

    folder = cache(pipeline)
    leaf = folder.records("b")
    assert [r["seq"] for r in leaf] == [0, 1, 2]
    assert leaf[0]["file"] == "data/b/00001.parquet"
    for record in leaf:  # a file per batch, or batches written at once share the first one's file
        sharing = [r for r in leaf if r["file"] == record["file"]]
        assert record["file"] == f"data/b/{sharing[0]['seq'] + 1:05d}.parquet"
        if len(sharing) == 1:
            assert "first_row" not in record
        else:  # in order, each from its first row, the file holding exactly their rows
            assert [r["first_row"] for r in sharing] == [
                sum(r["rows"] for r in sharing[:i]) for i in range(len(sharing))
            ]
            assert pq.read_metadata(folder.root / record["file"]).num_rows == sum(r["rows"] for r in sharing)
    # intermediate batches: appended to the replica's segment, each at its own byte range
    ranges = [(r["file"], r["offset"], r["size"]) for r in folder.records("a")]
    assert len(ranges) == 6 and all(f.startswith("steps/a/") and f.endswith(".seg") for f, _, _ in ranges)
    for (file, offset, size), (next_file, next_offset, _) in itertools.pairwise(ranges):
        assert next_file != file or next_offset == offset + size, ranges
    for name in ("pipeline.yaml", "pipeline.log", "commits.jsonl", "batch_manager.json"):
        assert (folder.root / name).is_file(), name
    for record in folder.journal():
        end = record.get("offset", 0) + record["size"]
        assert (folder.root / record["file"]).stat().st_size >= end
        if "offset" not in record:
            assert (folder.root / record["file"]).stat().st_size == record["size"]
    ends = {}
    for record in folder.journal():
        if "offset" in record:
            ends[record["file"]] = max(ends.get(record["file"], 0), record["offset"] + record["size"])
    assert {f: (folder.root / f).stat().st_size for f in ends} == ends, "no bytes beyond the last batch"


def test_journal_lists_every_batch_after_the_batches_it_was_built_from(tmp_path: Path, executor: str, cache) -> None:
    with Pipeline(name="order", cache_dir=tmp_path, seed=0) as pipeline:
        gen = LoadDataFromDicts(name="gen", data=_ids(30), batch_size=7)
        gen >> SeenBatch(name="a", input_batch_size=5) >> SeenBatch(name="b", input_batch_size=13)

    pipeline.run(executor=executor)

    seen: set[tuple[str, int]] = set()
    for record in cache(pipeline).journal():
        for source, ranges in record.get("from", {}).items():
            for seq, _start, _end in ranges:
                assert (source, seq) in seen, f"{record} committed before {source} batch {seq}"
        seen.add((record["step"], record["seq"]))
    assert len(seen) == 5 + 6 + 3


def test_fan_out_to_two_leaves_gives_one_config_per_leaf(tmp_path: Path, executor: str, rows) -> None:
    with Pipeline(name="fan-out", cache_dir=tmp_path, seed=0) as pipeline:
        gen = LoadDataFromDicts(name="gen", data=_ids(9), batch_size=4)
        gen >> [SeenBatch(name="left", input_batch_size=2), SeenBatch(name="right", input_batch_size=5)]

    distiset = pipeline.run(executor=executor)

    assert sorted(distiset) == ["left", "right"]
    assert list(distiset["left"]) == ["train"]
    assert [(r["id"], r["left_len"]) for r in rows(distiset, "left")] == [(i, 2 if i < 8 else 1) for i in range(9)]
    assert [(r["id"], r["right_len"]) for r in rows(distiset, "right")] == [(i, 5 if i < 5 else 4) for i in range(9)]
    assert "left_len" not in rows(distiset, "right")[0]


def test_fan_in_gives_one_list_per_predecessor_of_input_batch_size_rows(
    tmp_path: Path, executor: str, cache, rows
) -> None:
    with Pipeline(name="fan-in", cache_dir=tmp_path, seed=0) as pipeline:
        first = LoadDataFromDicts(name="first", data=_ids(12, src="first"), batch_size=3)
        second = LoadDataFromDicts(name="second", data=_ids(12, start=100, src="second"), batch_size=4)
        merge = PerPredecessor(name="merge", input_batch_size=5)
        [first, second] >> merge

    result = rows(pipeline.run(executor=executor))

    expected_ids = [*range(0, 5), *range(100, 105), *range(5, 10), *range(105, 110), 10, 11, 110, 111]
    assert [r["id"] for r in result] == expected_ids
    assert [r["sizes"] for r in result] == [[5, 5]] * 20 + [[2, 2]] * 4
    assert [r["src"] for r in result[:5]] == ["first"] * 5
    assert cache(pipeline).batch_sizes("merge") == [10, 10, 4]


def test_fan_in_with_unequal_totals_finishes_and_keeps_every_row(tmp_path: Path, executor: str, rows) -> None:
    with Pipeline(name="fan-in-unequal", cache_dir=tmp_path, seed=0) as pipeline:
        first = LoadDataFromDicts(name="first", data=_ids(10), batch_size=3)
        second = LoadDataFromDicts(name="second", data=_ids(13, start=100), batch_size=4)
        [first, second] >> PerPredecessor(name="merge", input_batch_size=5)

    result = rows(pipeline.run(executor=executor))

    expected_ids = [*range(0, 5), *range(100, 105), *range(5, 10), *range(105, 110), 110, 111, 112]
    assert [r["id"] for r in result] == expected_ids
    assert [r["sizes"] for r in result] == [[5, 5]] * 20 + [[0, 3]] * 3


def test_global_step_is_called_once_with_every_row_in_order(tmp_path: Path, executor: str, cache, rows, lines) -> None:
    log = tmp_path / "global-calls.jsonl"
    with Pipeline(name="global", cache_dir=tmp_path / "cache", seed=0) as pipeline:
        gen = LoadDataFromDicts(name="gen", data=_ids(25), batch_size=7)
        gen >> SeenBatch(name="a", input_batch_size=4) >> GlobalCollect(name="collect", log_path=str(log))

    result = rows(pipeline.run(executor=executor))

    assert lines(log) == [list(range(25))]
    assert [r["id"] for r in result] == list(range(25))
    assert {r["global_len"] for r in result} == {25}
    assert [r["a_len"] for r in result] == [4] * 24 + [1]
    records = cache(pipeline).records("collect")
    assert [(r["seq"], r["rows"], r["last"]) for r in records] == [(0, 25, True)]


def test_step_after_a_filter_still_gets_exact_batches(tmp_path: Path, executor: str, cache, rows) -> None:
    with Pipeline(name="filter", cache_dir=tmp_path, seed=0) as pipeline:
        gen = LoadDataFromDicts(name="gen", data=_ids(32), batch_size=5)
        gen >> DropSome(name="drop", input_batch_size=5) >> SeenBatch(name="after", input_batch_size=4)

    result = rows(pipeline.run(executor=executor))

    kept = [i for i in range(32) if i % 3 != 0 and not 10 <= i < 15]
    assert len(kept) == 17
    assert [r["id"] for r in result] == kept
    assert [r["after_len"] for r in result] == [4] * 16 + [1]
    folder = cache(pipeline)
    assert folder.batch_sizes("drop") == [3, 3, 0, 3, 3, 4, 1]
    assert folder.batch_sizes("after") == [4, 4, 4, 4, 1]


def test_filter_whose_last_batch_is_empty_still_finishes_the_pipeline(tmp_path: Path, executor: str, rows) -> None:
    with Pipeline(name="filter-empty-tail", cache_dir=tmp_path, seed=0) as pipeline:
        gen = LoadDataFromDicts(name="gen", data=_ids(31), batch_size=5)
        gen >> DropSome(name="drop", input_batch_size=5) >> SeenBatch(name="after", input_batch_size=4)

    result = rows(pipeline.run(executor=executor))

    kept = [i for i in range(31) if i % 3 != 0 and not 10 <= i < 15]
    assert [r["id"] for r in result] == kept
    assert [r["after_len"] for r in result] == [4] * 16


def test_step_after_an_expanding_step_gets_exact_batches_in_order(tmp_path: Path, executor: str, cache, rows) -> None:
    with Pipeline(name="expand", cache_dir=tmp_path, seed=0) as pipeline:
        gen = LoadDataFromDicts(name="gen", data=_ids(6), batch_size=4)
        gen >> TwoPerRow(name="twice", input_batch_size=3) >> SeenBatch(name="after", input_batch_size=5)

    result = rows(pipeline.run(executor=executor))

    assert [(r["id"], r["copy"]) for r in result] == [(i, c) for i in range(6) for c in (0, 1)]
    assert [r["after_len"] for r in result] == [5] * 10 + [2] * 2
    folder = cache(pipeline)
    assert folder.batch_sizes("twice") == [6, 6]
    assert folder.batch_sizes("after") == [5, 5, 2]


def test_generator_batch_size_larger_than_the_data_gives_one_last_batch(
    tmp_path: Path, executor: str, cache, rows
) -> None:
    with Pipeline(name="small", cache_dir=tmp_path, seed=0) as pipeline:
        LoadDataFromDicts(name="gen", data=_ids(3), batch_size=50) >> SeenBatch(name="a", input_batch_size=2)

    result = rows(pipeline.run(executor=executor))

    assert [(r["id"], r["a_len"]) for r in result] == [(0, 2), (1, 2), (2, 1)]
    assert [(r["rows"], r["last"]) for r in cache(pipeline).records("gen")] == [(3, True)]


def test_leaf_rows_keep_generator_order_with_replicas(tmp_path: Path, executor: str, cache, rows) -> None:
    with Pipeline(name="replicas", cache_dir=tmp_path, seed=0) as pipeline:
        gen = LoadDataFromDicts(name="gen", data=_ids(24), batch_size=8)
        slow = UnevenDelay(name="slow", input_batch_size=3, resources=StepResources(replicas=3))
        gen >> slow >> SeenBatch(name="leaf", input_batch_size=5)

    result = rows(pipeline.run(executor=executor))

    assert [r["id"] for r in result] == list(range(24))
    assert [r["slow_len"] for r in result] == [3] * 24
    assert [r["leaf_len"] for r in result] == [5] * 20 + [4] * 4
    assert cache(pipeline).batch_sizes("slow") == [3] * 8
