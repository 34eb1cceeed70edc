"""``EmbeddingDedup``: drop near-duplicates by cosine similarity, keeping the first of each group.

A row is a near-duplicate when its cosine similarity with an earlier kept row is at least
``threshold``; rows are visited in input order, so the first row of a group is the one kept and
the kept rows are pairwise below the threshold. Similarities are computed blockwise with numpy
(``vector_search.inner_products``): ``block_size`` rows against ``block_size`` kept rows at a
time, so the similarity matrices never exceed ``block_size``² floats whatever the number of rows
(the vectors themselves are held once, as float32). The result does not depend on
``block_size``, which is left out of the signature.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from pydantic import Field, PositiveInt

from distil_dagster.mixins.runtime_parameters import RuntimeParameter
from distil_dagster.steps.base import GlobalStep, StepInput
from distil_dagster.steps.typing import StepOutput
from distil_dagster.steps.vector_search import inner_products

__all__ = ["KEEP_COLUMN", "EmbeddingDedup", "near_duplicate_mask"]

KEEP_COLUMN = "keep_row_after_embedding_filtering"


def _unit_rows(vectors: list[Any], step: str) -> np.ndarray:
    """The vectors as a float32 matrix with unit-length rows (zero vectors stay zero)."""
    dims = {len(v) for v in vectors}
    if len(dims) > 1:
        raise ValueError(f"Step '{step}': embeddings have different lengths {sorted(dims)}; use one embedding model.")
    matrix = np.asarray(vectors, dtype=np.float32).reshape(len(vectors), -1)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return np.divide(matrix, norms, out=np.zeros_like(matrix), where=norms > 0)


def near_duplicate_mask(matrix: np.ndarray, threshold: float, block_size: int) -> np.ndarray:
    """Whether each row is kept: no earlier kept row has a dot product >= ``threshold`` with it.

    Args:
        matrix: one unit-length vector per row.
        threshold: the similarity from which two rows are duplicates.
        block_size: rows compared at a time (the memory bound of the similarity matrices).
    """
    n = matrix.shape[0]
    keep = np.zeros(n, dtype=bool)
    kept: list[int] = []
    for start in range(0, n, block_size):
        block = matrix[start : start + block_size]
        duplicate = np.zeros(block.shape[0], dtype=bool)
        for _, similarities in inner_products(block, matrix, block_size, rows=kept):
            duplicate |= (similarities >= threshold).any(axis=1)
        within = block @ block.T >= threshold
        for i in range(block.shape[0]):
            if not duplicate[i]:  # row i is kept: the later rows like it are duplicates
                duplicate[i + 1 :] |= within[i, i + 1 :]
        fresh = start + np.flatnonzero(~duplicate)
        keep[fresh] = True
        kept.extend(fresh.tolist())
    return keep


class EmbeddingDedup(GlobalStep):
    """Remove near-duplicate rows by the cosine similarity of their ``embedding`` (a global step).

    Rows whose embedding is ``None`` are kept and compared with nothing. Every row gets
    ``keep_row_after_embedding_filtering`` (distilabel's column); with ``drop_duplicates=False``
    all rows are kept and the column marks the duplicates, as distilabel's step does.

    Attributes:
        threshold: the cosine similarity from which two rows are near-duplicates.
        block_size: rows compared at a time; bounds memory, does not change the result.
        drop_duplicates: remove the near-duplicates (else only mark them).

    Examples:
        >>> dedup = EmbeddingDedup(threshold=0.95)  # doctest: +SKIP
    """

    threshold: RuntimeParameter[float] = Field(
        default=0.9, description="The cosine similarity from which two rows are near-duplicates."
    )
    block_size: RuntimeParameter[PositiveInt] = Field(
        default=1024, description="Rows compared at a time (bounds memory; the result does not depend on it)."
    )
    drop_duplicates: bool = True

    signature_exclude: ClassVar[frozenset[str]] = frozenset({"block_size"})

    @property
    def inputs(self) -> list[str]:
        return ["embedding"]

    @property
    def outputs(self) -> list[str]:
        return [KEEP_COLUMN]

    def process(self, *inputs: StepInput) -> StepOutput:
        """Mark (and by default drop) the near-duplicates, keeping the first of each group."""
        rows = inputs[0]
        with_vector = [i for i, row in enumerate(rows) if row.get("embedding") is not None]
        keep = np.ones(len(rows), dtype=bool)
        if with_vector:
            matrix = _unit_rows([rows[i]["embedding"] for i in with_vector], str(self.name))
            threshold = 0.9 if self.threshold is None else float(self.threshold)
            keep[with_vector] = near_duplicate_mask(matrix, threshold, self.block_size or 1024)
        for row, kept in zip(rows, keep.tolist()):
            row[KEEP_COLUMN] = kept
        yield [row for row in rows if row[KEEP_COLUMN]] if self.drop_duplicates else rows
