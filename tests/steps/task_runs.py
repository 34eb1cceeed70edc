"""Running one task by hand, as the task tests do: load, one batch through ``process``, unload."""

from __future__ import annotations

from typing import Any

from distil_dagster.steps.tasks import Task


def run_task(task: Task, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows ``task`` yields for ``rows`` (copied, so the caller's rows stay as they were)."""
    task.load()
    try:
        return next(iter(task.process([dict(r) for r in rows])))
    finally:
        task.unload()
