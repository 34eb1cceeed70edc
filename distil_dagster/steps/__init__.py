"""Steps: the base classes, the ``@step`` decorator and the built-in steps.

The steps most pipelines use are imported with the package; the others on first use (``_LAZY``),
so worker processes, which import the package, do not pay for steps they never run.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from distil_dagster.lazy_exports import lazy_exports
from distil_dagster.steps.base import GeneratorStep, GlobalStep, Step, StepInput
from distil_dagster.steps.columns.expand import ExpandColumns
from distil_dagster.steps.columns.group import CombineOutputs, GroupColumns
from distil_dagster.steps.columns.keep import KeepColumns
from distil_dagster.steps.decorator import step
from distil_dagster.steps.embeddings import EmbeddingGeneration
from distil_dagster.steps.filtering import DeduplicateRows, EmbeddingDedup
from distil_dagster.steps.generators.data import LoadDataFromDicts
from distil_dagster.steps.generators.file_system import LoadDataFromFileSystem
from distil_dagster.steps.generators.huggingface import LoadDataFromDisk, LoadDataFromHub
from distil_dagster.steps.resources import StepResources
from distil_dagster.steps.typing import GeneratorStepOutput, StepOutput

if TYPE_CHECKING:
    from distil_dagster.steps.columns.merge import MergeColumns
    from distil_dagster.steps.filtering.minhash import MinHashDedup
    from distil_dagster.steps.formatting import (
        ConversationTemplate,
        FormatChatGenerationDPO,
        FormatChatGenerationSFT,
        FormatTextGenerationDPO,
        FormatTextGenerationSFT,
    )
    from distil_dagster.steps.generators.sampler import DataSampler
    from distil_dagster.steps.generators.utils import make_generator_step
    from distil_dagster.steps.hub import PushToHub
    from distil_dagster.steps.nearest_neighbour import FaissNearestNeighbour
    from distil_dagster.steps.truncate import TruncateTextColumn

__all__ = [
    "CombineOutputs",
    "ConversationTemplate",
    "DataSampler",
    "DeduplicateRows",
    "EmbeddingDedup",
    "EmbeddingGeneration",
    "ExpandColumns",
    "FaissNearestNeighbour",
    "FormatChatGenerationDPO",
    "FormatChatGenerationSFT",
    "FormatTextGenerationDPO",
    "FormatTextGenerationSFT",
    "GeneratorStep",
    "GeneratorStepOutput",
    "GlobalStep",
    "GroupColumns",
    "KeepColumns",
    "LoadDataFromDicts",
    "LoadDataFromDisk",
    "LoadDataFromFileSystem",
    "LoadDataFromHub",
    "MergeColumns",
    "MinHashDedup",
    "PushToHub",
    "Step",
    "StepInput",
    "StepOutput",
    "StepResources",
    "TruncateTextColumn",
    "make_generator_step",
    "step",
]

_LAZY = {
    "MergeColumns": "distil_dagster.steps.columns.merge",
    "MinHashDedup": "distil_dagster.steps.filtering.minhash",
    "ConversationTemplate": "distil_dagster.steps.formatting",
    "FormatChatGenerationDPO": "distil_dagster.steps.formatting",
    "FormatChatGenerationSFT": "distil_dagster.steps.formatting",
    "FormatTextGenerationDPO": "distil_dagster.steps.formatting",
    "FormatTextGenerationSFT": "distil_dagster.steps.formatting",
    "DataSampler": "distil_dagster.steps.generators.sampler",
    "FaissNearestNeighbour": "distil_dagster.steps.nearest_neighbour",
    "make_generator_step": "distil_dagster.steps.generators.utils",
    "PushToHub": "distil_dagster.steps.hub",
    "TruncateTextColumn": "distil_dagster.steps.truncate",
}


__getattr__ = lazy_exports(__name__, _LAZY)
