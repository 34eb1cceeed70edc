"""Built-in column steps: KeepColumns, ExpandColumns, GroupColumns, CombineOutputs.

In a pipeline and called directly (``process``), as distilabel's reference behaviour is
described: an expanded column under a new name keeps its source list, ``split_statistics``
divides the token counts among the expanded rows, and grouping or combining the rows of several
predecessors merges their ``distilabel_metadata``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from distil_dagster.pipeline import Pipeline
from distil_dagster.steps import (
    CombineOutputs,
    ExpandColumns,
    GroupColumns,
    KeepColumns,
    LoadDataFromDicts,
    Step,
    StepInput,
)
from distil_dagster.steps.columns.group import merge_distilabel_metadata
from distil_dagster.steps.typing import StepOutput

META = "distilabel_metadata"


class Answer(Step):
    """Writes ``answer = <name>:<id>`` and ``distilabel_metadata = {<name>: id}``."""

    @property
    def inputs(self) -> list[str]:
        return ["id"]

    @property
    def outputs(self) -> list[str]:
        return ["answer"]

    def process(self, inputs: StepInput) -> StepOutput:
        yield [
            {**row, "answer": f"{self.name}:{row['id']}", "distilabel_metadata": {self.name: row["id"]}}
            for row in inputs
        ]


def test_keep_columns_keeps_the_given_columns_in_order(tmp_path: Path, rows) -> None:
    data = [{"id": i, "a": f"a{i}", "b": f"b{i}"} for i in range(3)]
    with Pipeline(name="keep", cache_dir=tmp_path, seed=0) as pipeline:
        LoadDataFromDicts(name="gen", data=data) >> KeepColumns(name="keep", columns=["b", "id"])

    distiset = pipeline.run()

    assert distiset["default"]["train"].column_names == ["b", "id"]
    assert rows(distiset) == [{"b": f"b{i}", "id": i} for i in range(3)]


def test_expand_columns_gives_one_row_per_list_element(tmp_path: Path, rows) -> None:
    data = [{"id": 0, "options": ["x", "y"]}, {"id": 1, "options": ["z"]}]
    with Pipeline(name="expand", cache_dir=tmp_path, seed=0) as pipeline:
        LoadDataFromDicts(name="gen", data=data) >> ExpandColumns(name="expand", columns={"options": "option"})

    result = rows(pipeline.run())

    assert result == [
        {"id": 0, "options": ["x", "y"], "option": "x"},
        {"id": 0, "options": ["x", "y"], "option": "y"},
        {"id": 1, "options": ["z"], "option": "z"},
    ]


def test_group_columns_groups_the_rows_of_every_predecessor(tmp_path: Path, rows) -> None:
    with Pipeline(name="group", cache_dir=tmp_path, seed=0) as pipeline:
        gen = LoadDataFromDicts(name="gen", data=[{"id": i} for i in range(3)], batch_size=2)
        first, second = Answer(name="first", input_batch_size=2), Answer(name="second", input_batch_size=2)
        gen >> [first, second] >> GroupColumns(name="group", columns=["answer"], input_batch_size=2)

    result = rows(pipeline.run())

    assert [(r["id"], r["grouped_answer"]) for r in result] == [(i, [f"first:{i}", f"second:{i}"]) for i in range(3)]
    assert "answer" not in result[0]


def test_combine_outputs_merges_rows_and_metadata(tmp_path: Path, rows) -> None:
    with Pipeline(name="combine", cache_dir=tmp_path, enable_metadata=True, seed=0) as pipeline:
        gen = LoadDataFromDicts(name="gen", data=[{"id": i} for i in range(2)])
        gen >> [Answer(name="first"), Answer(name="second")] >> CombineOutputs(name="combine")

    result = rows(pipeline.run())

    assert [r["answer"] for r in result] == ["second:0", "second:1"]
    assert [r["distilabel_metadata"] for r in result] == [{"first": 0, "second": 0}, {"first": 1, "second": 1}]


def test_group_columns_refuses_output_columns_of_another_length() -> None:
    with pytest.raises(ValueError, match=r"output_columns \['x'\] must have one name per column"):
        GroupColumns(name="group", columns=["a", "b"], output_columns=["x"])


def process(step: Step, *inputs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The first batch ``step`` yields for ``inputs`` (a step called directly, without a pipeline)."""
    step.load()
    return list(next(iter(step.process(*inputs))))


