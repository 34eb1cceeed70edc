"""``dry_run()``: one batch of ``batch_size`` rows per leaf, in a throw-away cache; a later
``run()`` still produces the full dataset (distilabel 1.5.3 hangs there)."""

from __future__ import annotations

from pathlib import Path

from distil_dagster.pipeline import Pipeline
from distil_dagster.steps import LoadDataFromDicts, Step, StepInput
from distil_dagster.steps.typing import StepOutput


class Label(Step):
    """Writes ``<name>_label = <name><id>``."""

    @property
    def inputs(self) -> list[str]:
        return ["id"]

    @property
    def outputs(self) -> list[str]:
        return [f"{self.name}_label"]

    def process(self, inputs: StepInput) -> StepOutput:
        yield [{**row, f"{self.name}_label": f"{self.name}{row['id']}"} for row in inputs]


def build(cache_dir: Path) -> Pipeline:
    with Pipeline(name="dry", cache_dir=cache_dir, seed=0) as pipeline:
        gen = LoadDataFromDicts(name="gen", data=[{"id": i} for i in range(10)], batch_size=4)
        (
            gen
            >> Label(name="a", input_batch_size=5)
            >> [Label(name="b", input_batch_size=3), Label(name="c", input_batch_size=2)]
        )
    return pipeline


def test_dry_run_gives_one_row_per_leaf(tmp_path: Path, rows) -> None:
    distiset = build(tmp_path / "cache").dry_run()

    assert sorted(distiset) == ["b", "c"]
    assert rows(distiset, "b") == [{"id": 0, "a_label": "a0", "b_label": "b0"}]
    assert rows(distiset, "c") == [{"id": 0, "a_label": "a0", "c_label": "c0"}]


def test_dry_run_batch_size_sets_the_rows_per_leaf(tmp_path: Path, rows) -> None:
    distiset = build(tmp_path / "cache").dry_run(batch_size=3)

    assert [r["id"] for r in rows(distiset, "b")] == [0, 1, 2]
    assert [r["id"] for r in rows(distiset, "c")] == [0, 1, 2]


def test_dry_run_writes_nothing_to_the_cache_dir(tmp_path: Path) -> None:
    build(tmp_path / "cache").dry_run()

    assert not (tmp_path / "cache").exists() or list((tmp_path / "cache").rglob("*.parquet")) == []


def test_run_after_a_dry_run_gives_the_full_dataset(tmp_path: Path, cache, rows) -> None:
    pipeline = build(tmp_path / "cache")
    signature = pipeline.signature
    pipeline.dry_run(batch_size=2)

    distiset = pipeline.run()

    assert pipeline.signature == signature
    assert pipeline.dag.step("gen").batch_size == 4
    assert [r["id"] for r in rows(distiset, "b")] == list(range(10))
    assert [r["id"] for r in rows(distiset, "c")] == list(range(10))
    assert cache(pipeline).batch_sizes("gen") == [4, 4, 2]


def test_single_leaf_dry_run_is_the_default_config(tmp_path: Path, rows) -> None:
    with Pipeline(name="dry-single", cache_dir=tmp_path, seed=0) as pipeline:
        LoadDataFromDicts(name="gen", data=[{"id": i} for i in range(5)], batch_size=5) >> Label(name="only")

    assert rows(pipeline.dry_run()) == [{"id": 0, "only_label": "only0"}]
    assert [r["id"] for r in rows(pipeline.run())] == [0, 1, 2, 3, 4]
