"""Upstream values an input mapping hides for the length of one ``process`` call.

``input_mappings={"instruction": "prompt"}`` on a row that has both ``prompt`` and ``instruction``
shows the step ``prompt`` under the name ``instruction``; the upstream ``instruction`` is put
aside here and handed back to the output row that came from that input row.
"""

from __future__ import annotations

from typing import Any

Rows = list[dict[str, Any]]

_NOTHING: dict[str, Any] = {}


class ShadowedColumns:
    """The values put aside per input row, and which output row each belongs to.

    An output row is matched to its input row by identity first (steps that update their input
    rows in place, or drop some of them), then by position when the step returned one row per
    input row, then by consecutive blocks when it returned ``k`` rows per input row in order
    (``num_generations`` with ``group_generations=False``, ``ExpandColumns``). Any other shape
    gets nothing back rather than another row's value: distilabel pairs rows by ``i % n``, which
    gives expanded rows the values of other inputs.
    """

    __slots__ = ("_by_id", "_saved")

    def __init__(self, mapped: Rows, saved: list[dict[str, Any]]) -> None:
        # ``mapped`` stays referenced by the caller for the whole call, so ids stay unique.
        self._saved = saved
        self._by_id = {id(row): kept for row, kept in zip(mapped, saved)} if any(saved) else {}

    def for_output(self, row: dict[str, Any], index: int, n_out: int) -> dict[str, Any]:
        """The hidden values to restore on output row ``row``, the ``index``-th of ``n_out``."""
        if not self._by_id:
            return _NOTHING
        if id(row) in self._by_id:
            return self._by_id[id(row)]
        n_in = len(self._saved)
        if n_out == n_in:
            return self._saved[index]
        if n_in and n_out % n_in == 0:
            return self._saved[index // (n_out // n_in)]
        return _NOTHING
