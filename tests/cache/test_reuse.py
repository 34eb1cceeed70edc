"""Serving from the cache: a finished pipeline is returned without running any step; anything
that changes the output changes the signature folder, so stale rows are never served.

A step whose ``load()`` appends to a marker file (a field) shows whether steps were started.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from distil_dagster.distiset import create_distiset
from distil_dagster.mixins.runtime_parameters import RuntimeParameter
from distil_dagster.pipeline import Pipeline
from distil_dagster.steps import LoadDataFromDicts, Step, StepInput
from distil_dagster.steps.typing import StepOutput
from tests.cache.steps import Label


class MarkLoad(Step):
    """Appends ``"load"`` to ``marker_path`` when loaded; writes ``product = id * factor``."""

    marker_path: str
    factor: RuntimeParameter[int] = 2

    @property
    def inputs(self) -> list[str]:
        return ["id"]

    @property
    def outputs(self) -> list[str]:
        return ["product"]

    def load(self) -> None:
        super().load()
        with open(self.marker_path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps("load") + "\n")

    def process(self, inputs: StepInput) -> StepOutput:
        yield [{**row, "product": row["id"] * self.factor} for row in inputs]


def build(cache_dir: Path, marker: Path, data: list[dict[str, Any]] | None = None, **mark: Any) -> Pipeline:
    with Pipeline(name="reuse", cache_dir=cache_dir, seed=0) as pipeline:
        gen = LoadDataFromDicts(
            name="gen", data=data if data is not None else [{"id": i} for i in range(7)], batch_size=3
        )
        (
            gen
            >> MarkLoad(name="mark", marker_path=str(marker), input_batch_size=2, **mark)
            >> Label(name="label", input_batch_size=4)
        )
    return pipeline


def _expected(ids: range | list[int], factor: int = 2) -> list[dict[str, Any]]:
    return [{"id": i, "product": i * factor, "label": f"L{i}"} for i in ids]


def test_finished_pipeline_is_returned_from_the_cache_without_running_steps(tmp_path: Path, cache, rows, lines) -> None:
    marker = tmp_path / "marker.jsonl"
    first = rows(build(tmp_path / "cache", marker).run())
    assert lines(marker) == ["load"]
    journal_before = cache(build(tmp_path / "cache", marker)).journal_path.read_bytes()

    again = build(tmp_path / "cache", marker)
    second = rows(again.run())

    assert first == second == _expected(range(7))
    assert lines(marker) == ["load"], "no step may be loaded when the pipeline is finished"
    assert cache(again).journal_path.read_bytes() == journal_before
    assert "already finished" in cache(again).log_text


def test_same_pipeline_object_run_twice_is_served_from_the_cache(tmp_path: Path, rows, lines) -> None:
    marker = tmp_path / "marker.jsonl"
    pipeline = build(tmp_path / "cache", marker)

    first, second = rows(pipeline.run()), rows(pipeline.run())

    assert first == second == _expected(range(7))
    assert lines(marker) == ["load"]


def test_use_cache_false_recomputes(tmp_path: Path, rows, lines) -> None:
    marker = tmp_path / "marker.jsonl"
    build(tmp_path / "cache", marker).run()

    result = rows(build(tmp_path / "cache", marker).run(use_cache=False))

    assert result == _expected(range(7))
    assert lines(marker) == ["load", "load"]


def test_changed_loader_data_gives_the_new_rows(tmp_path: Path, rows) -> None:
    marker = tmp_path / "marker.jsonl"
    old = build(tmp_path / "cache", marker)
    old.run()

    new = build(tmp_path / "cache", marker, data=[{"id": i} for i in range(10, 14)])
    result = rows(new.run())

    assert new.signature != old.signature
    assert result == _expected(range(10, 14))
    assert sorted(p.name for p in (tmp_path / "cache" / "reuse").iterdir()) == sorted([old.signature, new.signature])


def test_changed_middle_step_parameter_gives_the_new_rows(tmp_path: Path, rows, lines) -> None:
    marker = tmp_path / "marker.jsonl"
    pipeline = build(tmp_path / "cache", marker)
    pipeline.run()
    before = pipeline.signature

    result = rows(pipeline.run(parameters={"mark": {"factor": 3}}))

    assert pipeline.signature != before
    assert result == _expected(range(7), factor=3)
    assert lines(marker) == ["load", "load"]


def test_replicas_given_at_run_time_reuse_the_cache(tmp_path: Path, rows, lines) -> None:
    marker = tmp_path / "marker.jsonl"
    pipeline = build(tmp_path / "cache", marker)
    pipeline.run()
    before = pipeline.signature

    result = rows(pipeline.run(parameters={"mark": {"resources": {"replicas": 3}}}))

    assert pipeline.dag.step("mark").resources.replicas == 3
    assert pipeline.signature == before
    assert result == _expected(range(7))
    assert lines(marker) == ["load"]


def test_step_use_cache_false_recomputes_that_step_and_its_successors(tmp_path: Path, cache, rows, lines) -> None:
    # distilabel: "If the cache of one step is disabled [...] the outputs of the steps that
    # depend on this step will also be regenerated". use_cache is not part of the signature.
    marker = tmp_path / "marker.jsonl"
    build(tmp_path / "cache", marker).run()

    again = build(tmp_path / "cache", marker, use_cache=False)
    result = rows(again.run())

    assert result == _expected(range(7))
    assert lines(marker) == ["load", "load"], "the step with use_cache=False must run again"
    assert "Step 'gen': 0 batch(es)" in cache(again).log_text
    assert "Step 'label': 2 batch(es)" in cache(again).log_text


def test_create_distiset_reads_the_signature_folder_and_a_copy_of_it(tmp_path: Path, cache, rows) -> None:
    pipeline = build(tmp_path / "cache", tmp_path / "marker.jsonl")
    ran = rows(pipeline.run())
    folder = cache(pipeline).root
    copy = tmp_path / "elsewhere" / "copy"
    shutil.copytree(folder, copy)

    from_folder = create_distiset(folder)
    from_data_dir = create_distiset(folder / "data")
    from_copy = create_distiset(copy)

    assert rows(from_folder) == rows(from_data_dir) == rows(from_copy) == ran
    assert from_copy.pipeline_path == copy / "pipeline.yaml"
    assert from_copy.log_filename_path == copy / "pipeline.log"


def test_cache_dir_layout_is_name_then_signature(tmp_path: Path, cache) -> None:
    pipeline = build(tmp_path / "cache", tmp_path / "marker.jsonl")
    pipeline.run()

    assert cache(pipeline).root == tmp_path / "cache" / "reuse" / pipeline.signature
    files = cache(pipeline).files()
    leaf_files = [f for f in files if f.startswith("data/")]
    assert leaf_files[0] == "data/label/00001.parquet"  # the second batch may share its file (written at once)
    assert leaf_files in (["data/label/00001.parquet"], ["data/label/00001.parquet", "data/label/00002.parquet"])
    assert {"pipeline.yaml", "pipeline.log", "commits.jsonl", "batch_manager.json"} <= set(files)


def test_default_cache_dir_comes_from_the_environment(tmp_path: Path, monkeypatch, rows) -> None:
    monkeypatch.setenv("DISTIL_DAGSTER_CACHE_DIR", str(tmp_path / "from-env"))
    with Pipeline(name="env", seed=0) as pipeline:
        LoadDataFromDicts(name="gen", data=[{"id": 1}]) >> Label(name="label")

    assert rows(pipeline.run()) == [{"id": 1, "label": "L1"}]
    assert (tmp_path / "from-env" / "env" / pipeline.signature / "commits.jsonl").is_file()
