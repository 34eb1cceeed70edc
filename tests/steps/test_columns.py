"""Built-in column steps in a pipeline: KeepColumns, ExpandColumns, GroupColumns, CombineOutputs."""

from __future__ import annotations

from pathlib import Path

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
from distil_dagster.steps.typing import StepOutput


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

    assert result == [{"id": 0, "option": "x"}, {"id": 0, "option": "y"}, {"id": 1, "option": "z"}]


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
