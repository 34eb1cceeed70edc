"""Whether worker processes may start by importing the parent's main module again.

``forkserver`` and ``spawn`` workers import the script that started the run (``__main__``) once
more, to find what it defines. A script that starts its pipeline at import time (no
``if __name__ == "__main__":``) would start it again in every worker, and a main module without a
file (a notebook, the REPL, ``python -c``, standard input) cannot be imported at all. distilabel
forks its workers on Linux, so such scripts and notebooks work there; here they get ``fork`` too,
on Linux, and a clear error before any work elsewhere.
"""

from __future__ import annotations

import ast
import logging
import os
import re
import sys
import tokenize
from collections.abc import Iterable
from typing import Any

__all__ = ["fork_reason", "start_method_for"]


def start_method_for(configured: str | None, steps: Iterable[Any], logger: logging.Logger | None = None) -> str:
    """The start method of local workers: ``configured`` if set, else ``forkserver``, or ``fork``
    where workers could not import the main module again (``fork_reason``, logged to ``logger``)."""
    if configured is not None:
        return configured
    reason = fork_reason(steps)
    if reason is None:
        return "forkserver"
    if not sys.platform.startswith("linux"):
        from distil_dagster.errors import PipelineValidationError

        raise PipelineValidationError(
            [
                f"Worker processes cannot start: {reason}. Put the run under "
                '`if __name__ == "__main__":` in a script, or run with executor="inline".'
            ]
        )
    if logger is not None:
        logger.info("Worker processes start with fork: %s.", reason)
    return "fork"


def fork_reason(steps: Iterable[Any]) -> str | None:
    """Why workers must fork from this process rather than import its main module (``None``: they
    need not). ``steps``: the steps the workers will run."""
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    if path is None:  # a notebook, the REPL, ``python -c``: nothing is imported again
        defined = sorted({step.name for step in steps if _defined_in_main(step)})
        if defined:
            return f"steps {defined} are defined in an interactive session, which workers cannot import"
        return None
    if not os.path.isfile(path):
        return f"the main module comes from {path}, which workers cannot import"
    if not _guarded(path):
        return (
            f'the script {os.path.basename(path)} has no `if __name__ == "__main__":` block, so workers '
            "importing it would start the pipeline again"
        )
    return None


_PLAIN_GUARD = re.compile(r"""^if\s+__name__\s*==\s*(['"])__main__\1\s*:""", re.MULTILINE)


def _guarded(path: str) -> bool:
    """Whether the script has a top-level ``if __name__ == "__main__":`` block."""
    try:
        with tokenize.open(path) as file:
            source = file.read()
    except (OSError, SyntaxError, UnicodeDecodeError):
        return False
    if "__main__" not in source:
        return False
    if _PLAIN_GUARD.search(source):  # the usual spelling, found without parsing the script
        return True
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return False
    return any(isinstance(node, ast.If) and _is_main_test(node.test) for node in tree.body)


def _is_main_test(test: ast.expr) -> bool:
    if not isinstance(test, ast.Compare):
        return False
    operands = [test.left, *test.comparators]
    names = any(isinstance(o, ast.Name) and o.id == "__name__" for o in operands)
    return names and any(isinstance(o, ast.Constant) and o.value == "__main__" for o in operands)


def _defined_in_main(value: Any, depth: int = 0) -> bool:
    """Whether ``value``'s class, or the class of a model it holds (an LLM, ...), is from ``__main__``."""
    if any(klass.__module__ == "__main__" for klass in type(value).__mro__):
        return True
    fields = getattr(type(value), "model_fields", None)
    if not fields or depth > 3:
        return False
    for name in fields:
        held = getattr(value, name, None)
        if getattr(type(held), "model_fields", None) is not None and _defined_in_main(held, depth + 1):
            return True
    return False
