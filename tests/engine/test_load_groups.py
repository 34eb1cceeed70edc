"""``Pipeline.run(load_groups=...)``: stages of steps loaded in isolation, one after another."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from distil_dagster.engine.config import EngineConfig
from distil_dagster.errors import PipelineValidationError
from distil_dagster.pipeline import Pipeline
from distil_dagster.pipeline.load_groups import load_stages
from distil_dagster.steps import LoadDataFromDicts, Step, StepInput, StepResources
from distil_dagster.steps.typing import StepOutput


class LoadProbe(Step):
    """Appends ``load <name>`` / ``unload <name>`` to the file ``events``; writes ``<name>`` = id + 1
    and ``devices_<name>`` (the ``CUDA_VISIBLE_DEVICES`` its worker sees)."""

    events: str = ""
    signature_exclude = frozenset({"events"})

    @property
    def inputs(self) -> list[str]:
        return ["id"]

    @property
    def outputs(self) -> list[str]:
        return [str(self.name), f"devices_{self.name}"]

    def _note(self, what: str) -> None:
        with open(self.events, "a", encoding="utf-8") as out:
            out.write(f"{what} {self.name}\n")

    def load(self) -> None:
        super().load()
        self._note("load")

    def unload(self) -> None:
        self._note("unload")
        super().unload()

    def process(self, *inputs: StepInput) -> StepOutput:
        yield [
            {**row, str(self.name): row["id"] + 1, f"devices_{self.name}": os.environ.get("CUDA_VISIBLE_DEVICES")}
            for row in inputs[0]
        ]


def build(cache: Path, events: Path, gpus: int | None = None) -> Pipeline:
    """gen -> a -> b, gen -> c (leaves b and c)."""
    with Pipeline(name="load-groups", cache_dir=cache) as pipeline:
        gen = LoadDataFromDicts(name="gen", data=[{"id": i} for i in range(20)], batch_size=4)
        probes = [
            LoadProbe(name=n, events=str(events), input_batch_size=3, resources=StepResources(gpus=gpus)) for n in "abc"
        ]
        gen >> probes[0] >> probes[1]
        gen >> probes[2]
    return pipeline


def _events(events: Path) -> list[tuple[str, ...]]:
    return [tuple(line.split()) for line in events.read_text().splitlines()]


def test_stages_follow_the_groups_and_the_steps_between_them(tmp_path: Path) -> None:
    dag = build(tmp_path, tmp_path / "events").dag

    assert load_stages(dag, None) == [["gen", "a", "b", "c"]]
    assert load_stages(dag, "sequential_step_execution") == [["gen"], ["a"], ["b"], ["c"]]
    assert load_stages(dag, [["b"]]) == [["gen", "a"], ["b"], ["c"]]
    assert load_stages(dag, [[dag.step("c"), "a"]]) == [["gen"], ["a", "c"], ["b"]]


def test_invalid_load_groups_fail_before_any_work_naming_the_steps(tmp_path: Path) -> None:
    pipeline = build(tmp_path, tmp_path / "events")

    with pytest.raises(PipelineValidationError) as raised:
        pipeline.run(executor="inline", load_groups=[["a", "nope"], ["a"], []])
    message = str(raised.value)
    assert "unknown step 'nope'" in message
    assert "step 'a' is in more than one load group" in message and "load_groups[2] is empty" in message
    with pytest.raises(PipelineValidationError, match=r"step 'b' .* needs step 'a', which is in a later stage"):
        pipeline.run(executor="inline", load_groups=[["gen", "b"], ["a"]])
    with pytest.raises(PipelineValidationError, match="the only mode is 'sequential_step_execution'"):
        pipeline.run(executor="inline", load_groups="parallel")  # type: ignore[arg-type]
    assert not (tmp_path / "events").exists() and not list(tmp_path.rglob("*.parquet"))


def test_each_stage_is_unloaded_before_the_next_loads(tmp_path: Path, executor: str, rows) -> None:
    events = tmp_path / "events"
    pipeline = build(tmp_path / "cache", events)

    distiset = pipeline.run(executor=executor, load_groups=[["b"], ["c"]])

    assert [(r["id"], r["a"], r["b"]) for r in rows(distiset, "b")] == [(i, i + 1, i + 1) for i in range(20)]
    assert [r["c"] for r in rows(distiset, "c")] == [i + 1 for i in range(20)]
    # stages: [gen, a], [b], [c]
    assert _events(events) == [
        ("load", "a"),
        ("unload", "a"),
        ("load", "b"),
        ("unload", "b"),
        ("load", "c"),
        ("unload", "c"),
    ]


def test_sequential_steps_can_share_one_gpu(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, rows) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "7")
    pipeline = build(tmp_path / "cache", tmp_path / "events", gpus=1)
    with pytest.raises(PipelineValidationError, match=r"ask for 3 GPU\(s\)"):
        pipeline.run(executor="processes", config=EngineConfig())

    distiset = pipeline.run(executor="processes", load_groups="sequential_step_execution")

    for leaf, probes in (("b", "ab"), ("c", "c")):
        for probe in probes:
            assert {r[f"devices_{probe}"] for r in rows(distiset, leaf)} == {"7"}


def test_with_load_groups_a_cycle_is_still_reported_by_the_validation(tmp_path: Path) -> None:
    pipeline = build(tmp_path, tmp_path / "events")
    pipeline.add_edge("b", "a")

    with pytest.raises(PipelineValidationError, match="The pipeline has a cycle"):
        pipeline.run(executor="inline", load_groups="sequential_step_execution")
