"""The step authoring API: ``@step``, runtime parameter descriptions, ``>>``, mappings, yields.

Mappings follow distilabel: ``input_mappings={input: upstream_column}`` makes the step read
``input`` from ``upstream_column``, which keeps its name downstream; ``output_mappings`` renames
the step's output columns.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import Field

from distil_dagster.errors import PipelineValidationError
from distil_dagster.mixins.runtime_parameters import RuntimeParameter
from distil_dagster.pipeline import Pipeline
from distil_dagster.steps import GeneratorStep, GlobalStep, GroupColumns, LoadDataFromDicts, Step, StepInput, step
from distil_dagster.steps.typing import StepOutput

RESOURCES_INFO = {
    "name": "resources",
    "runtime_parameters_info": [
        {"name": "replicas", "optional": True, "description": "The number of replicas for the step."},
        {"name": "cpus", "optional": True, "description": "The number of CPUs assigned to each step replica."},
        {"name": "gpus", "optional": True, "description": "The number of GPUs assigned to each step replica."},
        {"name": "memory", "optional": True, "description": "The memory in bytes required for each step replica."},
        {
            "name": "resources",
            "optional": True,
            "description": "A dictionary containing names of custom resources and the number of those resources required for each step replica.",
        },
    ],
}
INPUT_BATCH_SIZE_INFO = {
    "name": "input_batch_size",
    "optional": True,
    "description": "The number of rows that will contain the batches processed by the step.",
}


@step(inputs=["id"], outputs=["scaled"])
def Scale(inputs: StepInput, factor: RuntimeParameter[int] = 2) -> StepOutput:
    for row in inputs:
        row["scaled"] = row["id"] * factor
    yield inputs


@step(inputs=["id"], step_type="global")
def CountAll(inputs: StepInput) -> StepOutput:
    yield [{**row, "count": len(inputs)} for row in inputs]


@step(outputs=["id"], step_type="generator")
def Countdown(start: RuntimeParameter[int] = 3) -> StepOutput:
    yield [{"id": i} for i in range(start, 0, -1)], True


class Annotate(Step):
    """A step with an optional and a required runtime parameter, and a plain field."""

    note: str = "plain"
    temperature: RuntimeParameter[float] = Field(default=0.7, description="Sampling temperature.")
    api_base: RuntimeParameter[str] = Field(default=None, description="Where the model is served.")

    @property
    def inputs(self) -> list[str]:
        return ["id"]

    def process(self, inputs: StepInput) -> StepOutput:
        yield inputs


class Length(Step):
    """Writes ``length`` = len(instruction)."""

    @property
    def inputs(self) -> list[str]:
        return ["instruction"]

    @property
    def outputs(self) -> list[str]:
        return ["length"]

    def process(self, inputs: StepInput) -> StepOutput:
        for row in inputs:
            row["length"] = len(row["instruction"])
        yield inputs


class NeedsLength(Step):
    """Reads ``prompt_length`` (as mapped downstream) and doubles it."""

    @property
    def inputs(self) -> list[str]:
        return ["prompt_length"]

    @property
    def outputs(self) -> list[str]:
        return ["double_length"]

    def process(self, inputs: StepInput) -> StepOutput:
        yield [{**row, "double_length": 2 * row["prompt_length"]} for row in inputs]


class YieldsTwice(Step):
    """Yields the rows, then more rows: only the first yield counts."""

    @property
    def inputs(self) -> list[str]:
        return ["id"]

    def process(self, inputs: StepInput) -> StepOutput:
        yield inputs
        yield [{"id": -1}]


def test_decorated_step_is_a_step_class_named_after_the_function() -> None:
    assert isinstance(Scale, type) and issubclass(Scale, Step)
    assert (Scale.__module__, Scale.__qualname__) == (__name__, "Scale")
    assert issubclass(CountAll, GlobalStep)
    assert issubclass(Countdown, GeneratorStep)
    instance = Scale(name="scale")
    assert instance.inputs == ["id"] and instance.outputs == ["scaled"]
    assert instance.factor == 2
    assert instance.is_normal and not instance.is_global and not instance.is_generator


def test_decorated_function_whose_rows_parameter_lacks_step_input_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="@step function 'Shift': parameter 'inputs' would become a runtime"):

        @step(inputs=["id"], outputs=["x"])
        def Shift(inputs):  # type: ignore[no-untyped-def]  # the annotation is what is missing
            yield inputs


def test_runtime_parameters_info_of_a_decorated_step() -> None:
    assert Scale(name="scale").get_runtime_parameters_info() == [
        RESOURCES_INFO,
        INPUT_BATCH_SIZE_INFO,
        {"name": "factor", "optional": True},
    ]


def test_runtime_parameters_info_of_a_step_subclass() -> None:
    assert Annotate(name="annotate").get_runtime_parameters_info() == [
        RESOURCES_INFO,
        INPUT_BATCH_SIZE_INFO,
        {"name": "temperature", "optional": True, "description": "Sampling temperature."},
        {"name": "api_base", "optional": False, "description": "Where the model is served."},
    ]


def test_runtime_parameters_info_of_a_generator() -> None:
    assert LoadDataFromDicts(name="gen", data=[{"id": 1}]).get_runtime_parameters_info() == [
        RESOURCES_INFO,
        {
            "name": "batch_size",
            "optional": True,
            "description": "The number of rows that will contain the batches generated by the step.",
        },
    ]


def test_runtime_parameters_names_are_nested_for_resources() -> None:
    names = Annotate(name="annotate").runtime_parameters_names

    assert names == {
        "resources": {"replicas": True, "cpus": True, "gpus": True, "memory": True, "resources": True},
        "input_batch_size": True,
        "temperature": True,
        "api_base": False,
    }


def test_shift_operators_connect_steps_in_order() -> None:
    with Pipeline(name="connect") as pipeline:
        gen = LoadDataFromDicts(name="gen", data=[{"id": 1}])
        a, b, c = Scale(name="a"), Scale(name="b"), CountAll(name="c")
        returned = gen >> [a, b]
        joined = [a, b] >> c

    assert returned == [a, b]
    assert joined is c
    assert pipeline.dag.successors("gen") == ["a", "b"]
    assert pipeline.dag.predecessors("c") == ["a", "b"]
    assert pipeline.dag.leaves == ["c"]


def test_steps_get_unique_default_names_and_join_the_open_pipeline() -> None:
    with Pipeline(name="names") as pipeline:
        gen = LoadDataFromDicts(data=[{"id": 1}])
        first, second = Scale(), Scale()

    assert first.pipeline is pipeline and gen.pipeline is pipeline
    assert len({gen.name, first.name, second.name}) == 3
    assert pipeline.dag.names == [gen.name, first.name, second.name]


def test_default_names_skip_names_the_user_took() -> None:
    with Pipeline(name="taken") as pipeline:
        gen = LoadDataFromDicts(name="scale_0", data=[{"id": 1}])
        first, second = Scale(), Scale(name="scale_2")
        third = Scale()

    assert (gen.name, first.name, second.name, third.name) == ("scale_0", "scale_1", "scale_2", "scale_3")
    assert pipeline.dag.duplicate_names == []


def test_process_applying_mappings_called_by_hand_yields_mapped_rows_as_in_distilabel() -> None:
    length = Length(name="length", input_mappings={"instruction": "prompt"}, output_mappings={"length": "size"})
    twice = YieldsTwice(name="twice")

    batches = length.process_applying_mappings([{"prompt": "abc"}, {"prompt": "a"}])

    assert next(batches) == [{"prompt": "abc", "size": 3}, {"prompt": "a", "size": 1}]
    assert list(twice.process_applying_mappings([{"id": 0}])) == [[{"id": 0}], [{"id": -1}]]


def test_step_dump_and_process_parameters_as_in_distilabel() -> None:
    with Pipeline(name="dump") as pipeline:
        gen = LoadDataFromDicts(name="gen", data=[{"id": 1}])
        scale = Scale(name="scale", factor=3)
        gen >> scale

    assert scale.dump() == next(s["step"] for s in pipeline.dump()["pipeline"]["steps"] if s["name"] == "scale")
    assert scale.dump()["factor"] == 3
    assert scale.dump()["type_info"] == {"module": __name__, "name": "Scale"}
    assert [p.name for p in scale.process_parameters] == ["inputs", "factor"]
    assert not scale.has_multiple_inputs and not Annotate(name="a").has_multiple_inputs
    assert GroupColumns(name="g", columns=["id"]).has_multiple_inputs


def test_decorated_generator_and_global_steps_run(tmp_path: Path, rows) -> None:
    with Pipeline(name="decorated", cache_dir=tmp_path, seed=0) as pipeline:
        Countdown(name="countdown") >> CountAll(name="count")

    result = rows(pipeline.run(parameters={"countdown": {"start": 4}}))

    assert result == [{"id": 4, "count": 4}, {"id": 3, "count": 4}, {"id": 2, "count": 4}, {"id": 1, "count": 4}]


def test_input_and_output_mappings_rename_columns_like_distilabel(tmp_path: Path, rows) -> None:
    data = [{"id": i, "prompt": "x" * (i + 1)} for i in range(4)]
    with Pipeline(name="mappings", cache_dir=tmp_path, seed=0) as pipeline:
        gen = LoadDataFromDicts(name="gen", data=data, batch_size=3)
        length = Length(
            name="length", input_mappings={"instruction": "prompt"}, output_mappings={"length": "prompt_length"}
        )
        gen >> length >> NeedsLength(name="double")

    result = rows(pipeline.run())

    assert result == [
        {"id": i, "prompt": "x" * (i + 1), "prompt_length": i + 1, "double_length": 2 * (i + 1)} for i in range(4)
    ]


def test_input_mapping_keeps_an_upstream_column_with_the_inputs_name(tmp_path: Path, rows) -> None:
    data = [{"id": 0, "instruction": "kept", "prompt": "abc"}]
    with Pipeline(name="mapping-override", cache_dir=tmp_path, seed=0) as pipeline:
        gen = LoadDataFromDicts(name="gen", data=data)
        gen >> Length(name="length", input_mappings={"instruction": "prompt"})

    result = rows(pipeline.run())

    assert result == [{"id": 0, "instruction": "kept", "prompt": "abc", "length": 3}]


@step(inputs=["instruction"], outputs=["generation"])
def Echo(inputs: StepInput) -> StepOutput:
    for row in inputs:
        row["generation"] = row["instruction"].upper()
    yield inputs


@step(inputs=["instruction"], outputs=["generation"])
def DropB(inputs: StepInput) -> StepOutput:
    kept = [row for row in inputs if row["instruction"] != "b"]
    for row in kept:
        row["generation"] = row["instruction"]
    yield kept


@step(inputs=["instruction"], outputs=["generation"])
def TwoEach(inputs: StepInput) -> StepOutput:
    yield [{**row, "generation": f"{row['instruction']}{k}"} for row in inputs for k in range(2)]


def test_an_output_mapped_onto_a_hidden_column_wins_over_the_hidden_value(tmp_path: Path, rows) -> None:
    with Pipeline(name="mapping-output-wins", cache_dir=tmp_path, seed=0) as pipeline:
        gen = LoadDataFromDicts(name="gen", data=[{"prompt": "a", "instruction": "old"}])
        gen >> Echo(
            name="echo", input_mappings={"instruction": "prompt"}, output_mappings={"generation": "instruction"}
        )

    assert rows(pipeline.run()) == [{"prompt": "a", "instruction": "A"}]


def test_a_hidden_column_goes_back_to_the_row_it_came_from_when_rows_are_dropped_or_expanded() -> None:
    def upstream() -> list[dict[str, str]]:
        return [{"prompt": p, "instruction": f"old_{p}"} for p in "abc"]

    dropped = next(DropB(name="drop", input_mappings={"instruction": "prompt"}).process_applying_mappings(upstream()))
    expanded = next(TwoEach(name="two", input_mappings={"instruction": "prompt"}).process_applying_mappings(upstream()))

    assert [(r["prompt"], r["instruction"]) for r in dropped] == [("a", "old_a"), ("c", "old_c")]
    assert [(r["generation"], r["instruction"]) for r in expanded] == [
        (f"{p}{k}", f"old_{p}") for p in "abc" for k in range(2)
    ]


def test_mapping_an_input_to_a_missing_column_is_refused(tmp_path: Path) -> None:
    with Pipeline(name="mapping-missing", cache_dir=tmp_path, seed=0) as pipeline:
        gen = LoadDataFromDicts(name="gen", data=[{"id": 0, "prompt": "abc"}])
        gen >> Length(name="length", input_mappings={"instruction": "question"})

    with pytest.raises(
        PipelineValidationError,
        match=r"Step 'length' needs input column 'question' \(mapped to its input 'instruction'\)",
    ):
        pipeline.run()


def test_only_the_first_yield_of_process_is_used(tmp_path: Path, rows) -> None:
    with Pipeline(name="first-yield", cache_dir=tmp_path, seed=0) as pipeline:
        LoadDataFromDicts(name="gen", data=[{"id": i} for i in range(5)], batch_size=2) >> YieldsTwice(
            name="twice", input_batch_size=2
        )

    result = rows(pipeline.run())

    assert [r["id"] for r in result] == [0, 1, 2, 3, 4]
