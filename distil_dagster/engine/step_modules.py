"""Steps defined in modules a worker cannot import by name, and how workers import them.

Dagster loads ``-f definitions.py`` by path and then restores ``sys.path``; a step class defined
there pickles by reference to a module that a fresh worker process cannot find. The parent lists
such modules with their files (``modules_by_path``); the worker (a local process or a Ray actor)
imports each from its file before unpickling the step (``import_by_path``), with the file's folder
first on ``sys.path`` meanwhile, as the parent had it, so that the module's own imports of modules
next to it resolve.
"""

from __future__ import annotations

import importlib.util
import os
import sys

__all__ = ["import_by_path", "modules_by_path"]


def modules_by_path(cls: type) -> list[tuple[str, str]]:
    """Modules of ``cls`` (and its bases) that a worker cannot import by name, with their files."""
    found: list[tuple[str, str]] = []
    for klass in cls.__mro__:
        name = klass.__module__
        module = sys.modules.get(name)
        path = getattr(module, "__file__", None)
        if name in ("__main__", "builtins") or path is None or any(n == name for n, _ in found):
            continue
        if not _findable(name.partition(".")[0]):
            found.append((name, path))
    return found


def _findable(top: str) -> bool:
    """Whether a fresh interpreter would find package ``top`` (sys.path, editable-install hooks, ...).

    Asks the import finders themselves: importlib.util.find_spec would answer from sys.modules.
    """
    for finder in sys.meta_path:
        find_spec = getattr(finder, "find_spec", None)
        if find_spec is None:
            continue
        try:
            if find_spec(top, None) is not None:
                return True
        except (ImportError, ValueError, TypeError):
            continue
    return False


def import_by_path(modules: list[tuple[str, str]]) -> None:
    """In a worker: import the modules ``modules_by_path`` found, each from its file."""
    for name, path in modules:
        if name in sys.modules:
            continue
        module_spec = importlib.util.spec_from_file_location(name, path)
        if module_spec is None or module_spec.loader is None:
            raise ImportError(f"cannot import module {name!r} from {path}")
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[name] = module
        saved_path = list(sys.path)
        sys.path.insert(0, os.path.dirname(path))
        try:
            module_spec.loader.exec_module(module)
        finally:
            sys.path[:] = saved_path
