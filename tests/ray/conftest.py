"""A local Ray instance shared by the tests of this folder (2 CPUs, 2 of a custom resource ``slot``, no
dashboard), stopped at the end.

Tests that run pipelines in this process use the ``ray_cluster`` fixture: the backend finds Ray
initialized and neither starts nor stops it. Tests whose pipeline runs in a child process connect
the child to the same instance through ``RAY_ADDRESS`` (``ray_cluster``'s value), or let the
child start its own (the backend's ``ray.init``).
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Iterator

import pytest

if importlib.util.find_spec("ray") is None:  # Ray is optional: pip install 'distil_dagster[ray]'
    collect_ignore_glob = ["test_*.py"]


@pytest.fixture(scope="package")
def ray_cluster() -> Iterator[str]:
    """Start a local Ray instance for this folder's tests (stopped after its last one, so no Ray
    runtime lingers in the process for other folders); yields its address (for ``RAY_ADDRESS``)."""
    import ray

    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, resources={"slot": 2}, include_dashboard=False, logging_level=logging.WARNING)
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        if started:
            ray.shutdown()
