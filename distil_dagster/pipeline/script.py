"""A pipeline defined in a Python script (a file, or an ``http(s)://`` URL): ``pipeline run --script``.

The script is imported as a module, not run as ``__main__``: its ``with Pipeline(...) as pipeline:``
block builds the pipeline and its ``if __name__ == "__main__":`` block (which usually calls
``pipeline.run()``) does not run. The module gets a name of its own (``distil_dagster_script_<stem>``)
so that a script called ``datasets.py`` or ``pipeline.py`` cannot shadow an installed package;
workers import it from its file like any module they cannot find by name
(``distil_dagster.engine.step_modules``).

A script from a URL is saved in a folder the caller owns (never the working directory, where it
could overwrite a file) and must stay there while the pipeline runs.
"""

from __future__ import annotations

import http.client
import importlib.util
import re
import sys
import urllib.parse
from pathlib import Path
from typing import TYPE_CHECKING

from distil_dagster.errors import PipelineValidationError
from distil_dagster.pipeline.remote import fetch_text, is_url

if TYPE_CHECKING:
    from distil_dagster.pipeline.base import Pipeline

__all__ = ["load_script"]


def load_script(source: str | Path, variable: str = "pipeline", download_dir: Path | None = None) -> Pipeline:
    """Import the script at ``source`` and return its pipeline.

    Args:
        source: a ``.py`` file, or an ``http(s)://`` URL of one.
        variable: the name the script binds its pipeline to (``with Pipeline(...) as pipeline:``).
        download_dir: where a script from a URL is saved (required for a URL).

    Raises:
        PipelineValidationError: naming the script: not a ``.py`` file, unreadable, raised while
            importing, or without a ``Pipeline`` called ``variable``.
    """
    from distil_dagster.pipeline.base import Pipeline

    text = str(source)
    path = _local_copy(text, download_dir) if is_url(text) else Path(source)
    if path.suffix != ".py":
        raise PipelineValidationError([f"{text}: a pipeline script must be a Python file (.py)."])
    if not path.is_file():
        raise PipelineValidationError([f"{text}: no such script."])
    module = _import(path.resolve(), text)
    found = getattr(module, variable, None)
    if isinstance(found, Pipeline):
        return found
    others = sorted(name for name, value in vars(module).items() if isinstance(value, Pipeline))
    hint = f"; its Pipeline objects: {others} (choose one with --pipeline-variable-name)" if others else ""
    raise PipelineValidationError([f"{text}: the script defines no Pipeline called {variable!r}{hint}."])


def _local_copy(url: str, download_dir: Path | None) -> Path:
    if download_dir is None:
        raise PipelineValidationError([f"{url}: a script from a URL needs a folder to be saved in."])
    name = Path(urllib.parse.urlsplit(url).path).name
    if not name.endswith(".py"):
        raise PipelineValidationError([f"{url}: a pipeline script must be a Python file (.py)."])
    try:
        content = fetch_text(url)
    except (OSError, http.client.HTTPException, UnicodeDecodeError, ValueError) as exc:
        raise PipelineValidationError([f"{url}: cannot download the script ({exc})."]) from exc
    path = Path(download_dir) / name
    path.write_text(content, encoding="utf-8")
    return path


def _import(path: Path, source: str) -> object:
    name = "distil_dagster_script_" + re.sub(r"\W", "_", path.stem)
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise PipelineValidationError([f"{source}: cannot import the script."])
    module = importlib.util.module_from_spec(spec)
    saved_path = list(sys.path)
    sys.path.insert(0, str(path.parent))  # its sibling modules, as `python script.py` would find them
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except (Exception, SystemExit) as exc:
        sys.modules.pop(name, None)
        raise PipelineValidationError(
            [f"{source}: the script raised {type(exc).__name__} while being imported: {exc}"]
        ) from exc
    finally:
        sys.path[:] = saved_path
    return module
