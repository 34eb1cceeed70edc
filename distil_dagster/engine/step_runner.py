"""Calling a step on a batch, with bounded retries and distilabel's failure imputation.

Used by every backend inside the process that owns the step. A non-global step that keeps
raising has its output columns set to ``None`` and the error recorded in ``distilabel_metadata``
(key ``error_<step>``); the batch continues downstream and its failed rows are counted.
"""

from __future__ import annotations

import logging
import traceback
from dataclasses import dataclass
from typing import Any

from distil_dagster.engine.batch import Batch, Rows
from distil_dagster.errors import GlobalStepError, StepOutputError
from distil_dagster.steps.base import Step

__all__ = ["StepCallResult", "call_step"]

METADATA_COLUMN = "distilabel_metadata"


@dataclass(slots=True)
class StepCallResult:
    rows: Rows
    failed_rows: int = 0
    attempts: int = 1


def call_step(step: Step, batch: Batch, retries: int, logger: logging.Logger) -> StepCallResult:
    """Run ``step`` on ``batch``; retry, then impute (normal steps) or raise (global steps)."""
    if batch.num_rows == 0:
        return StepCallResult(rows=[], attempts=0)
    attempts = 0
    while True:
        attempts += 1
        try:
            rows = step.process_batch(*batch.data)
            _check_rows(step, rows)
            return StepCallResult(rows=rows, failed_rows=step.failed_rows(rows), attempts=attempts)
        except Exception as exc:
            if step.is_global:
                raise GlobalStepError(
                    f"Global step '{step.name}' failed on its batch ({batch.num_rows} rows): {exc!r}. "
                    "Committed batches are kept; fix the step and run again to resume."
                ) from exc
            if attempts <= retries:
                logger.warning(
                    "Step '%s' failed on batch %d (attempt %d of %d): %r; retrying.",
                    step.name,
                    batch.seq_no,
                    attempts,
                    retries + 1,
                    exc,
                )
                continue
            logger.warning(
                "Step '%s' failed on batch %d after %d attempt(s); its outputs are set to None for %d row(s).\n%s",
                step.name,
                batch.seq_no,
                attempts,
                len(batch.data[0]) if batch.data else 0,
                traceback.format_exc(),
            )
            return impute_failed(step, batch, exc, attempts)


def _check_rows(step: Step, rows: Any) -> None:
    # First and last row only: a per-row check costs more than the trivial steps it guards.
    if not isinstance(rows, list) or (rows and not (isinstance(rows[0], dict) and isinstance(rows[-1], dict))):
        kind = type(rows[0]).__name__ if isinstance(rows, list) else type(rows).__name__
        raise StepOutputError(f"Step '{step.name}' must yield a list of dicts (rows), got a {kind}.")


def impute_failed(step: Step, batch: Batch, exc: BaseException, attempts: int) -> StepCallResult:
    """The batch's rows with the step's output columns set to ``None`` and the error recorded."""
    outputs = list(step.get_outputs())
    error = f"{type(exc).__name__}: {exc}"
    rows: Rows = []
    for row in batch.data[0] if batch.data else []:
        new = dict(row)
        for column in outputs:
            new[column] = None
        metadata = dict(new.get(METADATA_COLUMN) or {})
        metadata[f"error_{step.name}"] = error
        new[METADATA_COLUMN] = metadata
        rows.append(new)
    return StepCallResult(rows=rows, failed_rows=len(rows), attempts=attempts)
