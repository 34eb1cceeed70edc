"""``make_generator_step``: the generator step for a list of rows, a ``datasets.Dataset`` or a ``pandas.DataFrame``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from distil_dagster.steps.base import GeneratorStep
from distil_dagster.steps.generators.data import LoadDataFromDicts
from distil_dagster.steps.generators.in_memory import LoadDataFromDataset, is_dataframe
from distil_dagster.steps.resources import StepResources

if TYPE_CHECKING:
    from distil_dagster.pipeline.base import Pipeline

__all__ = ["make_generator_step"]

# distilabel builds a LoadDataFromHub for a Dataset or a DataFrame, so the step is named after it.
_DATASET_STEP_PREFIX = "load_data_from_hub"


def _dataset_step_name(pipeline: Pipeline | None) -> str:
    if pipeline is None:
        from distil_dagster.pipeline.context import active_pipeline

        pipeline = active_pipeline()
    index = pipeline.next_step_index(_DATASET_STEP_PREFIX) if pipeline is not None else 0
    return f"{_DATASET_STEP_PREFIX}_{index}"


def make_generator_step(
    dataset: Any,
    pipeline: Pipeline | None = None,
    batch_size: int = 50,
    input_mappings: dict[str, str] | None = None,
    output_mappings: dict[str, str] | None = None,
    resources: StepResources | None = None,
    repo_id: str | None = "default_name",
) -> GeneratorStep:
    """A generator step yielding the rows of ``dataset``, ``batch_size`` at a time.

    Args:
        dataset: a list of rows (dicts), a ``datasets.Dataset`` or a ``pandas.DataFrame``.
        pipeline: the pipeline to add the step to (default: the one of the enclosing ``with`` block).
        batch_size: rows per batch.
        input_mappings: as for any step.
        output_mappings: as for any step (renames the dataset's columns downstream).
        resources: as for any step.
        repo_id: accepted for distilabel compatibility and unused: the rows are never loaded from the Hub.

    Returns:
        A ``LoadDataFromDicts`` for a list; a ``LoadDataFromDataset`` named ``load_data_from_hub_<n>``
        (distilabel's name for it) for a Dataset or a DataFrame.

    Raises:
        ValueError: ``dataset`` is of another type.
    """
    common: dict[str, Any] = {
        "pipeline": pipeline,
        "batch_size": batch_size,
        "input_mappings": input_mappings or {},
        "output_mappings": output_mappings or {},
        "resources": resources or StepResources(),
    }
    if isinstance(dataset, list):
        return LoadDataFromDicts(data=dataset, **common)

    from datasets import Dataset

    if not (isinstance(dataset, Dataset) or is_dataframe(dataset)):
        raise ValueError(
            f"make_generator_step: cannot make a generator step from a {type(dataset).__module__}."
            f"{type(dataset).__qualname__}; pass a list of dicts, a datasets.Dataset or a pandas.DataFrame."
        )
    return LoadDataFromDataset(name=_dataset_step_name(pipeline), data=dataset, **common)
