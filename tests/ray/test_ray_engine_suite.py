"""Tests of the engine's behaviour suite (``tests/engine``) that concern the worker backend,
run once more with the ``ray`` executor: the ``executor`` fixture is overridden here."""

from __future__ import annotations

import pytest

from tests.engine.test_batching import (  # noqa: F401  # collected here, with executor="ray"
    test_leaf_rows_keep_generator_order_with_replicas,
)
from tests.engine.test_failures import (  # noqa: F401  # collected here, with executor="ray"
    test_every_loaded_step_is_unloaded_after_a_successful_run,
    test_generator_error_stops_the_run_and_keeps_its_committed_batches,
    test_leaf_column_with_mixed_types_stops_the_run_naming_step_and_column,
    test_steps_loaded_before_a_load_failure_are_unloaded,
)


@pytest.fixture
def executor(ray_cluster: str) -> str:
    """Every test of this module runs on Ray."""
    return "ray"