def test_expand_columns_under_their_own_name_replace_the_list_in_place() -> None:
    rows = [{"c": [1, 2], "a": 1, "d": [3, 4]}]

    assert process(ExpandColumns(columns=["c"]), rows) == [{"c": 1, "a": 1, "d": [3, 4]}, {"c": 2, "a": 1, "d": [3, 4]}]
    # A new name keeps the source list and adds the element after the other columns.
    result = process(ExpandColumns(columns={"c": "cc", "d": "d"}), rows)
    assert result == [{"c": [1, 2], "a": 1, "d": 3, "cc": 1}, {"c": [1, 2], "a": 1, "d": 4, "cc": 2}]
    assert [list(r) for r in result] == [["c", "a", "d", "cc"]] * 2
    assert rows == [{"c": [1, 2], "a": 1, "d": [3, 4]}]  # the input rows are left as they were


def test_expand_columns_keeps_an_encoded_source_column_decoded() -> None:
    rows = [{"k": 0, "c": json.dumps([1, 2])}]

    assert process(ExpandColumns(columns={"c": "cc"}, encoded=True), rows) == [
        {"k": 0, "c": [1, 2], "cc": 1},
        {"k": 0, "c": [1, 2], "cc": 2},
    ]
    assert process(ExpandColumns(columns=["c"], encoded=["c"]), rows) == [{"k": 0, "c": 1}, {"k": 0, "c": 2}]


def test_expand_columns_refuses_encoded_columns_it_does_not_expand() -> None:
    with pytest.raises(ValueError, match=r"encoded columns \['x'\] are not among the columns to expand \['c'\]"):
        ExpandColumns(columns=["c"], encoded=["x"])


def test_split_statistics_divides_the_token_counts_among_the_expanded_rows() -> None:
    metadata = {
        "statistics_gen": {"input_tokens": [10, 7], "output_tokens": [9, 3]},
        "statistics_other": {"input_tokens": 5, "output_tokens": 6},
        "statistics_broken": None,
        "raw_output_gen": "raw",
    }
    rows = [
        {"generation": ["a", "b", "c"], META: metadata},
        {"generation": ["x"], META: {"statistics_gen": metadata["statistics_gen"]}},
    ]

    result = process(ExpandColumns(columns=["generation"], split_statistics=True), rows)

    split = {
        "statistics_gen": {"input_tokens": [3, 2], "output_tokens": [3, 1]},  # integer division by 3
        "statistics_other": {"input_tokens": [1], "output_tokens": [2]},  # a single count becomes a list
        "statistics_broken": None,
        "raw_output_gen": "raw",
    }
    assert [r["generation"] for r in result] == ["a", "b", "c", "x"]
    assert [r[META] for r in result[:3]] == [split] * 3
    assert result[3][META] == {"statistics_gen": {"input_tokens": [10, 7], "output_tokens": [9, 3]}}  # one row: as is
    assert rows[0][META]["statistics_gen"] == {"input_tokens": [10, 7], "output_tokens": [9, 3]}  # input untouched


def test_without_split_statistics_every_expanded_row_keeps_the_full_counts() -> None:
    stats = {"statistics_gen": {"input_tokens": [12], "output_tokens": [8]}}

    result = process(ExpandColumns(columns={"generation": "item"}), [{"generation": ["a", "b"], META: stats}])

    assert [r[META] for r in result] == [stats, stats]


def test_split_statistics_with_rows_without_metadata_or_with_one_dict_per_generation() -> None:
    per_generation = [{"statistics_gen": {"input_tokens": [4], "output_tokens": [6]}}] * 2
    expand = ExpandColumns(columns=["generation"], split_statistics=True)

    assert process(expand, [{"generation": ["a", "b"]}]) == [{"generation": "a"}, {"generation": "b"}]
    assert process(expand, [{"generation": ["a", "b"], META: {}}]) == [
        {"generation": "a", META: {}},
        {"generation": "b", META: {}},
    ]
    result = process(expand, [{"generation": ["a", "b"], META: per_generation}])
    assert [r[META] for r in result] == [[{"statistics_gen": {"input_tokens": [2], "output_tokens": [3]}}] * 2] * 2
    assert expand.inputs == ["generation"] and expand.outputs == ["generation"]


class TwoItems(Step):
    """Writes ``generation = [a, b]`` as one generation that spent 12 input and 8 output tokens."""

    @property
    def inputs(self) -> list[str]:
        return ["id"]

    @property
    def outputs(self) -> list[str]:
        return ["generation"]

    def process(self, inputs: StepInput) -> StepOutput:
        stats = {f"statistics_{self.name}": {"input_tokens": [12], "output_tokens": [8]}}
        yield [{**row, "generation": ["a", "b"], META: stats} for row in inputs]


