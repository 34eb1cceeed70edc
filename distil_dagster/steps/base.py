"""Step base classes: ``Step``, ``GeneratorStep``, ``GlobalStep`` and ``StepInput``.

Steps are pydantic models. Creating one inside ``with Pipeline(...):`` adds it to that pipeline;
``a >> b`` connects steps. Steps know nothing about the engine or the cache: the engine calls
``load()``, then ``process_batch(*inputs)`` per batch, then ``unload()``.
"""

from __future__ import annotations

import inspect
import json
import logging
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, TypeVar, Union, overload

from pydantic import ConfigDict, Field, PositiveInt, PrivateAttr

from distil_dagster.mixins.runtime_parameters import RuntimeParameter, RuntimeParametersMixin
from distil_dagster.steps.resources import StepResources
from distil_dagster.steps.shadowed_columns import ShadowedColumns
from distil_dagster.steps.typing import GeneratorStepOutput, StepColumns, StepOutput

if TYPE_CHECKING:
    from distil_dagster.pipeline.routing import RoutingBatchFunction

_logger = logging.getLogger("distil_dagster")

__all__ = ["GeneratorStep", "GlobalStep", "Step", "StepInput", "StepResources"]

_STEP_INPUT_ANNOTATION = "distil_dagster_step_input"
StepInput = Annotated[list[dict[str, Any]], _STEP_INPUT_ANNOTATION]
"""Annotation of the ``process`` arguments that receive the rows of a batch."""

Rows = list[dict[str, Any]]
StepT = TypeVar("StepT", bound="_Step")


def _camel_to_snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _columns_dict(columns: StepColumns) -> dict[str, bool]:
    return dict(columns) if isinstance(columns, dict) else dict.fromkeys(columns, True)


