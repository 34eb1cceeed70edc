"""Field defaults read from environment variables when an LLM is built (API keys, base URLs).

Each helper returns a ``default_factory``: the variable is read when the instance is created, not
when the class is imported, so a variable set afterwards (a test's, a worker's) is seen. An empty
variable counts as unset.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from pydantic import SecretStr

__all__ = ["env_secret", "env_str"]


def env_str(name: str, fallback: str | None = None) -> Callable[[], str | None]:
    """A default factory: ``$name``, else ``fallback``."""
    return lambda: os.getenv(name) or fallback


def env_secret(name: str) -> Callable[[], SecretStr | None]:
    """A default factory: ``$name`` as a ``SecretStr``, else ``None``."""

    def read() -> SecretStr | None:
        value = os.getenv(name)
        return SecretStr(value) if value else None

    return read
