"""``ExpandColumns``: one row per element of list columns."""

from __future__ import annotations

import json
from typing import Any

from pydantic import field_validator, model_validator

from distil_dagster.steps.base import Step, StepInput
from distil_dagster.steps.typing import StepOutput

__all__ = ["ExpandColumns"]

_METADATA = "distilabel_metadata"
_TOKEN_COUNTS = ("input_tokens", "output_tokens")


def _divided(counts: Any, parts: int) -> Any:
    """``counts`` (a count or a list of counts) divided by ``parts``, always as a list."""
    if isinstance(counts, int) and not isinstance(counts, bool):
        return [counts // parts]
    if isinstance(counts, list):
        return [c // parts if isinstance(c, int) and not isinstance(c, bool) else c for c in counts]
    return counts


def _split_token_statistics(metadata: Any, parts: int) -> Any:
    """A copy of ``distilabel_metadata`` whose token counts are divided among ``parts`` rows.

    In every ``statistics_<step>`` entry holding both ``input_tokens`` and ``output_tokens``,
    each count is divided by ``parts`` (integer division, the remainder is dropped) and given as
    a list (``12`` split in two is ``[6]``; ``[12, 8]`` is ``[6, 4]``). Other entries are kept as
    they are; metadata given as a list (one dictionary per generation) has each dictionary split.
    """
    if isinstance(metadata, list):
        return [_split_token_statistics(entry, parts) for entry in metadata]
    if not isinstance(metadata, dict):
        return metadata
    result = {}
    for key, value in metadata.items():
        if key.startswith("statistics_") and isinstance(value, dict) and all(k in value for k in _TOKEN_COUNTS):
            value = {**value, **{k: _divided(value[k], parts) for k in _TOKEN_COUNTS}}
        result[key] = value
    return result


class ExpandColumns(Step):
    """Expand list columns into rows: a row with ``[a, b]`` becomes two rows.

    A column expanded under its own name holds one element per row. Expanded under a new name
    (``columns={"options": "option"}``), the original list column is kept as it is and the new
    column holds the element. Lists of different lengths give as many rows as the longest one,
    the shorter ones filled with ``None``.

    Attributes:
        columns: columns to expand (a list, or a mapping column -> new column name).
        encoded: columns (or ``True`` for all) holding JSON-encoded lists, decoded before the
            expansion (a kept original column then holds the decoded list). A list must name
            columns of ``columns``.
        split_statistics: divide the token counts of ``distilabel_metadata`` among the rows made
            from one row. A task that writes N items in one generation (parsed into a list and
            expanded here) spent its tokens once; without the split, each of the N rows would
            carry the full counts, and summing the statistics of the dataset would count them N
            times. With it, the ``input_tokens`` and ``output_tokens`` of every
            ``statistics_<step>`` entry are divided by N (integer division, given as lists:
            ``[12]`` or ``12`` split in two is ``[6]``); the rest of the metadata is kept.

    Examples:
        >>> expand = ExpandColumns(columns=["generation"], split_statistics=True)
        >>> stats = {"statistics_gen": {"input_tokens": [12], "output_tokens": [8]}}
        >>> rows = next(expand.process([{"generation": ["a", "b"], "distilabel_metadata": stats}]))
        >>> [(r["generation"], r["distilabel_metadata"]["statistics_gen"]) for r in rows]
        [('a', {'input_tokens': [6], 'output_tokens': [4]}), ('b', {'input_tokens': [6], 'output_tokens': [4]})]
    """

    columns: dict[str, str]
    encoded: bool | list[str] = False
    split_statistics: bool = False

    @field_validator("columns", mode="before")
    @classmethod
    def _columns_as_dict(cls, value: Any) -> Any:
        return {c: c for c in value} if isinstance(value, list) else value

    @model_validator(mode="after")
    def _check_encoded(self) -> ExpandColumns:
        if isinstance(self.encoded, list):
            unknown = [c for c in self.encoded if c not in self.columns]
            if unknown:
                raise ValueError(
                    f"ExpandColumns: encoded columns {unknown} are not among the columns to expand {list(self.columns)}."
                )
        return self

    @property
    def inputs(self) -> list[str]:
        return list(self.columns)

    @property
    def outputs(self) -> list[str]:
        return [self.columns[c] for c in self.columns]

    def _encoded(self, column: str) -> bool:
        return self.encoded is True or (isinstance(self.encoded, list) and column in self.encoded)

    def process(self, *inputs: StepInput) -> StepOutput:
        expanded = []
        for row in inputs[0]:
            values = {c: json.loads(row[c]) if self._encoded(c) else row[c] for c in self.columns}
            length = max((len(v) for v in values.values()), default=0)
            base = {**row, **{c: v for c, v in values.items() if self._encoded(c)}}
            if self.split_statistics and length and _METADATA in row:
                base[_METADATA] = _split_token_statistics(row[_METADATA], length)
            for i in range(length):
                new = dict(base)
                for column, target in self.columns.items():
                    items = values[column]
                    new[target] = items[i] if i < len(items) else None
                expanded.append(new)
        yield expanded
