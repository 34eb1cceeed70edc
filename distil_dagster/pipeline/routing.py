"""Routing batch functions: send each upstream batch to a subset of the downstream steps.

Decisions are seeded from ``(pipeline seed, upstream step, seq_no)``, so a resumed run routes
every batch exactly as the first run did (distilabel 1.5.3 draws them unseeded).
"""

from __future__ import annotations

import hashlib
import inspect
import random
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, overload

if TYPE_CHECKING:
    from distil_dagster.steps.base import StepT, _Step

__all__ = ["RoutingBatchFunction", "routing_batch_function", "sample_n_steps"]

RoutingFunc = Callable[..., list[str]]


class RoutingBatchFunction:
    """A function ``f(steps) -> subset`` deciding where each upstream batch goes.

    Attributes:
        func: the user function; it may accept an ``rng`` keyword (a seeded ``random.Random``).
        factory: ``(module, name, kwargs)`` of the factory that built it, for YAML; ``None`` when
            the function itself is importable as ``module.name``.
        description: what the routing does (distilabel's ``description``); default: the
            function's docstring.
    """

    def __init__(
        self,
        func: RoutingFunc,
        factory: tuple[str, str, dict[str, Any]] | None = None,
        description: str | None = None,
    ) -> None:
        self.func = func
        self.factory = factory
        self.description = description if description is not None else inspect.getdoc(func)
        self.step: _Step | None = None
        self._takes_rng = "rng" in inspect.signature(func).parameters

    def attach(self, step: _Step) -> RoutingBatchFunction:
        """``step >> fn``: remember the upstream step; ``>> [targets]`` connects it."""
        self.step = step
        return self

    def __rshift__(self, other: list[StepT]) -> list[StepT]:
        if self.step is None:
            raise ValueError("A routing batch function must follow a step: `step >> fn >> [a, b]`.")
        if not isinstance(other, list):
            raise ValueError("A routing batch function routes to a list of steps: `step >> fn >> [a, b]`.")
        self.step.connect(*other, routing_batch_function=self)
        return other

    def route(self, targets: list[str], seed: int, upstream: str, seq_no: int) -> list[str]:
        """Decide, reproducibly, which of ``targets`` receive upstream batch ``seq_no``."""
        rng = random.Random(_derive_seed(seed, upstream, seq_no))
        if self._takes_rng:
            chosen = self.func(list(targets), rng=rng)
        else:
            # distilabel-style functions draw from the `random` module: seed it for this call only.
            state = random.getstate()
            random.seed(rng.random())
            try:
                chosen = self.func(list(targets))
            finally:
                random.setstate(state)
        unknown = [c for c in chosen if c not in targets]
        if unknown:
            raise ValueError(
                f"Routing function of step '{upstream}' returned unknown steps {unknown}; expected a subset of {targets}."
            )
        # Downstream order is the connection order, whatever order the function returned.
        return [t for t in targets if t in set(chosen)]

    def dump(self) -> dict[str, Any]:
        """Serialisable description: the factory and its kwargs, or the function's import path."""
        if self.factory is not None:
            module, name, kwargs = self.factory
            return {"module": module, "name": name, "kwargs": kwargs}
        return {"module": self.func.__module__, "name": self.func.__qualname__, "kwargs": None}


def _derive_seed(seed: int, upstream: str, seq_no: int) -> int:
    digest = hashlib.sha1(f"{seed}\x00{upstream}\x00{seq_no}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


@overload
def routing_batch_function(func: RoutingFunc) -> RoutingBatchFunction: ...
@overload
def routing_batch_function(
    func: None = None, *, description: str | None = None
) -> Callable[[RoutingFunc], RoutingBatchFunction]: ...
def routing_batch_function(
    func: RoutingFunc | None = None, *, description: str | None = None
) -> RoutingBatchFunction | Callable[[RoutingFunc], RoutingBatchFunction]:
    """Decorate ``func(steps: list[str]) -> list[str]`` to use it as ``step >> func >> [...]``.

    Both forms work: ``@routing_batch_function()`` / ``@routing_batch_function(description=...)``
    (distilabel 1.5's) and the bare ``@routing_batch_function``.
    """
    if func is not None:
        return RoutingBatchFunction(func, description=description)

    def decorator(function: RoutingFunc) -> RoutingBatchFunction:
        return RoutingBatchFunction(function, description=description)

    return decorator


def sample_n_steps(n: int) -> RoutingBatchFunction:
    """Route each batch to ``n`` of the downstream steps, drawn reproducibly."""

    def sample(steps: list[str], rng: random.Random) -> list[str]:
        return rng.sample(steps, n)

    return RoutingBatchFunction(sample, factory=(__name__, "sample_n_steps", {"n": n}))


sample_n_steps.__distil_dagster_routing_factory__ = True  # type: ignore[attr-defined]  # marks a safe factory for YAML
