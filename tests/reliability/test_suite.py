"""One trial of every reliability scenario (``make reliability`` runs many): no loss, duplicate, hang or unclear error."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.reliability.harness import Scenario, run_scenario
from tests.reliability.run import all_scenarios

TRIALS = int(os.environ.get("DISTIL_DAGSTER_RELIABILITY_TRIALS", "1"))

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


@pytest.mark.parametrize("scenario", all_scenarios(), ids=lambda s: s.name)
def test_scenario_keeps_every_row_exactly_once_and_fails_clearly(scenario: Scenario, tmp_path: Path) -> None:
    figures = run_scenario(scenario, TRIALS, tmp_path)
    assert figures.clean, (
        f"{scenario.name}: lost {figures.rows_lost}, duplicated {figures.rows_duplicated}, "
        f"differing {figures.rows_differing}, hangs {figures.hangs}\n" + "\n".join(figures.unclear)
    )
