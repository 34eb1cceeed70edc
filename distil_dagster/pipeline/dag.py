"""The pipeline graph (networkx) and its validation.

networkx is imported where a graph is built or searched, not with this module: worker processes
import the pipeline package (the user's script does) but never build a graph, and the import
(~55 ms) would hold up every worker's start.

``DAG`` holds the steps, the edges in connection order and the routing batch functions. Its
``validate`` collects every problem (names, cycles, roots, columns, routing, runtime parameters,
``process`` signatures) so the pipeline can refuse to start with one error that lists them all.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from distil_dagster.steps.base import _columns_dict

if TYPE_CHECKING:
    import networkx as nx

    from distil_dagster.pipeline.routing import RoutingBatchFunction
    from distil_dagster.steps.base import _Step

__all__ = ["DAG", "Routing"]

_RESERVED_COLUMN = "distilabel_metadata"
"""Written by the engine and tasks (errors, raw outputs, statistics); steps may read it, not declare it."""
_SAFE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,127}$")


def unsafe_name_reason(name: str) -> str | None:
    """Why ``name`` cannot be a step or pipeline name (it becomes a folder name), or ``None``."""
    if not isinstance(name, str):
        return f"it is a {type(name).__name__}, not a string"
    if not _SAFE_NAME.match(name) or name in (".", "..") or ".." in name:
        return "use letters, digits, '_', '-' and '.' only (at most 128 characters, no '..')"
    return None


@dataclass
class Routing:
    """A routing batch function between an upstream step and its routed targets."""

    upstream: str
    function: RoutingBatchFunction
    targets: list[str]


class DAG:
    """Steps and connections of a pipeline, in insertion order."""

    def __init__(self) -> None:
        import networkx as nx

        self.graph: nx.DiGraph = nx.DiGraph()
        self.routing: dict[str, Routing] = {}
        self.duplicate_names: list[str] = []

    # -- building --------------------------------------------------------------------------------
    def add_step(self, step: _Step) -> None:
        assert step.name is not None
        if step.name in self.graph:
            self.duplicate_names.append(step.name)
            return
        self.graph.add_node(step.name, step=step)

    def add_edge(self, source: str, target: str) -> None:
        self.graph.add_edge(source, target)

    def add_routing(self, upstream: str, function: RoutingBatchFunction, targets: list[str]) -> None:
        self.routing[upstream] = Routing(upstream, function, list(targets))

    def remove_step(self, name: str) -> None:
        """Remove a step and its connections (``run(dataset=...)`` takes its generator out again)."""
        self.graph.remove_node(name)
        self.routing.pop(name, None)

    # -- queries ---------------------------------------------------------------------------------
    def __contains__(self, name: object) -> bool:
        return name in self.graph

    def __len__(self) -> int:
        return len(self.graph)

    def step(self, name: str) -> _Step:
        step: _Step = self.graph.nodes[name]["step"]
        return step

    @property
    def names(self) -> list[str]:
        return list(self.graph.nodes)

    def predecessors(self, name: str) -> list[str]:
        return list(self.graph.predecessors(name))

    def successors(self, name: str) -> list[str]:
        return list(self.graph.successors(name))

    def is_acyclic(self) -> bool:
        import networkx as nx

        return bool(nx.is_directed_acyclic_graph(self.graph))

    def topological_order(self) -> list[str]:
        """Steps in a stable topological order (ties broken by insertion order)."""
        import networkx as nx

        index = {n: i for i, n in enumerate(self.graph.nodes)}
        return list(nx.lexicographical_topological_sort(self.graph, key=lambda n: index[n]))

    @property
    def leaves(self) -> list[str]:
        return [n for n in self.graph.nodes if self.graph.out_degree(n) == 0]

    @property
    def roots(self) -> list[str]:
        return [n for n in self.graph.nodes if self.graph.in_degree(n) == 0]

    # -- distilabel's names for the same queries (code written against distilabel's DAG) ---------
    def __iter__(self) -> Iterator[str]:
        return iter(list(self.graph.nodes))

    @property
    def G(self) -> Any:  # distilabel's name
        """The ``networkx.DiGraph``: nodes are step names, each with its step under ``"step"``."""
        return self.graph

    def get_step(self, name: str) -> dict[str, Any]:
        """The node of step ``name``: ``{"step": <the step>}`` (``dag.get_step(name)["step"]``)."""
        if name not in self.graph:
            raise ValueError(f"Step with name '{name}' does not exist")
        node: dict[str, Any] = self.graph.nodes[name]
        return node

    @property
    def root_steps(self) -> set[str]:
        """Names of the steps without predecessors."""
        return set(self.roots)

    @property
    def leaf_steps(self) -> set[str]:
        """Names of the steps without successors."""
        return set(self.leaves)

    def get_step_predecessors(self, step_name: str) -> Iterator[str]:
        """Names of the steps feeding ``step_name``."""
        return iter(self.predecessors(step_name))

    def get_step_successors(self, step_name: str) -> Iterator[str]:
        """Names of the steps ``step_name`` feeds."""
        return iter(self.successors(step_name))

    @property
    def trophic_levels(self) -> dict[str, float]:
        """Each step's trophic level (``networkx.trophic_levels``: roots are 1, a step is one more
        than the mean of its predecessors')."""
        import networkx as nx

        return {name: float(level) for name, level in nx.trophic_levels(self.graph).items()}

    def iter_based_on_trophic_levels(self) -> Iterator[list[str]]:
        """Lists of step names, one per trophic level, lowest first (steps in a list may run together)."""
        levels: dict[float, list[str]] = {}
        for name, level in self.trophic_levels.items():
            levels.setdefault(level, []).append(name)
        for level in sorted(levels):
            yield levels[level]

    def routed_upstream(self, name: str) -> str | None:
        """The upstream step routing batches to ``name``, if ``name`` receives routed batches."""
        for routing in self.routing.values():
            if name in routing.targets:
                return routing.upstream
        return None

    def convergence_upstream(self, name: str) -> str | None:
        """For a convergence step (all predecessors routed from one upstream), that upstream."""
        preds = self.predecessors(name)
        if not preds:
            return None
        ups = {self.routed_upstream(p) for p in preds}
        if len(ups) == 1 and None not in ups:
            return ups.pop()
        return None

    def ancestors(self, name: str) -> set[str]:
        import networkx as nx

        return set(nx.ancestors(self.graph, name))

    def descendants(self, name: str) -> set[str]:
        import networkx as nx

        return set(nx.descendants(self.graph, name))

    def closure(self, names: list[str]) -> list[str]:
        """``names`` and all their ancestors, in topological order."""
        keep = set(names)
        for name in names:
            keep |= self.ancestors(name)
        return [n for n in self.topological_order() if n in keep]

    def subdag(self, names: list[str]) -> DAG:
        """The DAG restricted to ``names`` and their ancestors (same step objects).

        Routing keeps its full target lists, so routing decisions do not depend on the subset.
        """
        keep = self.closure(names)
        sub = DAG()
        sub.graph = self.graph.subgraph(keep).copy()
        sub.routing = {u: r for u, r in self.routing.items() if u in sub.graph}
        return sub

    # -- validation ------------------------------------------------------------------------------
    def validate(self, parameters: dict[str, dict[str, Any]] | None = None) -> list[str]:
        """Every problem of the graph and of ``parameters``, one message each (empty if valid)."""
        problems: list[str] = []
        for name in self.duplicate_names:
            problems.append(f"Step name '{name}' is used by more than one step; step names must be unique.")
        for name in self.graph.nodes:
            reason = unsafe_name_reason(name)
            if reason:
                problems.append(f"Step name {name!r} is not a safe folder name: {reason}.")
        if len(self.graph) == 0:
            problems.append("The pipeline has no steps.")
        problems.extend(self._validate_parameters(parameters or {}))
        import networkx as nx

        if not nx.is_directed_acyclic_graph(self.graph):
            if not self.duplicate_names:  # connections of same-named steps look like a cycle
                cycle = " -> ".join(u for u, _ in nx.find_cycle(self.graph))
                problems.append(f"The pipeline has a cycle: {cycle}; connect steps so data flows one way.")
            return problems
        problems.extend(self._validate_kinds())
        problems.extend(self._validate_columns())
        problems.extend(self._validate_routing())
        return problems

    def _validate_kinds(self) -> list[str]:
        problems = []
        for name in self.graph.nodes:
            step = self.step(name)
            preds = self.predecessors(name)
            if not preds and not step.is_generator:
                problems.append(
                    f"Step '{name}' has no predecessors but is a {type(step).__name__}, not a GeneratorStep; "
                    "the first step of a pipeline must generate data (e.g. LoadDataFromDicts)."
                )
            if preds and step.is_generator:
                problems.append(f"Generator step '{name}' cannot receive data (it is connected from {preds}).")
            if preds and not step.is_generator and self.convergence_upstream(name) is None:
                taken, var = step.process_parameter_names()  # type: ignore[attr-defined]
                if not var and taken < len(preds):
                    problems.append(
                        f"Step '{name}' has {len(preds)} predecessors {preds} but its process() takes "
                        f"{taken} input list(s); declare `def process(self, *inputs: StepInput)`."
                    )
        return problems

    def _validate_columns(self) -> list[str]:
        problems = []
        flowing: dict[str, set[str]] = {}
        for name in self.topological_order():
            step = self.step(name)
            available: set[str] = set()
            for pred in self.predecessors(name):
                available |= flowing[pred]
            inputs = _columns_dict(step.inputs)
            outputs = _columns_dict(step.outputs)
            for column in step.get_outputs():
                if not isinstance(column, str) or "\x00" in column:
                    problems.append(
                        f"Step '{name}' outputs column {column!r}; column names must be strings without NUL."
                    )
            if _RESERVED_COLUMN in step.get_outputs():
                problems.append(
                    f"Step '{name}' outputs column '{_RESERVED_COLUMN}', which is reserved for row metadata; "
                    "rename it (e.g. with output_mappings)."
                )
            for key in step.input_mappings:
                if key not in inputs:
                    problems.append(
                        f"Step '{name}': input_mappings key '{key}' is not one of its inputs {list(inputs)}."
                    )
            for key in step.output_mappings:
                if key not in outputs:
                    problems.append(
                        f"Step '{name}': output_mappings key '{key}' is not one of its outputs {list(outputs)}."
                    )
            if not step.is_generator:
                for column, required in inputs.items():
                    source = step.input_mappings.get(column, column)
                    if required and source not in available:
                        mapped = f" (mapped to its input '{column}')" if source != column else ""
                        problems.append(
                            f"Step '{name}' needs input column '{source}'{mapped}, which no predecessor "
                            f"produces; available columns: {sorted(available)}."
                        )
            flowing[name] = step.columns_after(available)
        return problems

    def _validate_routing(self) -> list[str]:
        problems = []
        for routing in self.routing.values():
            upstream = self.step(routing.upstream)
            up_size = (
                getattr(upstream, "batch_size", None)
                if upstream.is_generator
                else getattr(upstream, "input_batch_size", None)
            )
            for target in routing.targets:
                preds = self.predecessors(target)
                if len(preds) != 1:
                    problems.append(
                        f"Step '{target}' receives routed batches from '{routing.upstream}' and must have exactly one predecessor, but has {preds}."
                    )
                size = getattr(self.step(target), "input_batch_size", None)
                if up_size and size and (size > up_size or up_size % size):
                    problems.append(
                        f"Step '{target}' receives routed batches from '{routing.upstream}': its input_batch_size "
                        f"({size}) must divide the upstream batch size ({up_size})."
                    )
        for name in self.graph.nodes:
            if self.convergence_upstream(name) is None:
                continue
            size = getattr(self.step(name), "input_batch_size", None) or math.inf
            for pred in self.predecessors(name):
                pred_size = getattr(self.step(pred), "input_batch_size", None) or math.inf
                if size > pred_size:
                    problems.append(
                        f"Convergence step '{name}': its input_batch_size ({size}) must be <= the input_batch_size "
                        f"of routed predecessor '{pred}' ({pred_size})."
                    )
        return problems

    def _validate_parameters(self, parameters: dict[str, dict[str, Any]]) -> list[str]:
        if not isinstance(parameters, dict):
            return [
                f"Runtime parameters must be a mapping {{step name: {{parameter: value}}}}, got {type(parameters).__name__}."
            ]
        problems = []
        for step_name, values in parameters.items():
            if step_name not in self.graph:
                problems.append(f"Runtime parameters given for unknown step '{step_name}'; steps are {self.names}.")
                continue
            step = self.step(step_name)
            if not isinstance(values, dict):
                problems.append(
                    f"Runtime parameters of step '{step_name}' must be a mapping, got {type(values).__name__}."
                )
                continue
            for param in step.unknown_runtime_parameters(values):
                known = sorted(step.runtime_parameters_names)
                problems.append(
                    f"Step '{step_name}' has no runtime parameter '{param}'; its runtime parameters are {known}."
                )
        return problems
