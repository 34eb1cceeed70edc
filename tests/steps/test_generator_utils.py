"""``make_generator_step`` and ``DataSampler``.

``make_generator_step`` turns a list of rows, a ``datasets.Dataset`` or a ``pandas.DataFrame``
into a generator step that runs in every executor (the processes executor pickles it to its
worker), joins the enclosing pipeline, has a signature following the data's values, and resumes
from the cache. ``DataSampler`` draws ``samples`` rows of ``size`` draws each, the same draws in
every run, process and resume, and other draws for another seed.
"""

from __future__ import annotations

import json
import pickle
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from datasets import Dataset, concatenate_datasets

from distil_dagster.pipeline import Pipeline
from distil_dagster.steps.generators.data import LoadDataFromDicts
from distil_dagster.steps.generators.in_memory import LoadDataFromDataset
from distil_dagster.steps.generators.sampler import DataSampler
from distil_dagster.steps.generators.utils import make_generator_step
from distil_dagster.steps.resources import StepResources
from tests.engine.test_failures import CallLog

ROWS = [{"id": i, "text": f"row {i}", "tags": [f"t{j}" for j in range(i % 3)]} for i in range(10)]
KINDS: dict[str, Callable[[list[dict[str, Any]]], Any]] = {
    "list": list,
    "dataset": Dataset.from_list,
    "dataframe": pd.DataFrame,
}
EXAMPLES = [{"question": f"q{i}", "answer": i * 10} for i in range(8)]


def loader_pipeline(cache_dir: Path, data: Any, log: Path) -> Pipeline:
    """``make_generator_step(data)`` (4 rows a batch) >> ``CallLog``."""
    with Pipeline(name="made", cache_dir=cache_dir) as pipeline:
        make_generator_step(data, batch_size=4) >> CallLog(name="record", log_path=str(log), input_batch_size=4)
    return pipeline


def generator(pipeline: Pipeline) -> str:
    """The name of the pipeline's generator step."""
    return next(name for name in pipeline.dag.names if pipeline.dag.step(name).is_generator)


def signature_of(data: Any) -> str:
    with Pipeline(name="signature") as pipeline:
        make_generator_step(data)
    return pipeline.signature


# -- make_generator_step --------------------------------------------------------------------------
@pytest.mark.parametrize("kind", list(KINDS))
def test_each_kind_of_data_yields_its_rows_in_batches(tmp_path: Path, executor: str, kind: str, cache, rows) -> None:
    pipeline = loader_pipeline(tmp_path / "cache", KINDS[kind](ROWS), tmp_path / "calls.jsonl")

    result = rows(pipeline.run(executor=executor))

    assert result == ROWS
    assert cache(pipeline).batch_sizes(generator(pipeline)) == [4, 4, 2]
    step = pipeline.dag.step(generator(pipeline))
    assert type(step) is (LoadDataFromDicts if kind == "list" else LoadDataFromDataset)
    assert step.outputs == ["id", "text", "tags"] and step.total_rows() == 10


def test_the_step_joins_the_enclosing_or_the_given_pipeline_with_distilabels_name() -> None:
    with Pipeline(name="outer") as outer:
        first = make_generator_step(Dataset.from_list(ROWS))
        second = make_generator_step(pd.DataFrame(ROWS))
        rows = make_generator_step(ROWS)
    given = Pipeline(name="given")
    elsewhere = make_generator_step(Dataset.from_list(ROWS), pipeline=given)
    alone = make_generator_step(Dataset.from_list(ROWS))

    assert [first.name, second.name, rows.name] == [
        "load_data_from_hub_0",
        "load_data_from_hub_1",
        "load_data_from_dicts_0",
    ]
    assert outer.dag.names == [first.name, second.name, rows.name]
    assert given.dag.names == ["load_data_from_hub_0"] and elsewhere.pipeline is given
    assert alone.pipeline is None and alone.name == "load_data_from_hub_0"


