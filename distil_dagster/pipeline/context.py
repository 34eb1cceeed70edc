"""The pipeline of the enclosing ``with Pipeline(...):`` block, kept in a context variable."""

from __future__ import annotations

from contextvars import ContextVar
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from distil_dagster.pipeline.base import Pipeline

_ACTIVE: ContextVar[Pipeline | None] = ContextVar("distil_dagster_active_pipeline", default=None)


def active_pipeline() -> Pipeline | None:
    """The pipeline whose ``with`` block is open in this context, if any."""
    return _ACTIVE.get()


def set_active_pipeline(pipeline: Pipeline | None) -> object:
    """Make ``pipeline`` the active one; returns a token for :func:`reset_active_pipeline`."""
    return _ACTIVE.set(pipeline)


def reset_active_pipeline(token: object) -> None:
    """Restore the pipeline that was active before :func:`set_active_pipeline`."""
    _ACTIVE.reset(token)  # type: ignore[arg-type]  # the token came from set_active_pipeline
