"""distilabel's older import path ``distilabel.llms``, which 1.5 keeps for ``distilabel.models``:
``from distil_dagster.llms import OpenAILLM`` is ``from distil_dagster.models.llms import OpenAILLM``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from distil_dagster.lazy_exports import lazy_exports
from distil_dagster.models.llms import __all__

if TYPE_CHECKING:
    from distil_dagster.models.llms import LLM, AsyncLLM, ChatType, GenerateOutput, OpenAILLM, TransformersLLM  # noqa: F401

__getattr__ = lazy_exports(__name__, dict.fromkeys(__all__, "distil_dagster.models.llms"))