def test_mappings_batch_size_and_resources_are_passed_on(tmp_path: Path, rows) -> None:
    with Pipeline(name="mapped", cache_dir=tmp_path / "cache") as pipeline:
        load = make_generator_step(
            pd.DataFrame(ROWS), batch_size=3, output_mappings={"text": "prompt"}, resources=StepResources(cpus=2)
        )
    unrun = make_generator_step(Dataset.from_list(ROWS), input_mappings={"id": "key"})

    result = rows(pipeline.run(executor="inline"))

    assert result == [{"id": r["id"], "prompt": r["text"], "tags": r["tags"]} for r in ROWS]
    assert load.batch_size == 3 and load.resources.cpus == 2
    assert unrun.input_mappings == {"id": "key"} and unrun.output_mappings == {}


def test_other_types_are_refused_naming_the_type() -> None:
    with pytest.raises(ValueError, match=r"cannot make a generator step from a builtins\.dict; pass a list of dicts"):
        make_generator_step({"id": [1, 2]})


def test_the_signature_follows_the_values_of_the_data() -> None:
    changed = [dict(row) for row in ROWS]
    changed[7]["text"] = "row 7!"

    for kind, make in KINDS.items():
        assert signature_of(make(ROWS)) == signature_of(make([dict(r) for r in ROWS])), kind  # built anew
        assert signature_of(make(ROWS)) != signature_of(make(changed)), kind
    dataset = Dataset.from_list(ROWS)
    assert signature_of(dataset) != signature_of(dataset.select([1, 0, *range(2, 10)]))  # order counts
    assert signature_of(dataset) != signature_of(dataset.select(range(9)))


def test_equal_data_in_other_chunks_and_through_an_index_mapping_has_one_signature() -> None:
    whole = Dataset.from_list(ROWS)
    rechunked = concatenate_datasets([Dataset.from_list(ROWS[:3]), Dataset.from_list(ROWS[3:])])
    mapped = Dataset.from_list(list(reversed(ROWS))).select(range(9, -1, -1))

    assert signature_of(rechunked) == signature_of(whole)
    assert signature_of(mapped) == signature_of(whole)


def test_the_pickled_step_keeps_its_rows_and_signature() -> None:
    step = make_generator_step(pd.DataFrame(ROWS), batch_size=4)
    copy = pickle.loads(pickle.dumps(step))

    assert [row for batch, _ in copy.process(0) for row in batch] == ROWS
    assert copy.signature_extra() == step.signature_extra()


@pytest.mark.parametrize("kind", ["dataset", "dataframe"])
def test_a_second_run_is_served_from_the_cache(tmp_path: Path, executor: str, kind: str, cache, rows, lines) -> None:
    log = tmp_path / "calls.jsonl"
    first = rows(loader_pipeline(tmp_path / "cache", KINDS[kind](ROWS), log).run(executor=executor))
    calls = lines(log)
    again = loader_pipeline(tmp_path / "cache", KINDS[kind](ROWS), log)

    second = rows(again.run(executor=executor))

    assert first == second == ROWS
    assert calls == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert lines(log) == calls, "nothing may be recomputed"
    assert "already finished" in cache(again).log_text


def test_an_interrupted_run_resumes_from_the_generators_row_offset(tmp_path: Path, cache, rows, lines) -> None:
    log = tmp_path / "calls.jsonl"
    pipeline = loader_pipeline(tmp_path / "cache", Dataset.from_list(ROWS), log)
    pipeline.run(executor="inline")
    folder = cache(pipeline)
    journal = folder.journal()
    first_load_batch = next(i for i, r in enumerate(journal) if r["step"] == generator(pipeline))
    folder.keep_journal_lines(first_load_batch + 1)  # only the first 4 rows were committed
    calls = len(lines(log))

    resumed = rows(loader_pipeline(tmp_path / "cache", Dataset.from_list(ROWS), log).run(executor="processes"))

    assert resumed == ROWS
    assert lines(log)[calls:] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]  # no batch of `record` was committed
    computed = rf"Step '{generator(pipeline)}': 2 batch\(es\), 6 row\(s\) computed; 1 batch\(es\) reused"
    assert re.search(computed, folder.log_text), "the generator continues at row 4"
    assert sorted((r["step"], r["seq"]) for r in folder.journal()) == sorted((r["step"], r["seq"]) for r in journal)