class _Step(RuntimeParametersMixin, ABC):
    """What every step shares: name, mappings, resources, connections and lifecycle.

    Attributes:
        name: unique within the pipeline; also a folder name in the cache.
        resources: replicas and devices (not part of the cache signature).
        input_mappings: step input column -> upstream column it reads.
        output_mappings: step output column -> column name written downstream.
        use_cache: reuse this step's committed batches when the pipeline resumes.
        pipeline: the pipeline the step belongs to (set by ``with Pipeline()``).
    """

    model_config = ConfigDict(
        arbitrary_types_allowed=True,
        validate_default=True,
        validate_assignment=True,
        extra="forbid",
    )

    name: str | None = Field(default=None)
    resources: StepResources = Field(default_factory=StepResources)
    input_mappings: dict[str, str] = Field(default_factory=dict)
    output_mappings: dict[str, str] = Field(default_factory=dict)
    use_cache: bool = True
    pipeline: Any = Field(default=None, exclude=True, repr=False)

    _built_from_decorator: ClassVar[bool] = False
    #: Packages the step needs (PEP 508 strings), set with ``@requirements([...])``; a run with one
    #: missing fails before any work.
    requirements: ClassVar[list[str]] = []
    signature_exclude: ClassVar[frozenset[str]] = frozenset()
    """Fields that do not change the output (left out of the cache signature)."""
    _loaded: bool = PrivateAttr(default=False)
    _artifacts_directory: Path | None = PrivateAttr(default=None)

    def model_post_init(self, __context: Any) -> None:
        if self.pipeline is None:
            from distil_dagster.pipeline.context import active_pipeline

            self.pipeline = active_pipeline()
        if self.name is None:
            prefix = _camel_to_snake(type(self).__name__)
            index = self.pipeline.next_step_index(prefix) if self.pipeline is not None else 0
            self.name = f"{prefix}_{index}"
        if self.pipeline is not None:
            self.pipeline.add_step(self)

    # -- kinds ---------------------------------------------------------------------------------
    @property
    def is_generator(self) -> bool:
        """Whether the step produces rows without inputs."""
        return False

    @property
    def is_global(self) -> bool:
        """Whether the step receives all its input at once."""
        return False

    @property
    def is_normal(self) -> bool:
        """Whether the step processes batches as they come."""
        return not self.is_generator and not self.is_global

    # -- what distilabel's steps also tell ----------------------------------------------------------
    @property
    def process_parameters(self) -> list[inspect.Parameter]:
        """The parameters of ``process`` (``self`` excluded)."""
        process = getattr(self, "process")  # noqa: B009  # each kind of step declares its own
        return list(inspect.signature(process).parameters.values())

    @property
    def has_multiple_inputs(self) -> bool:
        """Whether ``process`` takes one list of rows per predecessor (``*inputs``)."""
        return any(p.kind is p.VAR_POSITIONAL for p in self.process_parameters)

    def dump(self) -> dict[str, Any]:
        """The step as plain data, as its entry in ``pipeline.yaml`` holds it: its fields (secrets
        left out), ``runtime_parameters_info`` and ``type_info``."""
        from distil_dagster.pipeline.signature import canonical

        cls = type(self)
        data: dict[str, Any] = canonical({k: getattr(self, k) for k in cls.model_fields if k != "pipeline"})
        data["runtime_parameters_info"] = self.get_runtime_parameters_info()
        data["type_info"] = {"module": cls.__module__, "name": cls.__qualname__}
        return data

    # -- columns -------------------------------------------------------------------------------
    @property
    def inputs(self) -> StepColumns:
        """Columns the step reads (a list, or a mapping column -> required)."""
        return []

    @property
    def outputs(self) -> StepColumns:
        """Columns the step writes (a list, or a mapping column -> required)."""
        return []

    def get_inputs(self) -> dict[str, bool]:
        """Upstream columns the step reads (``input_mappings`` applied) -> required."""
        return {self.input_mappings.get(c, c): r for c, r in _columns_dict(self.inputs).items()}

    def get_outputs(self) -> dict[str, bool]:
        """Columns the step writes (``output_mappings`` applied) -> required."""
        return {self.output_mappings.get(c, c): r for c, r in _columns_dict(self.outputs).items()}

    def columns_after(self, available: set[str]) -> set[str]:
        """Columns present in the rows this step emits, given the columns it receives."""
        return available | set(self.get_outputs())

    def signature_extra(self) -> dict[str, Any]:
        """Extra output-defining facts for the signature (e.g. sizes and mtimes of input files)."""
        return {}

    def failed_rows(self, rows: list[dict[str, Any]]) -> int:
        """How many of ``rows`` (this step's output) failed row by row (tasks count per-row LLM errors)."""
        return 0

    def total_rows(self) -> int | None:
        """Rows the step will produce, when known in advance (shown as progress totals)."""
        return None

    def required_gpus(self) -> int:
        """GPUs each replica needs: ``resources.gpus`` (steps with a CUDA model add theirs)."""
        return int(self.resources.gpus or 0)

    # -- lifecycle -----------------------------------------------------------------------------
    def load(self) -> None:
        """Prepare the step (load models, open clients). Runs in the worker before any batch."""
        self._loaded = True

    def unload(self) -> None:
        """Release what ``load()`` took. Always runs, also after a failure."""
        self._loaded = False

    # -- artifacts -------------------------------------------------------------------------------
    @property
    def artifacts_directory(self) -> Path | None:
        """Where this step's artifacts go in a run (``<cache folder>/artifacts/<step>``); else ``None``."""
        return self._artifacts_directory

    def set_artifacts_directory(self, path: Path | None) -> None:
        """Set by the engine before the step is loaded."""
        self._artifacts_directory = path

    def save_artifact(
        self, name: str, write_function: Callable[[Path], None], metadata: dict[str, Any] | None = None
    ) -> None:
        """Save an artifact (a plot, an index, a model file...) as in distilabel: ``write_function`` gets
        the folder ``<artifacts>/<step>/<name>`` to write into; ``metadata`` goes to its ``metadata.json``.

        Artifacts travel with the Distiset (``artifacts_path``, ``save_to_disk``, ``push_to_hub``).
        Outside a run (no artifacts directory) nothing is saved and a warning is logged.
        """
        if self._artifacts_directory is None:
            _logger.warning(
                "Step '%s': no artifacts directory (not in a run); artifact '%s' not saved.", self.name, name
            )
            return
        from distil_dagster.pipeline.dag import unsafe_name_reason

        reason = unsafe_name_reason(name)
        if reason:
            raise ValueError(f"Step '{self.name}': artifact name {name!r} is not a safe folder name: {reason}.")
        folder = self._artifacts_directory / name
        for path in (self._artifacts_directory, folder):
            path.mkdir(mode=0o700, exist_ok=True)
        write_function(folder)
        (folder / "metadata.json").write_text(json.dumps(metadata or {}, indent=2, default=str), encoding="utf-8")

    # -- connections ---------------------------------------------------------------------------
    def connect(self, *steps: _Step, routing_batch_function: RoutingBatchFunction | None = None) -> None:
        """Connect this step to ``steps`` (optionally through a routing batch function)."""
        if self.pipeline is None:
            raise ValueError(f"Step '{self.name}' is not part of a pipeline; create it inside `with Pipeline(...)`.")
        for step in steps:
            self.pipeline.add_edge(self.name, step.name)
        if routing_batch_function is not None:
            self.pipeline.add_routing_batch_function(self.name, routing_batch_function, [s.name for s in steps])

    @overload
    def __rshift__(self, other: RoutingBatchFunction) -> RoutingBatchFunction: ...
    @overload
    def __rshift__(self, other: list[StepT]) -> list[StepT]: ...
    @overload
    def __rshift__(self, other: StepT) -> StepT: ...
    def __rshift__(self, other: Any) -> Any:
        from distil_dagster.pipeline.routing import RoutingBatchFunction

        if isinstance(other, RoutingBatchFunction):
            return other.attach(self)
        if isinstance(other, list):
            self.connect(*other)
            return other
        if isinstance(other, _Step):
            self.connect(other)
            return other
        return NotImplemented

    def __rrshift__(self: StepT, other: list[Any]) -> StepT:
        if not isinstance(other, list):
            return NotImplemented
        for step in other:
            step.connect(self)
        return self

    # -- processing ----------------------------------------------------------------------------
    def _runtime_kwargs(self) -> dict[str, Any]:
        return {}

    def _map_inputs(self, inputs: tuple[Rows, ...]) -> tuple[tuple[Rows, ...], list[ShadowedColumns]]:
        """Expose upstream columns under the step's input names; remember the values of upstream
        columns that a mapped column hides (``{"instruction": "prompt"}`` on rows that have both)."""
        mappings = self.input_mappings
        mapped_inputs: list[Rows] = []
        shadowed: list[ShadowedColumns] = []
        for rows in inputs:
            mapped: Rows = []
            saved: list[dict[str, Any]] = []
            for row in rows:
                new = dict(row)
                kept: dict[str, Any] = {}
                for step_col, up_col in mappings.items():
                    if up_col in new:
                        if step_col in new and step_col != up_col:
                            kept[step_col] = new[step_col]
                        new[step_col] = new.pop(up_col)
                mapped.append(new)
                saved.append(kept)
            mapped_inputs.append(mapped)
            shadowed.append(ShadowedColumns(mapped, saved))
        return tuple(mapped_inputs), shadowed

    def _map_outputs(self, rows: Rows, shadowed: ShadowedColumns | None) -> Rows:
        """Rename outputs (``output_mappings``) and give mapped inputs back their upstream names;
        a hidden upstream column comes back where the step did not write a column of that name."""
        rename = {**{k: v for k, v in self.input_mappings.items()}, **self.output_mappings}
        result: Rows = []
        for i, row in enumerate(rows):
            new = {rename.get(k, k): v for k, v in row.items()}
            if shadowed is not None:
                for col, value in shadowed.for_output(row, i, len(rows)).items():
                    new.setdefault(col, value)
            result.append(new)
        return result


