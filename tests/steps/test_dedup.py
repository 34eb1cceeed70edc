"""Deduplication: exact (DeduplicateRows) and near-duplicate by embeddings (EmbeddingDedup)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from distil_dagster.pipeline import Pipeline
from distil_dagster.steps import LoadDataFromDicts
from distil_dagster.steps.filtering import DeduplicateRows, EmbeddingDedup
from distil_dagster.steps.filtering.embedding_dedup import KEEP_COLUMN, near_duplicate_mask


def run_step(step: Any, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return next(step.process_applying_mappings([dict(r) for r in rows]))


def unit(*values: float) -> list[float]:
    vector = np.asarray(values, dtype=np.float64)
    return (vector / np.linalg.norm(vector)).tolist()


def brute_force_keep(matrix: np.ndarray, threshold: float) -> list[bool]:
    """The reference: row i is kept unless an earlier kept row is at least ``threshold`` alike."""
    kept: list[int] = []
    for i in range(len(matrix)):
        if all(float(matrix[i] @ matrix[j]) < threshold for j in kept):
            kept.append(i)
    return [i in kept for i in range(len(matrix))]


def test_deduplicate_rows_keeps_the_first_of_equal_rows_on_the_chosen_columns() -> None:
    rows = [
        {"id": 0, "q": "a", "tags": ["x"]},
        {"id": 1, "q": "b", "tags": ["x"]},
        {"id": 2, "q": "a", "tags": ["x"]},
        {"id": 3, "q": "a", "tags": ["y"]},
    ]

    assert [r["id"] for r in run_step(DeduplicateRows(columns=["q"]), rows)] == [0, 1]
    assert [r["id"] for r in run_step(DeduplicateRows(columns=["q", "tags"]), rows)] == [0, 1, 3]
    assert [r["id"] for r in run_step(DeduplicateRows(), rows)] == [0, 1, 2, 3]  # ids differ


def test_deduplicate_rows_compares_nested_values_by_content() -> None:
    rows = [{"m": {"a": 1, "b": [1, 2]}}, {"m": {"b": [1, 2], "a": 1}}, {"m": {"a": 1, "b": [2, 1]}}]

    assert run_step(DeduplicateRows(columns=["m"]), rows) == [rows[0], rows[2]]


def test_deduplicate_rows_in_a_pipeline_declares_its_columns(tmp_path: Path, rows) -> None:
    data = [{"q": q, "n": i} for i, q in enumerate("abacb")]
    with Pipeline(name="dedup", cache_dir=tmp_path) as pipeline:
        LoadDataFromDicts(name="load", data=data, batch_size=2) >> DeduplicateRows(name="dedup", columns=["q"])

    assert rows(pipeline.run(executor="inline")) == [data[0], data[1], data[3]]
    with Pipeline(name="dedup-bad", cache_dir=tmp_path) as bad:
        LoadDataFromDicts(name="load", data=data) >> DeduplicateRows(name="dedup", columns=["missing"])
    with pytest.raises(ValueError, match=r"Step 'dedup' needs input column 'missing'"):
        bad.run(executor="inline")


def test_embedding_dedup_drops_near_duplicates_keeping_the_first() -> None:
    rows = [
        {"id": 0, "embedding": unit(1, 0, 0)},
        {"id": 1, "embedding": unit(0, 1, 0)},
        {"id": 2, "embedding": unit(1, 0.05, 0)},  # ~0.999 with row 0
        {"id": 3, "embedding": unit(1, 1, 0)},  # ~0.707 with rows 0 and 1
        {"id": 4, "embedding": None},  # nothing to compare: kept
    ]

    kept = run_step(EmbeddingDedup(threshold=0.9), rows)

    assert [r["id"] for r in kept] == [0, 1, 3, 4]
    assert all(r[KEEP_COLUMN] is True for r in kept)


def test_embedding_dedup_can_mark_instead_of_dropping_as_distilabel_does() -> None:
    rows = [{"embedding": unit(1, 0)}, {"embedding": unit(2, 0.01)}, {"embedding": unit(0, 1)}]

    marked = run_step(EmbeddingDedup(threshold=0.95, drop_duplicates=False), rows)

    assert [r[KEEP_COLUMN] for r in marked] == [True, False, True]


def test_embedding_dedup_threshold_is_inclusive_and_vectors_are_normalized() -> None:
    rows = [{"embedding": [3.0, 0.0]}, {"embedding": [0.6, 0.8]}, {"embedding": [0.0, 0.0]}]

    assert len(run_step(EmbeddingDedup(threshold=0.6), rows)) == 2  # cos = 0.6 exactly: a duplicate
    assert len(run_step(EmbeddingDedup(threshold=0.61), rows)) == 3  # the zero vector is unlike all


def test_block_boundaries_do_not_change_the_result() -> None:
    rng = np.random.default_rng(7)
    centers = rng.normal(size=(6, 16))
    vectors = np.repeat(centers, 4, axis=0) + rng.normal(scale=0.05, size=(24, 16))
    matrix = (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)
    matrix = matrix[rng.permutation(len(matrix))]
    expected = brute_force_keep(matrix, 0.9)

    for block_size in (1, 2, 3, 5, 7, 24, 100):
        assert near_duplicate_mask(matrix, 0.9, block_size).tolist() == expected, block_size
    assert sum(expected) == 6


def test_duplicate_across_a_block_boundary_is_found_against_kept_rows_only() -> None:
    # Rows 0 and 1 fall in block 0, rows 2 and 3 in block 1. Row 2 repeats row 1 (a duplicate found
    # across the boundary); row 3 is like row 2 only, and row 2 was dropped, so row 3 is kept.
    a, b = unit(1, 0, 0), unit(0, 1, 0)
    c = unit(0, 1, 0.5)  # cos(b, c) ~ 0.894
    rows = [{"id": 0, "embedding": a}, {"id": 1, "embedding": b}, {"id": 2, "embedding": b}, {"id": 3, "embedding": c}]

    kept = run_step(EmbeddingDedup(threshold=0.95, block_size=2), rows)

    assert [r["id"] for r in kept] == [0, 1, 3]


def test_embedding_dedup_rejects_mixed_dimensions_naming_the_step() -> None:
    rows = [{"embedding": [1.0, 0.0]}, {"embedding": [1.0, 0.0, 0.0]}]

    with pytest.raises(ValueError, match=r"Step 'near': embeddings have different lengths \[2, 3\]"):
        run_step(EmbeddingDedup(name="near"), rows)


def test_embedding_dedup_in_a_pipeline_with_block_size_outside_the_signature(tmp_path: Path, rows) -> None:
    data = [{"i": i, "embedding": unit(1, i * 0.001) if i % 2 else unit(i, 1)} for i in range(8)]

    def build(block_size: int) -> Pipeline:
        with Pipeline(name="near-dedup", cache_dir=tmp_path) as pipeline:
            load = LoadDataFromDicts(name="load", data=data, batch_size=3)
            load >> EmbeddingDedup(name="dedup", threshold=0.99, block_size=block_size)
        return pipeline

    small, large = build(2), build(1000)
    expected = brute_force_keep(np.asarray([d["embedding"] for d in data]), 0.99)
    result = rows(small.run(executor="inline"))

    assert small.signature == large.signature  # the second build is served from the first's cache
    assert [r["i"] for r in result] == [d["i"] for d, keep in zip(data, expected) if keep] == [0, 1, 2, 4]
    assert rows(large.run(executor="inline")) == result
