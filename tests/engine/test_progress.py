"""Progress: periodic lines off a terminal, a live display on one, counts from commits."""

from __future__ import annotations

import io
import logging

import pytest
from rich.console import Console

from distil_dagster.cache.journal import BatchRecord
from distil_dagster.engine.progress import ProgressReporter


def _commits(reporter: ProgressReporter) -> None:
    reporter.on_start(["load", "tag"], {"load": [BatchRecord("load", 0, 10, False)]})
    reporter.on_commit([BatchRecord("load", 1, 10, True), BatchRecord("tag", 0, 5, False)])
    reporter.on_commit([BatchRecord("tag", 1, 5, False)])


def test_plain_lines_report_rows_batches_and_totals(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("distil_dagster.test_progress")
    reporter = ProgressReporter(logger, {"load": 20, "tag": None}, interval=0.0, live=False)
    with caplog.at_level(logging.INFO, logger=logger.name):
        _commits(reporter)
        reporter.on_finish(None)
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Progress:")]
    assert lines[-1] == "Progress: load: 20/20 rows, 2 batch(es); tag: 10 rows, 2 batch(es)."


def test_the_live_display_draws_every_step() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=120)
    reporter = ProgressReporter(logging.getLogger("x"), {"load": 20}, live=True, console=console)
    _commits(reporter)
    reporter.on_finish(None)
    text = out.getvalue()
    assert "load" in text and "tag" in text and "20/20" in text
