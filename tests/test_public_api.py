"""The public names, at distilabel's module paths, are pinned."""

from __future__ import annotations

import importlib

import pytest

EXPORTS = {
    "distil_dagster.pipeline": ["Pipeline", "RoutingBatchFunction", "routing_batch_function", "sample_n_steps"],
    "distil_dagster.steps": [
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
    ],
    "distil_dagster.steps.typing": ["GeneratorStepOutput", "StepColumns", "StepOutput"],
    "distil_dagster.mixins.runtime_parameters": [
        "OptionalRuntimeParameter",
        "RuntimeParameter",
        "RuntimeParameterInfo",
        "RuntimeParametersMixin",
        "RuntimeParametersNames",
    ],
    "distil_dagster.distiset": ["Distiset", "create_distiset"],
    "distil_dagster.steps.tasks": [
        "ChatGeneration",
        "ChatItem",
        "ChatType",
        "GeneratorTask",
        "StructuredGeneration",
        "Task",
        "TextGeneration",
        "TextGenerationWithImage",
        "task",
    ],
    "distil_dagster.models": [
        "LLM",
        "AnyscaleLLM",
        "AsyncLLM",
        "AzureOpenAILLM",
        "ChatType",
        "ClientvLLM",
        "Embeddings",
        "GenerateOutput",
        "InferenceEndpointsLLM",
        "OllamaLLM",
        "OpenAILLM",
        "SentenceTransformerEmbeddings",
        "TogetherLLM",
        "TransformersLLM",
    ],
    "distil_dagster.errors": [
        "CacheCorruptedError",
        "CacheLockedError",
        "DistilDagsterError",
        "DistisetError",
        "GeneratorStepError",
        "GlobalStepError",
        "MissingRequirementsError",
        "PipelineValidationError",
        "RemoteError",
        "RemoteTraceback",
        "RunInterrupted",
        "StepExecutionError",
        "StepLoadError",
        "StepOutputError",
        "StepTimeoutError",
        "WorkerDiedError",
    ],
    "distil_dagster.utils.requirements": ["requirements"],
}


@pytest.mark.parametrize("module", sorted(EXPORTS))
def test_exported_names_are_pinned(module: str) -> None:
    mod = importlib.import_module(module)
    assert sorted(mod.__all__) == sorted(EXPORTS[module])
    for name in EXPORTS[module]:
        assert getattr(mod, name) is not None


def test_errors_inherit_the_matching_builtin() -> None:
    from distil_dagster import errors

    assert issubclass(errors.PipelineValidationError, ValueError)
    assert issubclass(errors.StepLoadError, RuntimeError)
    assert issubclass(errors.GlobalStepError, errors.StepExecutionError)
    for name in set(EXPORTS["distil_dagster.errors"]) - {"RemoteTraceback"}:
        assert issubclass(getattr(errors, name), errors.DistilDagsterError)
