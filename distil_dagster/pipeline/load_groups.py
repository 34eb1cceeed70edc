"""Load stages: which steps are loaded together, from ``Pipeline.run(load_groups=...)``.

As in distilabel, ``load_groups`` is a list of groups of steps (names or ``Step`` objects), or
``"sequential_step_execution"`` (every step alone). Each group is a stage; the steps in no group
form stages of consecutive steps (in topological order) between the groups. The engine runs the
stages one after another, loading only the steps of the current stage and unloading them before
the next, so two models that do not fit in memory (or on a GPU) together can run in one pipeline.
A stage needs every step before it finished: a step whose predecessor is in a later stage is an
error before any work.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal, Union

from distil_dagster.errors import PipelineValidationError

if TYPE_CHECKING:
    from distil_dagster.pipeline.dag import DAG
    from distil_dagster.steps.base import _Step

__all__ = ["LoadGroups", "load_stages"]

LoadGroups = Union[Sequence[Sequence[Union[str, "_Step"]]], Literal["sequential_step_execution"]]


def _names(dag: DAG, load_groups: LoadGroups) -> list[list[str]]:
    if isinstance(load_groups, str):
        if load_groups != "sequential_step_execution":
            raise PipelineValidationError(
                [f"load_groups {load_groups!r}: the only mode is 'sequential_step_execution'; or pass lists of steps."]
            )
        return [[name] for name in dag.topological_order()]
    groups = [[step if isinstance(step, str) else str(step.name) for step in group] for group in load_groups]
    problems, seen = [], set()
    for index, group in enumerate(groups):
        if not group:
            problems.append(f"load_groups[{index}] is empty.")
        for name in group:
            if name not in dag:
                problems.append(f"load_groups[{index}]: unknown step '{name}'; steps are {dag.names}.")
            elif name in seen:
                problems.append(f"load_groups[{index}]: step '{name}' is in more than one load group.")
            seen.add(name)
    if problems:
        raise PipelineValidationError(problems)
    return groups


def load_stages(dag: DAG, load_groups: LoadGroups | None) -> list[list[str]]:
    """The stages, in the order they run (one stage of every step when ``load_groups`` is ``None``).

    A graph with a cycle is one stage: the pipeline's validation reports the cycle.
    """
    if load_groups is None or not dag.is_acyclic():
        return [dag.names]
    order = dag.topological_order()
    groups = _names(dag, load_groups)
    group_of = {name: index for index, group in enumerate(groups) for name in group}
    position = {name: index for index, name in enumerate(order)}
    stages: list[list[str]] = []
    loose: list[str] = []
    placed: set[int] = set()
    for name in order:
        if name not in group_of:
            loose.append(name)
            continue
        if loose:
            stages.append(loose)
            loose = []
        if group_of[name] not in placed:
            placed.add(group_of[name])
            stages.append(sorted(groups[group_of[name]], key=position.__getitem__))
    if loose:
        stages.append(loose)
    stage_of = {name: index for index, stage in enumerate(stages) for name in stage}
    problems = [
        f"load_groups: step '{name}' (stage {stage_of[name] + 1}) needs step '{before}', which is in a later "
        f"stage ({stage_of[before] + 1}); put them in the same load group, or '{before}' in an earlier one."
        for name in order
        for before in dag.predecessors(name)
        if stage_of[before] > stage_of[name]
    ]
    if problems:
        raise PipelineValidationError(problems)
    return stages
