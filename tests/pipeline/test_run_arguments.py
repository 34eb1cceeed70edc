"""``Pipeline.run`` arguments from distilabel: ``dataset`` (a generator over the rows, for that run
only), ``logging_handlers``, ``use_fs_to_pass_data``, ``storage_parameters``."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from datasets import Dataset

from distil_dagster.errors import PipelineValidationError
from distil_dagster.pipeline import Pipeline
from distil_dagster.steps import LoadDataFromDicts, StepInput, step
from distil_dagster.steps.typing import StepOutput


@step(inputs=["text"], outputs=["upper"])
def Upper(inputs: StepInput) -> StepOutput:
    """``upper = text.upper()``."""
    yield [{**row, "upper": row["text"].upper()} for row in inputs]


@step(inputs=["text"], outputs=["length"])
def Length(inputs: StepInput) -> StepOutput:
    """``length = len(text)``."""
    yield [{**row, "length": len(row["text"])} for row in inputs]


def build(cache_dir: Path) -> Pipeline:
    with Pipeline(name="with-dataset", cache_dir=cache_dir) as pipeline:
        Upper(name="upper")
        Length(name="length")
    return pipeline


TEXTS = ["a", "bb", "ccc", "dddd", "eeeee"]


def test_rows_of_a_list_feed_every_root_step(tmp_path: Path, executor: str, rows) -> None:
    pipeline = build(tmp_path)

    distiset = pipeline.run(executor=executor, dataset=[{"text": t} for t in TEXTS], dataset_batch_size=2)

    assert sorted(distiset) == ["length", "upper"]
    assert rows(distiset, "upper") == [{"text": t, "upper": t.upper()} for t in TEXTS]
    assert rows(distiset, "length") == [{"text": t, "length": len(t)} for t in TEXTS]
    assert pipeline.dag.names == ["upper", "length"]  # the pipeline is left as it was


def test_a_dataset_runs_again_from_the_cache_and_other_rows_do_not(tmp_path: Path, rows) -> None:
    pipeline = build(tmp_path)
    dataset = Dataset.from_dict({"text": TEXTS})

    first = pipeline.run(executor="inline", dataset=dataset)
    journal = Path(first.pipeline_path).with_name("commits.jsonl")
    committed = journal.read_text()
    again = pipeline.run(executor="inline", dataset=Dataset.from_dict({"text": TEXTS}))
    other = pipeline.run(executor="inline", dataset=Dataset.from_dict({"text": ["zz"]}))

    assert again.pipeline_path == first.pipeline_path and journal.read_text() == committed
    assert rows(again, "upper") == rows(first, "upper") == [{"text": t, "upper": t.upper()} for t in TEXTS]
    assert other.pipeline_path != first.pipeline_path
    assert rows(other, "upper") == [{"text": "zz", "upper": "ZZ"}]


def test_a_pipeline_with_a_generator_refuses_a_dataset(tmp_path: Path) -> None:
    with Pipeline(name="has-generator", cache_dir=tmp_path) as pipeline:
        LoadDataFromDicts(name="gen", data=[{"text": "x"}]) >> Upper(name="upper")

    with pytest.raises(PipelineValidationError, match="root step 'gen' is a generator already"):
        pipeline.run(executor="inline", dataset=[{"text": "y"}])
    assert pipeline.dag.names == ["gen", "upper"]


def test_logging_handlers_get_the_run_log_and_fs_arguments_are_handled(tmp_path: Path, executor: str) -> None:
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    pipeline = build(tmp_path)

    pipeline.run(executor=executor, dataset=[{"text": "x"}], logging_handlers=[handler], use_fs_to_pass_data=True)

    messages = [record.getMessage() for record in records]
    assert "Step 'upper' loaded (replica 0)." in messages
    assert any(m.startswith("Pipeline 'with-dataset' finished") for m in messages)
    assert handler not in logging.getLogger("distil_dagster").handlers
    with pytest.raises(PipelineValidationError, match="is not supported: batches travel through the cache folder"):
        pipeline.run(executor=executor, dataset=[{"text": "x"}], storage_parameters={"path": "s3://bucket"})


def test_run_and_dry_run_take_distilabels_arguments_in_its_order() -> None:
    import inspect

    run = list(inspect.signature(Pipeline.run).parameters)
    assert run[:9] == [
        "self",
        "parameters",
        "load_groups",
        "use_cache",
        "storage_parameters",
        "use_fs_to_pass_data",
        "dataset",
        "dataset_batch_size",
        "logging_handlers",
    ]
    assert all(p.kind is p.KEYWORD_ONLY for p in list(inspect.signature(Pipeline.run).parameters.values())[9:])
    assert list(inspect.signature(Pipeline.dry_run).parameters) == ["self", "parameters", "batch_size", "dataset"]


def test_dry_run_with_a_dataset_gives_one_batch_and_leaves_the_pipeline_alone(tmp_path: Path, rows) -> None:
    pipeline = build(tmp_path)

    distiset = pipeline.dry_run(dataset=[{"text": t} for t in TEXTS], batch_size=2)

    assert rows(distiset, "upper") == [{"text": t, "upper": t.upper()} for t in TEXTS[:2]]
    assert pipeline.dag.names == ["upper", "length"]
    assert not (tmp_path / "with-dataset").exists()  # a throw-away cache
