"""``Distiset`` and ``create_distiset``: configs per leaf, metadata column, disk round trip,
schemas unified across batches."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from distil_dagster.distiset import Distiset, create_distiset
from distil_dagster.errors import DistisetError
from distil_dagster.pipeline import Pipeline
from distil_dagster.steps import LoadDataFromDicts, Step, StepInput
from distil_dagster.steps.typing import StepOutput


class Note(Step):
    """Writes ``note``: ``None`` for the batch holding id ``none_id``, ``"n<id>"`` otherwise;
    and ``distilabel_metadata = {"note_step": id}``."""

    none_id: int = 0

    @property
    def inputs(self) -> list[str]:
        return ["id"]

    @property
    def outputs(self) -> list[str]:
        return ["note"]

    def process(self, inputs: StepInput) -> StepOutput:
        empty = any(row["id"] == self.none_id for row in inputs)
        yield [
            {**row, "note": None if empty else f"n{row['id']}", "distilabel_metadata": {"note_step": row["id"]}}
            for row in inputs
        ]


def build(cache_dir: Path, enable_metadata: bool = False, none_id: int = 0, leaves: int = 1) -> Pipeline:
    with Pipeline(name="distiset", cache_dir=cache_dir, enable_metadata=enable_metadata, seed=0) as pipeline:
        gen = LoadDataFromDicts(name="gen", data=[{"id": i} for i in range(6)], batch_size=3)
        gen >> [Note(name=f"leaf{i}", none_id=none_id, input_batch_size=3) for i in range(leaves)]
    return pipeline


def _notes(none_batch: range) -> list[str | None]:
    return [None if i in none_batch else f"n{i}" for i in range(6)]


def test_single_leaf_is_the_default_config_with_a_train_split(tmp_path: Path) -> None:
    distiset = build(tmp_path).run()

    assert isinstance(distiset, Distiset)
    assert list(distiset) == ["default"]
    assert list(distiset["default"]) == ["train"]
    assert distiset["default"]["train"].num_rows == 6


def test_several_leaves_give_one_config_per_leaf_name(tmp_path: Path) -> None:
    distiset = build(tmp_path, leaves=2).run()

    assert sorted(distiset) == ["leaf0", "leaf1"]


class DropAll(Step):
    """A leaf whose every batch comes out empty."""

    @property
    def inputs(self) -> list[str]:
        return ["id"]

    def process(self, inputs: StepInput) -> StepOutput:
        yield []


def test_a_leaf_that_produced_no_rows_is_left_out_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with Pipeline(name="empty-leaf", cache_dir=tmp_path, seed=0) as pipeline:
        gen = LoadDataFromDicts(name="gen", data=[{"id": i} for i in range(6)], batch_size=3)
        gen >> [Note(name="kept", input_batch_size=3), DropAll(name="dropped", input_batch_size=3)]

    distiset = pipeline.run()

    assert list(distiset) == ["default"] and distiset["default"]["train"].num_rows == 6
    assert "Leaf step 'dropped' produced no rows; it is left out of the Distiset." in caplog.text


def test_metadata_column_is_dropped_unless_enabled(tmp_path: Path, cache, rows) -> None:
    dropped = build(tmp_path).run()
    kept = build(tmp_path, enable_metadata=True).run()

    assert "distilabel_metadata" not in dropped["default"]["train"].column_names
    assert [r["distilabel_metadata"] for r in rows(kept)] == [{"note_step": i} for i in range(6)]
    folder = cache(build(tmp_path)).root
    assert "distilabel_metadata" in create_distiset(folder, enable_metadata=True)["default"]["train"].column_names
    assert "distilabel_metadata" not in create_distiset(folder)["default"]["train"].column_names


def test_column_none_in_the_first_batch_and_str_in_the_next_loads(tmp_path: Path, rows) -> None:
    distiset = build(tmp_path, none_id=0).run()

    assert [r["note"] for r in rows(distiset)] == _notes(range(0, 3))
    assert distiset["default"]["train"].features["note"].dtype == "string"


def test_column_str_in_the_first_batch_and_none_in_the_next_loads(tmp_path: Path, rows) -> None:
    distiset = build(tmp_path, none_id=5).run()

    assert [r["note"] for r in rows(distiset)] == _notes(range(3, 6))


def test_save_to_disk_and_load_from_disk_round_trip(tmp_path: Path, rows) -> None:
    distiset = build(tmp_path / "cache", leaves=2).run()
    target = tmp_path / "saved"

    distiset.save_to_disk(target)
    loaded = Distiset.load_from_disk(target)

    assert isinstance(loaded, Distiset)
    assert sorted(loaded) == ["leaf0", "leaf1"]
    for name in ("leaf0", "leaf1"):
        assert list(loaded[name]) == ["train"]
        assert rows(loaded, name) == rows(distiset, name)
    configs = target / "distiset_configs"
    assert sorted(p.name for p in configs.iterdir()) == ["README.md", "pipeline.log", "pipeline.yaml"]
    assert loaded.pipeline_path == configs / "pipeline.yaml"
    assert loaded.log_filename_path == configs / "pipeline.log"
    assert (configs / "pipeline.yaml").read_text() == Path(distiset.pipeline_path).read_text()


def test_the_saved_card_names_the_steps_and_shows_a_row_per_config(tmp_path: Path) -> None:
    distiset = build(tmp_path / "cache", leaves=2).run()
    distiset.save_to_disk(tmp_path / "saved", save_pipeline_log=False)

    card = (tmp_path / "saved" / "distiset_configs" / "README.md").read_text()
    header = yaml.safe_load(card.split("---")[1])

    assert header["size_categories"] == "n<1K"
    assert "synthetic" in header["tags"]
    assert "`gen` (LoadDataFromDicts)" in card and "`leaf1` (Note)" in card
    assert 'load_dataset("saved", "leaf0")' in card and '"id": 0,\n  "note": null' in card
    assert not (tmp_path / "saved" / "distiset_configs" / "pipeline.log").exists()


def test_load_from_disk_reads_the_earlier_layout_with_pipeline_files_at_the_top(tmp_path: Path) -> None:
    distiset = build(tmp_path / "cache").run()
    target = tmp_path / "saved"
    distiset.save_to_disk(target, save_card=False)
    for path in (target / "distiset_configs").iterdir():
        path.rename(target / path.name)
    (target / "distiset_configs").rmdir()

    loaded = Distiset.load_from_disk(target)

    assert list(loaded) == ["default"]
    assert loaded.pipeline_path == target / "pipeline.yaml"
    assert loaded.log_filename_path == target / "pipeline.log"


def test_save_to_and_load_from_an_fsspec_url(tmp_path: Path, rows) -> None:
    distiset = build(tmp_path / "cache").run()

    distiset.save_to_disk("memory://distiset-test")
    loaded = Distiset.load_from_disk("memory://distiset-test", download_dir=tmp_path / "download")

    assert rows(loaded, "default") == rows(distiset, "default")
    assert loaded.pipeline_path == tmp_path / "download" / "distiset_configs" / "pipeline.yaml"
    assert loaded.pipeline_path.read_text() == Path(distiset.pipeline_path).read_text()


def test_load_from_disk_of_a_missing_folder_names_it(tmp_path: Path) -> None:
    with pytest.raises(DistisetError, match="nowhere"):
        Distiset.load_from_disk(tmp_path / "nowhere")


def test_distiset_from_a_run_knows_its_pipeline_yaml_and_log(tmp_path: Path, cache) -> None:
    pipeline = build(tmp_path)
    distiset = pipeline.run()

    assert distiset.pipeline_path == cache(pipeline).root / "pipeline.yaml"
    assert distiset.log_filename_path == cache(pipeline).root / "pipeline.log"


def test_train_test_split_splits_every_config(tmp_path: Path) -> None:
    distiset = build(tmp_path, leaves=2).run()

    split = distiset.train_test_split(train_size=0.5, seed=0)

    for name in ("leaf0", "leaf1"):
        assert sorted(split[name]) == ["test", "train"]
        assert split[name]["train"].num_rows == 3 and split[name]["test"].num_rows == 3


def test_datasets_are_memory_mapped_from_one_arrow_file_per_leaf(tmp_path: Path, cache, rows) -> None:
    pipeline = build(tmp_path, leaves=2)
    distiset = pipeline.run()
    folder = cache(pipeline).root / "arrow"

    for name in ("leaf0", "leaf1"):
        files = [Path(f["filename"]) for f in distiset[name]["train"].cache_files]
        assert len(files) == 1 and files[0].parent == folder and files[0].name.startswith(f"{name}.")
    in_memory = create_distiset(cache(pipeline).root, keep_in_memory=True)
    assert in_memory["leaf0"]["train"].cache_files == []
    assert rows(in_memory, "leaf0") == rows(distiset, "leaf0")


def test_a_recomputed_leaf_replaces_its_arrow_file(tmp_path: Path, cache) -> None:
    pipeline = build(tmp_path)
    pipeline.run()
    folder = cache(pipeline).root / "arrow"
    first = sorted(folder.iterdir())

    pipeline.run(use_cache=False)  # batch files rewritten (same names and sizes): a new file replaces the old

    second = sorted(folder.iterdir())
    assert len(first) == 1 and len(second) == 1 and second != first
    with_metadata = create_distiset(cache(pipeline).root, enable_metadata=True)
    assert [Path(f["filename"]).name for f in with_metadata["default"]["train"].cache_files] != [first[0].name]


def test_where_the_arrow_file_cannot_be_written_the_dataset_is_built_in_memory(
    tmp_path: Path, cache, rows, monkeypatch
) -> None:
    from distil_dagster import distiset as distiset_module

    pipeline = build(tmp_path, none_id=5)
    expected = rows(pipeline.run())

    def refuse(*args: object) -> Path:
        raise PermissionError("read-only cache folder")

    monkeypatch.setattr(distiset_module, "leaf_arrow_file", refuse)
    built = create_distiset(cache(pipeline).root)

    assert built["default"]["train"].cache_files == []
    assert rows(built) == expected


class Summarize(Step):
    """Passes rows on; saves the artifact ``summary`` (``ids.txt``: the ids of its last batch)."""

    @property
    def inputs(self) -> list[str]:
        return ["id"]

    def process(self, inputs: StepInput) -> StepOutput:
        ids = " ".join(str(row["id"]) for row in inputs)
        self.save_artifact("summary", lambda folder: (folder / "ids.txt").write_text(ids), {"kind": "ids"})
        yield inputs


def test_artifacts_travel_with_the_distiset(tmp_path: Path, executor: str) -> None:
    with Pipeline(name="artifacts", cache_dir=tmp_path / "cache") as pipeline:
        LoadDataFromDicts(name="gen", data=[{"id": i} for i in range(4)], batch_size=4) >> Summarize(name="sum")

    distiset = pipeline.run(executor=executor)

    artifact = Path(distiset.pipeline_path).parent / "artifacts" / "sum" / "summary"
    assert distiset.artifacts_path == artifact.parent.parent
    assert (artifact / "ids.txt").read_text() == "0 1 2 3"
    assert json.loads((artifact / "metadata.json").read_text()) == {"kind": "ids"}
    distiset.save_to_disk(tmp_path / "saved")
    saved = tmp_path / "saved" / "artifacts" / "sum" / "summary"
    assert (saved / "ids.txt").read_text() == "0 1 2 3"
    assert (
        "- `artifacts/sum/summary` (step `sum`)" in (tmp_path / "saved" / "distiset_configs" / "README.md").read_text()
    )
    assert Distiset.load_from_disk(tmp_path / "saved").artifacts_path == tmp_path / "saved" / "artifacts"


def test_save_artifact_outside_a_run_only_warns_and_refuses_unsafe_names(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with Pipeline(name="artifacts"):
        step = Summarize(name="sum")
    step.save_artifact("summary", lambda folder: (folder / "x").write_text("x"))
    assert "Step 'sum': no artifacts directory (not in a run); artifact 'summary' not saved." in caplog.text

    step.set_artifacts_directory(tmp_path / "sum")
    with pytest.raises(ValueError, match=r"Step 'sum': artifact name '\.\./up' is not a safe folder name"):
        step.save_artifact("../up", lambda folder: None)
    assert not list(tmp_path.iterdir())