# -- DataSampler ----------------------------------------------------------------------------------
def sampler_pipeline(cache_dir: Path, **fields: Any) -> Pipeline:
    with Pipeline(name="sampled", cache_dir=cache_dir) as pipeline:
        DataSampler(name="sample", **{"data": EXAMPLES, "size": 3, "samples": 10, "batch_size": 4, **fields})
    return pipeline


def test_sampler_yields_samples_rows_of_size_draws(tmp_path: Path, executor: str, cache, rows) -> None:
    pipeline = sampler_pipeline(tmp_path / "cache")

    result = rows(pipeline.run(executor=executor))

    assert len(result) == 10
    assert cache(pipeline).batch_sizes("sample") == [4, 4, 2]
    for row in result:
        assert list(row) == ["question", "answer"]
        drawn = [{"question": q, "answer": a} for q, a in zip(row["question"], row["answer"], strict=True)]
        assert len(drawn) == 3 and all(example in EXAMPLES for example in drawn), row  # drawn as whole rows
    assert len({json.dumps(row) for row in result}) > 1


def test_sampler_of_one_row_repeats_it() -> None:
    sampler = DataSampler(data=[{"a": 1, "b": "x"}], size=4, samples=3, batch_size=2)

    assert list(sampler.process()) == [
        ([{"a": [1] * 4, "b": ["x"] * 4}] * 2, False),
        ([{"a": [1] * 4, "b": ["x"] * 4}], True),
    ]


def test_sampler_draws_are_the_same_in_every_process_and_run(tmp_path: Path, rows) -> None:
    inline = rows(sampler_pipeline(tmp_path / "a").run(executor="inline"))
    processes = rows(sampler_pipeline(tmp_path / "b").run(executor="processes"))
    again = rows(sampler_pipeline(tmp_path / "a").run(executor="processes"))  # served from the cache

    assert inline == processes == again


def test_sampler_resumed_at_any_offset_continues_the_same_draws() -> None:
    sampler = DataSampler(data=EXAMPLES, size=2, samples=9, batch_size=4)
    full = [row for batch, _ in sampler.process(0) for row in batch]

    for offset in range(10):
        resumed = list(sampler.process(offset))
        assert [row for batch, _ in resumed for row in batch] == full[offset:], offset
        assert resumed[-1][1] and not any(last for _, last in resumed[:-1])


def test_an_interrupted_sampler_run_resumes_with_the_same_rows(tmp_path: Path, cache, rows) -> None:
    reference = rows(sampler_pipeline(tmp_path / "reference").run(executor="inline"))
    pipeline = sampler_pipeline(tmp_path / "cache")
    pipeline.run(executor="inline")
    cache(pipeline).keep_journal_lines(1)  # the first batch of 4 rows

    assert rows(sampler_pipeline(tmp_path / "cache").run(executor="processes")) == reference
    assert cache(pipeline).batch_sizes("sample") == [4, 4, 2]
    assert re.search(
        r"Step 'sample': 2 batch\(es\), 6 row\(s\) computed; 1 batch\(es\) reused", cache(pipeline).log_text
    )


def test_another_seed_draws_other_rows_and_has_another_signature(tmp_path: Path) -> None:
    def draws(seed: int) -> list[dict[str, Any]]:
        sampler = DataSampler(data=EXAMPLES, size=2, samples=20, seed=seed)
        return [row for batch, _ in sampler.process() for row in batch]

    assert draws(0) == draws(0) and draws(0) != draws(1)  # equal by chance: 64**-20
    assert sampler_pipeline(tmp_path).signature != sampler_pipeline(tmp_path, seed=1).signature


def test_sampler_without_data_is_refused_and_zero_samples_yield_no_rows() -> None:
    with pytest.raises(ValueError, match=r"Step 'few_shot': `data` is empty; give at least one row"):
        DataSampler(name="few_shot", data=[])

    empty = DataSampler(data=[], samples=0)
    assert list(empty.process()) == [([], True)] and empty.outputs == [] and empty.total_rows() == 0
