"""``FaissNearestNeighbour``: the ``k`` nearest rows of every row by its embedding, exactly, without faiss.

Data flow: the step receives every row at once (a global step), checks that each row's
``embedding`` is a vector of finite numbers of one common length, stacks them into one float64
matrix, and searches that matrix against itself with ``vector_search.k_nearest``:
``search_batch_size`` rows at a time against ``_BASE_ROWS_PER_BLOCK`` rows at a time, keeping a
running top ``k + 1`` per row. The first of those ``k + 1`` is dropped, as distilabel does, and the
other ``k`` are written to ``nn_indices`` and ``nn_scores``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
from pydantic import Field, PositiveInt, field_validator

from distil_dagster.mixins.runtime_parameters import OptionalRuntimeParameter, RuntimeParameter
from distil_dagster.steps.base import GlobalStep, StepInput
from distil_dagster.steps.typing import StepOutput
from distil_dagster.steps.vector_search import Metric, k_nearest

__all__ = ["FaissNearestNeighbour"]

_LOGGER = logging.getLogger(__name__)

#: Rows a block of queries is compared with at a time: a block's scores are
#: ``search_batch_size x 1024`` float64 (400 KiB at the default ``search_batch_size``).
_BASE_ROWS_PER_BLOCK = 1024
#: The only faiss index factory string that is an exact search (``None`` means the same).
_FLAT = "Flat"
#: Bad rows listed in an error; the others are counted.
_LISTED_PROBLEMS = 10


class FaissNearestNeighbour(GlobalStep):
    """The ``k`` nearest rows of every row by its ``embedding`` (a global step; distilabel's
    ``FaissNearestNeighbour``, computed exactly with numpy instead of a faiss index).

    Each row is searched against all the rows of the step's input, exactly (every pair is
    compared), with faiss's metrics: ``metric_type=1`` (faiss's ``METRIC_L2``, the default when
    ``None`` as for faiss's ``IndexFlat``) scores by *squared* Euclidean distance, smaller is
    nearer; ``metric_type=0`` (``METRIC_INNER_PRODUCT``) by dot product, larger is nearer (the
    cosine similarity on unit-length embeddings). Ties go to the lower row index, as in faiss, so
    the result is deterministic; ``search_batch_size`` changes memory and speed only (the
    blocks' products can differ in the last float64 bit, which can swap two neighbours only when
    their scores differ by no more than that).

    The row itself: as distilabel, the step searches ``k + 1`` neighbours and drops the first,
    expecting it to be the row itself. With L2 it is, unless an earlier row has the very same
    embedding: a tie at distance 0 that goes to the lower index, so the earlier row lists its
    later twin while the later one drops its earlier twin and lists itself (distance 0). With
    inner products on vectors that are not unit length the first can be another row (one with a
    larger norm in a similar direction scores above the row itself): that row is dropped and the
    row itself may be listed. Deduplicate and normalize the embeddings (or use L2) to get "the
    ``k`` nearest other rows".

    When the input has ``k`` rows or fewer, the missing neighbours are index ``-1`` with the worst
    float32 score (``3.4e38`` for L2, ``-3.4e38`` for inner products), as faiss reports them.

    Differences from distilabel:
        - No faiss: the search is exact, on the CPU, in float64. faiss computes in float32, so
          scores agree to float32 precision and only neighbours closer than that can swap
          places; and from 20 queries per search faiss expands ``|q - b|^2`` as
          ``|q|^2 + |b|^2 - 2 q.b``, whose rounding can order a row behind its exact duplicate.
          Here such tiny distances are recomputed from the differences, so duplicates are at
          distance 0 exactly and the rule above holds.
          ``string_factory`` accepts only ``None`` or ``"Flat"`` (faiss's exact index); any other
          index type is refused. ``device`` has no effect (a warning says so when set);
          ``train_size`` has no effect, as for a flat index in faiss.
        - ``metric_type`` accepts 0 and 1 only (faiss's flat index also knows L1, Linf, ...).
        - The faiss index is not saved as the ``faiss_index`` artifact: without faiss there is
          no index file to write, and a flat index holds only the embeddings, which are in the
          output rows anyway.
        - A row whose ``embedding`` is missing, ``None``, empty, not numbers, not finite or of
          another length than the others fails the step with an error naming the step, the
          column and the rows (distilabel fails inside ``datasets`` or faiss). An empty input
          gives no rows.

    Attributes:
        device: no effect (distilabel: the CUDA device(s) of the faiss index).
        string_factory: ``None`` or ``"Flat"``: the exact index (the only one supported).
        metric_type: faiss's metric number: ``0`` inner product, ``1`` or ``None`` squared L2.
        k: neighbours per row.
        search_batch_size: rows searched at a time (bounds memory; the result does not depend
            on it).
        train_size: no effect (a flat index needs no training).

    Input columns:
        - embedding (``list[float]``): the row's embedding.

    Output columns:
        - nn_indices (``list[int]``): the positions, in the step's input, of the ``k`` nearest rows.
        - nn_scores (``list[float]``): their squared L2 distances or inner products.

    Examples:
        >>> neighbours = FaissNearestNeighbour(k=3, metric_type=0)  # doctest: +SKIP
    """

    device: OptionalRuntimeParameter[int | list[int]] = Field(
        default=None, description="No effect: the search is exact, on the CPU (distilabel: faiss's CUDA devices)."
    )
    string_factory: OptionalRuntimeParameter[str] = Field(
        default=None, description="The faiss index type: only None or 'Flat' (an exact search) are supported."
    )
    metric_type: OptionalRuntimeParameter[int] = Field(
        default=None, description="faiss's metric number: 0 for inner product, 1 (or None) for squared L2 distance."
    )
    k: RuntimeParameter[PositiveInt] = Field(default=1, description="The number of nearest neighbours of each row.")
    search_batch_size: RuntimeParameter[PositiveInt] = Field(
        default=50,
        description="The number of rows searched at a time (bounds memory; the result does not depend on it).",
    )
    train_size: OptionalRuntimeParameter[int] = Field(
        default=None, description="No effect: an exact (flat) index needs no training."
    )

    # None and "Flat", None and 1 give the same output; the metric used is in signature_extra
    signature_exclude: ClassVar[frozenset[str]] = frozenset(
        {"device", "string_factory", "metric_type", "search_batch_size", "train_size"}
    )

    @field_validator("string_factory")
    @classmethod
    def _exact_index_only(cls, value: str | None) -> str | None:
        if value is not None and value != _FLAT:
            raise ValueError(
                f"string_factory {value!r} asks faiss for an approximate or trained index; this step "
                f"searches exactly, without faiss: leave string_factory None or set it to {_FLAT!r}."
            )
        return value

    @field_validator("metric_type")
    @classmethod
    def _supported_metric(cls, value: int | None) -> int | None:
        if value is not None and value not in set(Metric):
            raise ValueError(
                f"metric_type {value} is not supported: use 0 (faiss.METRIC_INNER_PRODUCT) or "
                "1 (faiss.METRIC_L2, the default)."
            )
        return None if value is None else int(value)

    @property
    def metric(self) -> Metric:
        """The metric ``metric_type`` names (L2 when ``None``, as faiss's ``IndexFlat``)."""
        return Metric.L2 if self.metric_type is None else Metric(self.metric_type)

    @property
    def inputs(self) -> list[str]:
        return ["embedding"]

    @property
    def outputs(self) -> list[str]:
        return ["nn_indices", "nn_scores"]

    def signature_extra(self) -> dict[str, Any]:
        return {"metric_type": int(self.metric)}

    def load(self) -> None:
        super().load()
        if self.device is not None:
            _LOGGER.warning(
                "Step '%s': device=%r has no effect; the nearest neighbours are searched exactly on the CPU.",
                self.name,
                self.device,
            )

    def process(self, inputs: StepInput) -> StepOutput:  # type: ignore[override]  # one input, as distilabel
        """Write the ``k`` nearest rows of every row to ``nn_indices`` and ``nn_scores``."""
        if inputs:
            column = self.input_mappings.get("embedding", "embedding")
            matrix = _embedding_matrix(
                [row.get("embedding") for row in inputs], f"Step '{self.name}': column '{column}'"
            )
            k = self.k or 1
            search_batch_size = self.search_batch_size or 50
            indices, scores = k_nearest(matrix, matrix, k + 1, self.metric, search_batch_size, _BASE_ROWS_PER_BLOCK)
            for row, nn_indices, nn_scores in zip(inputs, indices[:, 1:].tolist(), scores[:, 1:].tolist()):
                row["nn_indices"] = nn_indices
                row["nn_scores"] = nn_scores
        yield inputs


def _embedding_matrix(vectors: Sequence[Any], where: str) -> np.ndarray:
    """The vectors as a float64 matrix, one row each.

    Args:
        vectors: one embedding per row.
        where: the step and column, to start the error message.

    Raises:
        ValueError: naming every row that is not a vector of finite numbers of the common length
            (that of the first vector).
    """
    first = next((i for i, v in enumerate(vectors) if _shape_problem(v, None) is None), None)
    dim = None if first is None else len(vectors[first])
    problems = [(i, p) for i, v in enumerate(vectors) if (p := _shape_problem(v, dim))]
    if not problems:
        try:
            matrix = np.asarray(vectors, dtype=np.float64)
            if matrix.ndim == 2 and np.isfinite(matrix).all():
                return matrix
        except (TypeError, ValueError):  # a row holds non-numbers; which one is found row by row below
            pass
    misshapen = {i for i, _ in problems}
    problems += [(i, p) for i, v in enumerate(vectors) if i not in misshapen and (p := _value_problem(v))]
    problems.sort()
    listed = "; ".join(f"row {i} {problem}" for i, problem in problems[:_LISTED_PROBLEMS])
    more = f"; and {len(problems) - _LISTED_PROBLEMS} more" if len(problems) > _LISTED_PROBLEMS else ""
    common = f" (length {dim}, as row {first})" if first is not None else ""
    raise ValueError(
        f"{where} needs one vector of finite numbers per row, all of one length{common}; "
        f"{len(problems)} row(s) of the step's input are not: {listed}{more}. Drop or fix those rows "
        "upstream (a failed embedding is None)."
    )


def _shape_problem(vector: Any, dim: int | None) -> str | None:
    """What makes ``vector`` not a non-empty flat vector of length ``dim`` (any, when ``None``)."""
    if vector is None:
        return "has no embedding (None)"
    if isinstance(vector, np.ndarray) and vector.ndim != 1:
        return f"is a {vector.ndim}-d array, not a flat list of numbers"
    if not isinstance(vector, (list, tuple, np.ndarray)):
        return f"is not a list of numbers but a {type(vector).__name__}"
    if len(vector) == 0:
        return "is empty"
    if dim is not None and len(vector) != dim:
        return f"has length {len(vector)}"
    return None


def _value_problem(vector: Any) -> str | None:
    """What makes ``vector`` (of the right length) not a flat vector of finite numbers."""
    try:
        values = np.asarray(vector, dtype=np.float64)
    except (TypeError, ValueError):
        return "holds values that are not numbers"
    if values.ndim != 1:
        return "is not a flat list of numbers"
    return None if np.isfinite(values).all() else "holds NaN or infinite values"