class Step(_Step):
    """A step that processes batches of rows as they stream in.

    Subclasses declare ``inputs``/``outputs`` and implement ``process(self, *inputs: StepInput)``,
    yielding the output rows once per call. A step with several predecessors receives one list of
    rows per predecessor.

    Attributes:
        input_batch_size: rows per predecessor in each batch given to ``process``.
    """

    input_batch_size: RuntimeParameter[PositiveInt] = Field(
        default=50, description="The number of rows that will contain the batches processed by the step."
    )

    def concurrent_batches(self) -> int:
        """Batches one replica may compute at once, in threads of its worker (1: one at a time).

        More than one only pays for steps that wait on I/O with the GIL released (e.g. requests
        to an LLM server): the next batch starts while the last requests of the previous one
        are still out. ``process`` must then be thread-safe.
        """
        return 1

    @abstractmethod
    def process(self, *inputs: StepInput) -> StepOutput:
        """Process the rows of one batch (one list per predecessor) and yield the output rows."""

    def process_batch(self, *inputs: Rows) -> Rows:
        """One batch as the engine runs it: mappings applied around ``process``, whose first
        yielded list of rows is the output (as distilabel's engine)."""
        mapped, shadowed = self._map_inputs(inputs) if self.input_mappings else (inputs, [])
        rows = _first_output(self, self.process(*mapped, **self._runtime_kwargs()))
        return self._mapped_output(rows, shadowed)

    def process_applying_mappings(self, *inputs: Rows) -> Iterator[Rows]:
        """distilabel's entry point for calling a step by hand (e.g. in a unit test):
        ``next(step.process_applying_mappings(rows))``; yields every list of rows ``process``
        yields, mappings applied."""
        mapped, shadowed = self._map_inputs(inputs) if self.input_mappings else (inputs, [])
        result = self.process(*mapped, **self._runtime_kwargs())
        if result is None:
            raise TypeError(f"Step '{self.name}': process() returned None; it must yield a list of rows.")
        for rows in [result] if isinstance(result, list) else result:
            yield self._mapped_output(rows, shadowed)

    def _mapped_output(self, rows: Rows, shadowed: list[ShadowedColumns]) -> Rows:
        if not self.input_mappings and not self.output_mappings:
            return rows
        return self._map_outputs(rows, shadowed[0] if len(shadowed) == 1 else None)

    def process_parameter_names(self) -> tuple[int, bool]:
        """Return ``(positional StepInput parameters, accepts *args)`` of ``process``."""
        params = [
            p
            for p in self.process_parameters
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL)
        ]
        var = any(p.kind is p.VAR_POSITIONAL for p in params)
        names = self._runtime_kwargs()
        return len([p for p in params if p.kind is not p.VAR_POSITIONAL and p.name not in names]), var


