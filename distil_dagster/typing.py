"""distilabel 1.5's ``distilabel.typing`` names (also at ``distil_dagster.steps.typing``)."""

from distil_dagster.steps.typing import GeneratorStepOutput, StepColumns, StepOutput

__all__ = ["GeneratorStepOutput", "StepColumns", "StepOutput"]
