"""Validation before any work: one ``PipelineValidationError`` listing every problem.

Each problem names the step (and the column or parameter); nothing is written under
``cache_dir`` when the pipeline is refused.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from distil_dagster.errors import DistilDagsterError, PipelineValidationError
from distil_dagster.pipeline import Pipeline, sample_n_steps
from distil_dagster.steps import GroupColumns, LoadDataFromDicts, Step, StepInput
from distil_dagster.steps.typing import StepOutput


class Needs(Step):
    """Reads ``instruction``; writes ``answer``."""

    @property
    def inputs(self) -> list[str]:
        return ["instruction"]

    @property
    def outputs(self) -> list[str]:
        return ["answer"]

    def process(self, inputs: StepInput) -> StepOutput:
        yield [{**row, "answer": row["instruction"]} for row in inputs]


class PassThrough(Step):
    """Reads ``id``; writes ``generation``."""

    @property
    def inputs(self) -> list[str]:
        return ["id"]

    @property
    def outputs(self) -> list[str]:
        return ["generation"]

    def process(self, inputs: StepInput) -> StepOutput:
        yield [{**row, "generation": "x"} for row in inputs]


class Merge(Step):
    """Any number of predecessors."""

    def process(self, *inputs: StepInput) -> StepOutput:
        yield [row for rows in inputs for row in rows]


def _gen(name: str = "gen", batch_size: int = 4) -> LoadDataFromDicts:
    return LoadDataFromDicts(name=name, data=[{"id": i} for i in range(8)], batch_size=batch_size)


def _refused(
    pipeline: Pipeline, cache_dir: Path, match: str, parameters: dict | None = None
) -> PipelineValidationError:
    with pytest.raises(PipelineValidationError, match=match) as info:
        pipeline.run(parameters=parameters)
    assert not cache_dir.exists() or list(cache_dir.rglob("*")) == [], "nothing may be written"
    return info.value


def test_missing_input_column_names_step_and_column(tmp_path: Path) -> None:
    cache_dir = tmp_path / "cache"
    with Pipeline(name="missing-column", cache_dir=cache_dir) as pipeline:
        _gen() >> Needs(name="answer")

    error = _refused(
        pipeline, cache_dir, r"Step 'answer' needs input column 'instruction', which no predecessor produces"
    )

    assert isinstance(error, ValueError) and isinstance(error, DistilDagsterError)
    assert len(error.problems) == 1


def test_non_generator_root_is_refused(tmp_path: Path) -> None:
    cache_dir = tmp_path / "cache"
    with Pipeline(name="bad-root", cache_dir=cache_dir) as pipeline:
        _gen() >> PassThrough(name="fine")
        Merge(name="orphan")

    _refused(pipeline, cache_dir, r"Step 'orphan' has no predecessors but is a Merge, not a GeneratorStep")


def test_generator_with_a_predecessor_is_refused(tmp_path: Path) -> None:
    cache_dir = tmp_path / "cache"
    with Pipeline(name="fed-generator", cache_dir=cache_dir) as pipeline:
        _gen("first") >> _gen("second")

    _refused(pipeline, cache_dir, r"Generator step 'second' cannot receive data \(it is connected from \['first'\]\)")


def test_duplicate_step_names_are_refused(tmp_path: Path) -> None:
    cache_dir = tmp_path / "cache"
    with Pipeline(name="duplicates", cache_dir=cache_dir) as pipeline:
        _gen() >> PassThrough(name="same")
        PassThrough(name="same")

    _refused(pipeline, cache_dir, r"Step name 'same' is used by more than one step")


def test_duplicate_names_of_connected_steps_are_not_reported_as_a_cycle(tmp_path: Path) -> None:
    cache_dir = tmp_path / "cache"
    with Pipeline(name="duplicates-connected", cache_dir=cache_dir) as pipeline:
        _gen() >> PassThrough(name="same") >> PassThrough(name="same")

    with pytest.raises(PipelineValidationError) as caught:
        pipeline.run(executor="inline")
    assert caught.value.problems == ["Step name 'same' is used by more than one step; step names must be unique."]


@pytest.mark.parametrize("name", ["../x", "a/b", "..", "with space"])
def test_unsafe_step_names_are_refused(tmp_path: Path, name: str) -> None:
    cache_dir = tmp_path / "cache"
    with Pipeline(name="unsafe", cache_dir=cache_dir) as pipeline:
        _gen() >> PassThrough(name=name)

    _refused(pipeline, cache_dir, rf"Step name {name!r} is not a safe folder name".replace(".", r"\."))


def test_unsafe_pipeline_name_is_refused(tmp_path: Path) -> None:
    cache_dir = tmp_path / "cache"
    with Pipeline(name="../escape", cache_dir=cache_dir) as pipeline:
        _gen() >> PassThrough(name="fine")

    _refused(pipeline, cache_dir, r"Pipeline name '\.\./escape' is not a safe folder name")
    assert not (tmp_path / "escape").exists()


def test_cycle_is_refused(tmp_path: Path) -> None:
    cache_dir = tmp_path / "cache"
    with Pipeline(name="cycle", cache_dir=cache_dir) as pipeline:
        a, b = Merge(name="a"), Merge(name="b")
        _gen() >> a >> b >> a

    _refused(pipeline, cache_dir, r"The pipeline has a cycle: (a -> b|b -> a)")


def test_unknown_runtime_parameter_names_step_and_parameter(tmp_path: Path) -> None:
    cache_dir = tmp_path / "cache"
    with Pipeline(name="unknown-param", cache_dir=cache_dir) as pipeline:
        _gen() >> PassThrough(name="pass")

    _refused(pipeline, cache_dir, r"Step 'pass' has no runtime parameter 'temperature'", {"pass": {"temperature": 0.2}})


def test_unknown_nested_runtime_parameter_is_named_with_its_path(tmp_path: Path) -> None:
    cache_dir = tmp_path / "cache"
    with Pipeline(name="unknown-nested", cache_dir=cache_dir) as pipeline:
        _gen() >> PassThrough(name="pass")

    _refused(
        pipeline,
        cache_dir,
        r"Step 'pass' has no runtime parameter 'resources\.nodes'",
        {"pass": {"resources": {"nodes": 2}}},
    )


def test_parameters_for_an_unknown_step_are_refused(tmp_path: Path) -> None:
    cache_dir = tmp_path / "cache"
    with Pipeline(name="unknown-step", cache_dir=cache_dir) as pipeline:
        _gen() >> PassThrough(name="pass")

    _refused(
        pipeline, cache_dir, r"Runtime parameters given for unknown step 'ghost'", {"ghost": {"input_batch_size": 2}}
    )


def test_routed_step_with_two_predecessors_is_refused(tmp_path: Path) -> None:
    cache_dir = tmp_path / "cache"
    with Pipeline(name="routed-two-preds", cache_dir=cache_dir) as pipeline:
        a, b = Merge(name="a", input_batch_size=2), Merge(name="b", input_batch_size=2)
        _gen("first") >> sample_n_steps(1) >> [a, b]
        _gen("second") >> a

    _refused(
        pipeline, cache_dir, r"Step 'a' receives routed batches from 'first' and must have exactly one predecessor"
    )


def test_routed_step_input_batch_size_must_divide_the_upstream_batch_size(tmp_path: Path) -> None:
    cache_dir = tmp_path / "cache"
    with Pipeline(name="routed-size", cache_dir=cache_dir) as pipeline:
        (
            _gen(batch_size=4)
            >> sample_n_steps(1)
            >> [PassThrough(name="a", input_batch_size=3), PassThrough(name="b", input_batch_size=2)]
        )

    error = _refused(
        pipeline, cache_dir, r"Step 'a' receives routed batches from 'gen': its input_batch_size \(3\) must divide"
    )

    assert not any("'b'" in problem for problem in error.problems)


def test_convergence_step_input_batch_size_larger_than_the_branches_is_refused(tmp_path: Path) -> None:
    cache_dir = tmp_path / "cache"
    with Pipeline(name="convergence-size", cache_dir=cache_dir) as pipeline:
        branches = [PassThrough(name=n, input_batch_size=2) for n in ("a", "b", "c")]
        group = GroupColumns(name="group", columns=["generation"], input_batch_size=4)
        _gen(batch_size=4) >> sample_n_steps(2) >> branches >> group

    error = _refused(
        pipeline,
        cache_dir,
        r"Convergence step 'group': its input_batch_size \(4\) must be <= the input_batch_size of routed predecessor 'a' \(2\)",
    )

    assert len([p for p in error.problems if "Convergence step 'group'" in p]) == 3


def test_input_mappings_key_that_is_not_an_input_is_refused(tmp_path: Path) -> None:
    cache_dir = tmp_path / "cache"
    with Pipeline(name="bad-mapping", cache_dir=cache_dir) as pipeline:
        _gen() >> PassThrough(name="pass", input_mappings={"prompt": "id"})

    _refused(pipeline, cache_dir, r"Step 'pass': input_mappings key 'prompt' is not one of its inputs \['id'\]")


def test_output_mappings_key_that_is_not_an_output_is_refused(tmp_path: Path) -> None:
    cache_dir = tmp_path / "cache"
    with Pipeline(name="bad-output-mapping", cache_dir=cache_dir) as pipeline:
        _gen() >> PassThrough(name="pass", output_mappings={"answer": "reply"})

    _refused(
        pipeline, cache_dir, r"Step 'pass': output_mappings key 'answer' is not one of its outputs \['generation'\]"
    )


def test_every_problem_is_reported_in_one_error(tmp_path: Path) -> None:
    cache_dir = tmp_path / "cache"
    with Pipeline(name="many-problems", cache_dir=cache_dir) as pipeline:
        gen = _gen()
        gen >> Needs(name="answer")
        gen >> PassThrough(name="pass", input_mappings={"prompt": "id"})
        Merge(name="orphan")
        Merge(name="../x")

    error = _refused(pipeline, cache_dir, r"Invalid pipeline \(7 problem\(s\)\)", {"ghost": {}, "pass": {"nope": 1}})

    expected = [
        "Step name '../x' is not a safe folder name",
        "Runtime parameters given for unknown step 'ghost'",
        "Step 'pass' has no runtime parameter 'nope'",
        "Step 'orphan' has no predecessors",
        "Step 'answer' needs input column 'instruction'",
        "Step 'pass': input_mappings key 'prompt' is not one of its inputs",
    ]
    for fragment in expected:
        assert sum(fragment in problem for problem in error.problems) == 1, fragment
        assert fragment in str(error)
    assert "Step '../x' has no predecessors" in str(error)
    assert len(error.problems) == 7


def test_validate_returns_quietly_for_a_valid_pipeline(tmp_path: Path) -> None:
    with Pipeline(name="valid", cache_dir=tmp_path / "cache") as pipeline:
        _gen() >> PassThrough(name="pass")

    pipeline.validate({"pass": {"input_batch_size": 3}})

    assert not (tmp_path / "cache").exists()
