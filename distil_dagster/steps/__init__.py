"""Steps: the base classes, the ``@step`` decorator and the built-in steps."""

from distil_dagster.steps.base import GeneratorStep, GlobalStep, Step, StepInput
from distil_dagster.steps.columns.expand import ExpandColumns
from distil_dagster.steps.columns.group import CombineOutputs, GroupColumns
from distil_dagster.steps.columns.keep import KeepColumns
from distil_dagster.steps.decorator import step
from distil_dagster.steps.generators.data import LoadDataFromDicts
from distil_dagster.steps.resources import StepResources

__all__ = [
    "CombineOutputs",
    "ExpandColumns",
    "GeneratorStep",
    "GlobalStep",
    "GroupColumns",
    "KeepColumns",
    "LoadDataFromDicts",
    "Step",
    "StepInput",
    "StepResources",
    "step",
]
