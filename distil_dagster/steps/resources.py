"""Execution resources of a step: replicas and devices (excluded from the signature)."""

from __future__ import annotations

from pydantic import Field, PositiveInt

from distil_dagster.mixins.runtime_parameters import RuntimeParameter, RuntimeParametersMixin, RuntimeParametersNames

__all__ = ["StepResources"]


class StepResources(RuntimeParametersMixin):
    """Resources a step asks for when it runs.

    Attributes:
        replicas: number of worker replicas sharing the step's input.
        cpus: CPUs per replica (used by scale-out backends).
        gpus: GPUs per replica; the scheduler gives each replica its own devices.
        memory: memory per replica in bytes (used by scale-out backends).
        resources: custom resources per replica (used by scale-out backends).
    """

    replicas: RuntimeParameter[PositiveInt] = Field(default=1, description="The number of replicas for the step.")
    cpus: RuntimeParameter[PositiveInt] = Field(
        default=None, description="The number of CPUs assigned to each step replica."
    )
    gpus: RuntimeParameter[PositiveInt] = Field(
        default=None, description="The number of GPUs assigned to each step replica."
    )
    memory: RuntimeParameter[PositiveInt] = Field(
        default=None, description="The memory in bytes required for each step replica."
    )
    resources: RuntimeParameter[dict[str, int]] = Field(
        default=None,
        description="A dictionary containing names of custom resources and the number of those resources required for each step replica.",
    )

    @property
    def runtime_parameters_names(self) -> RuntimeParametersNames:
        """Every resource has a usable default (``None`` means "not requested")."""
        return dict.fromkeys(super().runtime_parameters_names, True)
