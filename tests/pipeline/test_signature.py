"""The cache signature: what defines the output changes it; execution resources do not."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from distil_dagster.mixins.runtime_parameters import RuntimeParameter
from distil_dagster.pipeline import Pipeline, sample_n_steps
from distil_dagster.steps import LoadDataFromDicts, Step, StepInput, StepResources
from distil_dagster.steps.typing import StepOutput


class Multiply(Step):
    """Writes ``product = id * factor``."""

    factor: RuntimeParameter[int] = 2

    @property
    def inputs(self) -> list[str]:
        return ["id"]

    @property
    def outputs(self) -> list[str]:
        return ["product"]

    def process(self, inputs: StepInput) -> StepOutput:
        yield [{**row, "product": row["id"] * self.factor} for row in inputs]


def build(
    cache_dir: Path,
    data: list[dict[str, Any]] | None = None,
    seed: int = 0,
    **middle: Any,
) -> Pipeline:
    with Pipeline(name="signature", cache_dir=cache_dir, seed=seed) as pipeline:
        gen = LoadDataFromDicts(
            name="gen", data=data if data is not None else [{"id": i} for i in range(5)], batch_size=2
        )
        gen >> Multiply(name="middle", **middle) >> Multiply(name="leaf", input_batch_size=3)
    return pipeline


def test_same_definition_gives_the_same_signature(tmp_path: Path) -> None:
    first, second = build(tmp_path), build(tmp_path / "elsewhere")

    assert first.signature == second.signature
    assert len(first.signature) == 40 and int(first.signature, 16) >= 0


def test_loader_data_changes_the_signature(tmp_path: Path) -> None:
    assert build(tmp_path).signature != build(tmp_path, data=[{"id": i} for i in range(1, 6)]).signature


def test_middle_step_parameter_changes_the_signature(tmp_path: Path) -> None:
    assert build(tmp_path).signature != build(tmp_path, factor=3).signature
    assert build(tmp_path).signature != build(tmp_path, input_batch_size=4).signature
    assert build(tmp_path).signature != build(tmp_path, input_mappings={"id": "id"}).signature


def test_runtime_parameter_set_after_construction_changes_the_signature(tmp_path: Path) -> None:
    pipeline = build(tmp_path)
    before = pipeline.signature

    pipeline.dag.step("middle").set_runtime_parameters({"factor": 3})

    assert pipeline.signature != before
    assert pipeline.signature == build(tmp_path, factor=3).signature


def test_seed_and_connections_change_the_signature(tmp_path: Path) -> None:
    assert build(tmp_path).signature != build(tmp_path, seed=1).signature
    with Pipeline(name="signature", cache_dir=tmp_path) as other:
        gen = LoadDataFromDicts(name="gen", data=[{"id": i} for i in range(5)], batch_size=2)
        middle, leaf = Multiply(name="middle"), Multiply(name="leaf", input_batch_size=3)
        gen >> [middle, leaf]
    assert other.signature != build(tmp_path).signature


def test_routing_function_changes_the_signature(tmp_path: Path) -> None:
    def routed(n: int) -> str:
        with Pipeline(name="routed", cache_dir=tmp_path) as pipeline:
            gen = LoadDataFromDicts(name="gen", data=[{"id": i} for i in range(4)], batch_size=2)
            gen >> sample_n_steps(n) >> [Multiply(name="a", input_batch_size=2), Multiply(name="b", input_batch_size=2)]
        return pipeline.signature

    assert routed(1) != routed(2)


def test_replicas_and_other_resources_do_not_change_the_signature(tmp_path: Path) -> None:
    base = build(tmp_path).signature

    assert build(tmp_path, resources=StepResources(replicas=4)).signature == base
    assert build(tmp_path, resources=StepResources(replicas=2, cpus=3, gpus=1, memory=1024)).signature == base


def test_use_cache_flag_does_not_change_the_signature(tmp_path: Path) -> None:
    assert build(tmp_path, use_cache=False).signature == build(tmp_path).signature