class GlobalStep(Step):
    """A step that receives every row once all its predecessors have finished."""

    @property
    def is_global(self) -> bool:
        return True


class GeneratorStep(_Step):
    """A step that produces rows, ``batch_size`` at a time, resuming from a row offset.

    Attributes:
        batch_size: rows per produced batch.
    """

    batch_size: RuntimeParameter[PositiveInt] = Field(
        default=50, description="The number of rows that will contain the batches generated by the step."
    )

    @property
    def is_generator(self) -> bool:
        return True

    @abstractmethod
    def process(self, offset: int = 0) -> GeneratorStepOutput:
        """Yield ``(rows, is_last_batch)`` pairs, starting ``offset`` rows into the data."""

    def process_applying_mappings(self, offset: int = 0) -> Iterator[tuple[Rows, bool]]:
        """Iterate ``process(offset)`` with output mappings applied."""
        for rows, last in self.process(offset, **self._runtime_kwargs()):
            yield (self._map_outputs(rows, None) if self.output_mappings else rows), last


def _first_output(step: _Step, result: Union[Iterable[Rows], Rows, None]) -> Rows:
    """The rows of the first ``yield`` of ``process`` (distilabel uses only that one)."""
    if result is None:
        raise TypeError(f"Step '{step.name}': process() returned None; it must yield a list of rows.")
    if isinstance(result, list):
        return result
    iterator = iter(result)
    try:
        rows = next(iterator)
    except StopIteration:
        return []
    finally:
        close = getattr(iterator, "close", None)
        if close is not None:
            close()
    if not isinstance(rows, list):
        raise TypeError(f"Step '{step.name}': process() yielded {type(rows).__name__}; it must yield a list of rows.")
    return rows
