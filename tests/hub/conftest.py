"""The ``fake_hub`` fixture: a started ``FakeHub`` (see fake_hub.py), stopped after the test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.hub.fake_hub import FakeHub


@pytest.fixture
def fake_hub() -> Iterator[FakeHub]:
    """A Hub-compatible server on 127.0.0.1; point a client process at it with ``fake_hub.client_env()``."""
    with FakeHub() as hub:
        yield hub
