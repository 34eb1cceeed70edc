"""The ``server`` fixture: a started ``FakeOpenAIServer`` (``openai_server.py``), stopped after the test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.models.openai_server import FakeOpenAIServer


@pytest.fixture
def server() -> Iterator[FakeOpenAIServer]:
    """An OpenAI-compatible server on 127.0.0.1 (also standing for TGI, vLLM and Ollama)."""
    with FakeOpenAIServer() as running:
        yield running