def test_split_statistics_in_a_pipeline_and_in_the_signature(tmp_path: Path, rows) -> None:
    def build(split: bool) -> Pipeline:
        with Pipeline(name="split", cache_dir=tmp_path, enable_metadata=True, seed=0) as pipeline:
            gen = LoadDataFromDicts(name="gen", data=[{"id": 0}])
            gen >> TwoItems(name="task") >> ExpandColumns(name="expand", columns=["generation"], split_statistics=split)
        return pipeline

    split, plain = build(True), build(False)

    assert split.signature != plain.signature
    assert [r[META]["statistics_task"] for r in rows(split.run())] == [{"input_tokens": [6], "output_tokens": [4]}] * 2
    assert [r[META]["statistics_task"] for r in rows(plain.run())] == [{"input_tokens": [12], "output_tokens": [8]}] * 2


def test_group_columns_merges_the_metadata_of_every_predecessor(tmp_path: Path, rows) -> None:
    with Pipeline(name="group-meta", cache_dir=tmp_path, enable_metadata=True, seed=0) as pipeline:
        gen = LoadDataFromDicts(name="gen", data=[{"id": i} for i in range(3)], batch_size=2)
        first, second = Answer(name="first", input_batch_size=2), Answer(name="second", input_batch_size=2)
        gen >> [first, second] >> GroupColumns(name="group", columns=["answer"], input_batch_size=2)

    result = rows(pipeline.run())

    assert [r[META] for r in result] == [{"first": i, "second": i} for i in range(3)]


def test_group_columns_called_directly_merges_metadata_and_puts_it_last() -> None:
    first = [{"i": 1, "generation": "a", META: {"raw_output_t1": "a"}}]
    second = [{"i": 1, "generation": "b", META: {"raw_output_t2": "b"}}]

    result = process(GroupColumns(columns=["generation"]), first, second)

    assert result == [{"i": 1, "grouped_generation": ["a", "b"], META: {"raw_output_t1": "a", "raw_output_t2": "b"}}]
    assert list(result[0])[-1] == META


@pytest.mark.parametrize("step", [GroupColumns(columns=["g"]), CombineOutputs()], ids=["group", "combine"])
def test_grouping_and_combining_merge_metadata_alike(step: Step) -> None:
    # A key several predecessors have (e.g. an upstream task's raw output carried by both
    # branches) gets the list of their values.
    result = process(
        step, [{"g": "a", META: {"r": 1, "x": 0}}], [{"g": "b", META: {"r": 2}}], [{"g": "c", META: {"r": 3}}]
    )
    assert result[0][META] == {"r": [1, 2, 3], "x": 0}
    # Only one predecessor has metadata; an empty dict stays an empty dict; none: no column.
    assert process(step, [{"g": "a", META: {"r": 1}}], [{"g": "b"}])[0][META] == {"r": 1}
    assert process(step, [{"g": "a", META: {}}], [{"g": "b"}])[0][META] == {}
    assert META not in process(step, [{"g": "a"}], [{"g": "b"}])[0]
    # Metadata as lists (one dict per generation) are concatenated.
    lists = process(step, [{"g": "a", META: [{"r": 1}, {"r": 2}]}], [{"g": "b", META: [{"r": 3}]}])
    assert lists[0][META] == [{"r": 1}, {"r": 2}, {"r": 3}]


def test_merge_distilabel_metadata_joins_a_dict_to_lists_as_one_element() -> None:
    assert merge_distilabel_metadata({META: {"q": 3}}, {META: [{"r": 1}]}) == [{"q": 3}, {"r": 1}]
    assert merge_distilabel_metadata({META: [{"r": 1}]}, {META: {"q": 3}}) == [{"r": 1}, {"q": 3}]
    assert merge_distilabel_metadata({META: None}, {"other": 1}) == {}
    assert merge_distilabel_metadata({META: {"r": [1]}}, {META: {"r": [2]}}) == {"r": [[1], [2]]}


def test_combine_outputs_collects_the_values_of_a_metadata_key_of_several_predecessors() -> None:
    result = process(CombineOutputs(), [{"a": 1, META: {"raw": "x"}}], [{"a": 2, META: {"raw": "y"}}])

    assert result == [{"a": 2, META: {"raw": ["x", "y"]}}]
