"""Snapshots of the run state: ``batch_manager.json`` and ``batch_manager_steps/<step>.json``.

Derived from the journal and written atomically at the end of every run (also a failed one),
for people and tools (``cache list``). Resuming never depends on them: the journal is the truth.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

from distil_dagster.cache.atomic import atomic_write_bytes
from distil_dagster.cache.journal import BatchRecord, is_complete
from distil_dagster.cache.layout import CacheLayout

if TYPE_CHECKING:
    from distil_dagster.pipeline.base import Pipeline

__all__ = ["write_snapshot"]


def _write_json(path: Any, data: dict[str, Any], fsync: bool) -> None:
    payload = json.dumps(data, indent=2, sort_keys=True).encode("utf-8")
    atomic_write_bytes(path, payload, fsync)


def write_snapshot(
    layout: CacheLayout,
    pipeline: Pipeline,
    committed: dict[str, dict[int, BatchRecord]],
    status: str,
    started: float,
    fsync: bool,
) -> None:
    """Write the per-run and per-step snapshots from the committed records."""
    steps: dict[str, dict[str, Any]] = {}
    for name in pipeline.dag.names:
        records = committed.get(name, {})
        step_state = {
            "step": name,
            "batches": len(records),
            "rows": sum(r.num_rows for r in records.values()),
            "failed_rows": sum(r.failed_rows for r in records.values()),
            "finished": is_complete(records),
            "leaf": name in pipeline.dag.leaves,
            "offset": sum(r.num_rows for r in records.values()) if pipeline.dag.step(name).is_generator else None,
        }
        steps[name] = step_state
        _write_json(layout.steps_snapshot_dir / f"{name}.json", step_state, fsync)
    _write_json(
        layout.snapshot,
        {
            "pipeline": pipeline.name,
            "signature": layout.root.name,
            "status": status,
            "started": started,
            "updated": time.time(),
            "steps": {n: {k: s[k] for k in ("batches", "rows", "failed_rows", "finished")} for n, s in steps.items()},
        },
        fsync,
    )
