"""Exact similarity search over embedding matrices, blockwise, with numpy only.

Every search compares a block of query rows with the rows of a base matrix a block at a time
(:func:`inner_products`), so what is computed at once is a ``queries x block`` matrix, never
``n x n``. ``EmbeddingDedup`` thresholds those blocks; :func:`k_nearest` keeps the ``k`` best
entries of each query row across them (``FaissNearestNeighbour``).

The metrics carry faiss's numbers (``faiss.METRIC_INNER_PRODUCT == 0``, ``faiss.METRIC_L2 == 1``),
and :func:`k_nearest` orders its results as an exact faiss index does: nearest first, ties to the
lower row index, ``-1`` and the worst float32 where the base has fewer than ``k`` rows. It scores
in float64; squared L2 distances come from the inner products (``|q|^2 + |b|^2 - 2 q.b``, as
faiss computes them), except the tiny ones, recomputed from the differences so that a row and its
duplicates are at distance 0 exactly.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from enum import IntEnum

import numpy as np

__all__ = ["Metric", "inner_products", "k_nearest"]

#: The score of a missing neighbour, as faiss reports it (the float32 extremes).
_FLOAT32_MAX = float(np.finfo(np.float32).max)
#: Squared distances below this fraction of ``|q|^2 + |b|^2`` are recomputed from the differences
#: (the expansion's rounding error is around 1e-15 of it in float64).
_EXPANSION_TOLERANCE = 1e-9
#: Pairs recomputed at a time (bounds the differences matrix when many rows are duplicates).
_PAIRS_PER_REFINEMENT = 4096


class Metric(IntEnum):
    """How near two vectors are, with faiss's metric numbers."""

    INNER_PRODUCT = 0
    """The dot product; larger is nearer (the cosine similarity on unit-length vectors)."""
    L2 = 1
    """The squared Euclidean distance; smaller is nearer."""


def inner_products(
    queries: np.ndarray, base: np.ndarray, block_size: int, rows: Sequence[int] | None = None
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield ``(ids, queries @ base[ids].T)`` over the base rows, ``block_size`` rows at a time.

    Args:
        queries: one vector per row.
        base: the vectors to compare with, one per row.
        block_size: base rows per block (with the number of queries, the memory bound).
        rows: the base rows to compare with, in this order (default: all, in order).
    """
    if rows is None:
        for start in range(0, base.shape[0], block_size):
            stop = min(start + block_size, base.shape[0])
            yield np.arange(start, stop), queries @ base[start:stop].T
        return
    for start in range(0, len(rows), block_size):
        ids = np.asarray(rows[start : start + block_size], dtype=np.intp)
        yield ids, queries @ base[ids].T


def k_nearest(
    queries: np.ndarray, base: np.ndarray, k: int, metric: Metric, query_block: int, base_block: int
) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` base rows nearest to each query row, exactly, nearest first.

    Ties go to the lower base row index. Where ``base`` has fewer than ``k`` rows the missing
    neighbours are ``-1`` with the worst float32 score (``3.4e38`` for L2, ``-3.4e38`` for inner
    products), as faiss reports them. Memory beyond the inputs and outputs is a few
    ``query_block x base_block`` matrices.

    Args:
        queries: one vector per row.
        base: the vectors searched, one per row (``queries`` itself for a self-join).
        k: neighbours per query.
        metric: inner product (larger is nearer) or squared L2 distance (smaller is nearer).
        query_block: query rows searched at a time.
        base_block: base rows compared with a query block at a time.

    Returns:
        ``(indices, scores)``, two ``len(queries) x k`` arrays: base row indices (int64) and
        their inner products or squared distances (float64).
    """
    indices = np.full((queries.shape[0], k), -1, dtype=np.int64)
    scores = np.full((queries.shape[0], k), _FLOAT32_MAX if metric is Metric.L2 else -_FLOAT32_MAX)
    base_norms = np.einsum("ij,ij->i", base, base) if metric is Metric.L2 else None
    for start in range(0, queries.shape[0], query_block):
        block = queries[start : start + query_block]
        best_ids, best = indices[start : start + query_block], scores[start : start + query_block]
        block_norms = np.einsum("ij,ij->i", block, block)[:, None] if base_norms is not None else None
        for ids, products in inner_products(block, base, base_block):
            if base_norms is not None and block_norms is not None:
                products = _squared_distances(block, block_norms, base, base_norms, ids, products)
            best_ids[:], best[:] = _merge(best_ids, best, ids, products, k, metric)
    return indices, scores


def _squared_distances(
    block: np.ndarray,
    block_norms: np.ndarray,
    base: np.ndarray,
    base_norms: np.ndarray,
    ids: np.ndarray,
    products: np.ndarray,
) -> np.ndarray:
    """``|q - b|^2`` from the inner products, in place, as ``|q|^2 + |b|^2 - 2 q.b``.

    The expansion loses precision where the distance is tiny next to the norms: a row and its
    exact duplicate (or itself) come out at about ``±1e-13`` instead of 0, so their order would
    be rounding's, not the index's. Those pairs are recomputed from the differences (0 for equal
    vectors), ``_PAIRS_PER_REFINEMENT`` at a time.
    """
    products *= -2.0
    products += block_norms
    products += base_norms[ids]
    rows, columns = np.nonzero(products <= _EXPANSION_TOLERANCE * (block_norms + base_norms[ids]))
    for start in range(0, len(rows), _PAIRS_PER_REFINEMENT):
        r, c = rows[start : start + _PAIRS_PER_REFINEMENT], columns[start : start + _PAIRS_PER_REFINEMENT]
        differences = block[r] - base[ids[c]]
        products[r, c] = np.einsum("ij,ij->i", differences, differences)
    return products


def _merge(
    best_ids: np.ndarray, best: np.ndarray, ids: np.ndarray, found: np.ndarray, k: int, metric: Metric
) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` best of each row among the current best and a block of higher-indexed rows.

    Sort keys are ascending (distances, negated inner products: negation is exact). A stable
    sort of the concatenation keeps ties in index order: the current best are ordered by
    (key, index) and hold only lower indices than the block, whose columns are in index order.
    """
    keys = found if metric is Metric.L2 else -found
    columns = _block_top_k(keys, k)
    candidates = np.concatenate([best, np.take_along_axis(found, columns, axis=1)], axis=1)
    candidate_ids = np.concatenate([best_ids, ids[columns]], axis=1)
    candidate_keys = candidates if metric is Metric.L2 else -candidates
    order = np.argsort(candidate_keys, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(candidate_ids, order, axis=1), np.take_along_axis(candidates, order, axis=1)


def _block_top_k(keys: np.ndarray, k: int) -> np.ndarray:
    """Per row, the columns of the ``k`` smallest keys, ties to the lower column, in column order.

    A partition (linear) rather than a sort: only the ``k``-th smallest key of each row is
    needed; the keys below it are taken, then the lowest columns equal to it.
    """
    if keys.shape[1] <= k:
        return np.broadcast_to(np.arange(keys.shape[1]), keys.shape)
    kth = np.partition(keys, k - 1, axis=1)[:, k - 1 : k]
    chosen = keys <= kth
    tied = np.flatnonzero(chosen.sum(axis=1) > k)
    if tied.size:  # rows where more than k keys are <= the k-th: keep the lowest columns of the ties
        at = keys[tied] == kth[tied]
        room = k - (keys[tied] < kth[tied]).sum(axis=1, keepdims=True)
        chosen[tied] &= ~at | (np.cumsum(at, axis=1) <= room)
    return np.nonzero(chosen)[1].reshape(keys.shape[0], k)
