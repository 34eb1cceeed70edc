"""Asset checks per leaf: the failed-row ratio, and row conservation.

Both read the commit journal and the Parquet footers of the leaf's latest materialization (its
signature folder is in the materialization metadata), never the rows:

- ``failed_row_ratio``: rows whose step failed (outputs imputed with ``None``) over all rows is
  at most ``max_failed_row_ratio``.
- ``row_conservation``: every committed row is in the Parquet files exactly once (batches
  numbered 0..n-1, one last batch, each file holding the rows its journal line counts), and
  every input row of the leaf was consumed exactly once (input ranges never overlap, and cover
  each predecessor's output unless the leaf receives routed batches, which split it).
"""

# No `from __future__ import annotations` here: Dagster inspects the `context` annotation of
# compute functions at definition time and rejects it as a string.
import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckKey,
    AssetCheckResult,
    AssetChecksDefinition,
    AssetCheckSpec,
    AssetKey,
    multi_asset_check,
)

from distil_dagster.dagster.io_manager import materialized_folder
from distil_dagster.dagster.leaf_data import Committed, LeafOutput, read_committed
from distil_dagster.dagster.names import identifier
from distil_dagster.dagster.translator import DistilDagsterTranslator, LeafStep
from distil_dagster.pipeline.base import Pipeline
from distil_dagster.pipeline.dag import DAG

__all__ = ["build_pipeline_asset_checks", "conservation_problems"]

FAILED_ROW_RATIO = "failed_row_ratio"
ROW_CONSERVATION = "row_conservation"
_SHOWN_PROBLEMS = 10


def _batch_problems(output: LeafOutput) -> list[str]:
    if not output.records:
        return [f"no batch of '{output.step}' is committed in {output.root}"]
    problems = []
    seqs = [r.seq_no for r in output.records]
    if seqs != list(range(len(seqs))):
        problems.append(f"batches are numbered {seqs}, not 0..{len(seqs) - 1}")
    lasts = [r.seq_no for r in output.records if r.last_batch]
    if lasts != seqs[-1:]:
        problems.append(f"last-batch flags on batches {lasts}, expected only on the final batch")
    part_rows = iter(output.part_rows())
    for record in output.records:
        rows = next(part_rows) if record.file else 0
        if rows != record.num_rows:
            problems.append(
                f"batch {record.seq_no} ({record.file}) holds {rows} rows, its commit counts {record.num_rows}"
            )
    return problems


def _input_problems(dag: DAG, leaf: str, output: LeafOutput, committed: Committed) -> list[str]:
    problems = []
    routed = dag.routed_upstream(leaf) is not None
    for pred in dag.predecessors(leaf):
        consumed: dict[int, list[tuple[int, int]]] = {}
        for record in output.records:
            for seq, start, end in record.created_from.get(pred, []):
                consumed.setdefault(seq, []).append((start, end))
        for seq, ranges in sorted(consumed.items()):
            ranges.sort()
            for (_, end), (start, _) in itertools.pairwise(ranges):
                if start < end:
                    problems.append(f"rows {start}..{end - 1} of '{pred}' batch {seq} were consumed twice")
        if routed:
            continue  # a routed target sees only its share of the predecessor's rows
        for seq, record in sorted(committed.get(pred, {}).items()):
            covered, position = 0, 0
            for start, end in consumed.get(seq, []):
                if start > position:
                    break
                position = max(position, end)
                covered = position
            if record.num_rows and covered < record.num_rows:
                problems.append(f"rows {covered}..{record.num_rows - 1} of '{pred}' batch {seq} were never consumed")
    return problems


def conservation_problems(dag: DAG, output: LeafOutput, committed: Committed) -> list[str]:
    """Every way the leaf's committed rows break exactly-once (empty when they do not)."""
    return _batch_problems(output) + _input_problems(dag, output.step, output, committed)


def _results(pipeline: Pipeline, leaf: str, key: AssetKey, root: Path, max_ratio: float) -> dict[str, AssetCheckResult]:
    committed = read_committed(root)
    records = tuple(r for _, r in sorted(committed.get(leaf, {}).items()))
    output = LeafOutput(leaf, root, records, pipeline.enable_metadata)
    rows, failed = output.committed_rows, output.failed_rows
    ratio = failed / rows if rows else 0.0
    problems = conservation_problems(pipeline.dag, output, committed)
    common: dict[str, Any] = {"rows": rows, "signature": root.name}
    return {
        FAILED_ROW_RATIO: AssetCheckResult(
            asset_key=key,
            check_name=FAILED_ROW_RATIO,
            passed=ratio <= max_ratio,
            metadata={**common, "failed_rows": failed, "ratio": round(ratio, 6), "max_ratio": max_ratio},
            description=f"{failed} of {rows} rows failed ({ratio:.2%}; at most {max_ratio:.2%} allowed).",
        ),
        ROW_CONSERVATION: AssetCheckResult(
            asset_key=key,
            check_name=ROW_CONSERVATION,
            passed=not problems,
            metadata={**common, "batches": len(records), "problems": "\n".join(problems[:_SHOWN_PROBLEMS]) or "none"},
            description=f"{len(problems)} problem(s): {'; '.join(problems[:3])}"
            if problems
            else "Every row exactly once.",
        ),
    }


def _leaf_checks(pipeline: Pipeline, leaf: LeafStep, key: AssetKey, max_ratio: float) -> AssetChecksDefinition:
    specs = [
        AssetCheckSpec(
            FAILED_ROW_RATIO, asset=key, description=f"At most {max_ratio:.2%} of the rows failed in their step."
        ),
        AssetCheckSpec(ROW_CONSERVATION, asset=key, description="Every committed and every input row exactly once."),
    ]

    @multi_asset_check(
        specs=specs,
        name=f"{identifier(pipeline.name)}_{identifier(leaf.name)}_checks",
        can_subset=True,
        description=f"Checks of leaf step '{leaf.name}' read from the distil_dagster cache.",
    )
    def leaf_checks(context: AssetCheckExecutionContext) -> Iterator[AssetCheckResult]:
        selected = context.selected_asset_check_keys
        root = materialized_folder(context.instance, key)
        if root is None:
            for check_key in selected:
                yield AssetCheckResult(
                    asset_key=key, check_name=check_key.name, passed=False, description="Not materialized yet."
                )
            return
        results = _results(pipeline, leaf.name, key, root, max_ratio)
        for name, result in results.items():
            if AssetCheckKey(key, name) in selected:
                yield result

    return leaf_checks


def build_pipeline_asset_checks(
    pipeline: Pipeline,
    *,
    translator: DistilDagsterTranslator | None = None,
    max_failed_row_ratio: float = 0.05,
) -> list[AssetChecksDefinition]:
    """Two checks per leaf asset of ``build_pipeline_assets(pipeline, translator=...)``.

    Args:
        pipeline: the pipeline given to ``build_pipeline_assets``.
        translator: the same translator (the checks target its asset keys).
        max_failed_row_ratio: highest share of failed rows for ``failed_row_ratio`` to pass.
    """
    if not 0.0 <= max_failed_row_ratio <= 1.0:
        raise ValueError(f"max_failed_row_ratio must be between 0 and 1, got {max_failed_row_ratio}.")
    translator = translator or DistilDagsterTranslator()
    checks = []
    for name in pipeline.dag.leaves:
        leaf = LeafStep(pipeline, name)
        checks.append(_leaf_checks(pipeline, leaf, translator.get_asset_key(leaf), max_failed_row_ratio))
    return checks
