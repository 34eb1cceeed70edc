"""Failures: imputation of a failing normal step, retries, global step errors, load errors.

distilabel 1.5.3 semantics: a non-global step that raises has the batch's rows forwarded with its
output columns set to ``None`` (successors run normally); we retry first (``step_retries``) and
record the error in ``distilabel_metadata`` under ``error_<step>``. A global step that raises
stops the run, keeping what was committed. A ``load()`` failure stops the run before data flows.
Attempts and calls are counted in files given to the steps as fields.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from distil_dagster.engine.config import EngineConfig
from distil_dagster.errors import (
    GeneratorStepError,
    GlobalStepError,
    RemoteTraceback,
    StepExecutionError,
    StepLoadError,
    StepOutputError,
)
from distil_dagster.pipeline import Pipeline
from distil_dagster.steps import GeneratorStep, GlobalStep, KeepColumns, LoadDataFromDicts, Step, StepInput
from distil_dagster.steps.typing import GeneratorStepOutput, StepOutput


class FlakyOnId(Step):
    """Raises ``ValueError`` on the first ``failing_attempts`` attempts of the batch holding ``fail_id``.

    Every attempt of every batch is counted in ``<attempts_dir>/<first id of the batch>``.
    """

    attempts_dir: str
    fail_id: int
    failing_attempts: int = 1_000

    @property
    def inputs(self) -> list[str]:
        return ["id"]

    @property
    def outputs(self) -> list[str]:
        return ["out"]

    def process(self, inputs: StepInput) -> StepOutput:
        counter = Path(self.attempts_dir) / str(inputs[0]["id"])
        attempt = int(counter.read_text()) + 1 if counter.exists() else 1
        counter.write_text(str(attempt))
        if any(row["id"] == self.fail_id for row in inputs) and attempt <= self.failing_attempts:
            raise ValueError(f"cannot handle id {self.fail_id}")
        yield [{**row, "out": f"ok-{row['id']}"} for row in inputs]


class BatchLen(Step):
    """Adds ``<name>_len``: the rows of the batch it received."""

    @property
    def inputs(self) -> list[str]:
        return ["id"]

    @property
    def outputs(self) -> list[str]:
        return [f"{self.name}_len"]

    def process(self, inputs: StepInput) -> StepOutput:
        yield [{**row, f"{self.name}_len": len(inputs)} for row in inputs]


class SeesOut(Step):
    """Adds ``after_len`` (rows received) and ``saw_out``: whether ``out`` was a key of the row."""

    @property
    def inputs(self) -> list[str]:
        return ["out"]

    @property
    def outputs(self) -> list[str]:
        return ["after_len", "saw_out"]

    def process(self, inputs: StepInput) -> StepOutput:
        yield [{**row, "after_len": len(inputs), "saw_out": "out" in row} for row in inputs]


class CallLog(Step):
    """Appends the ids of every batch it processes to ``log_path``."""

    log_path: str

    @property
    def inputs(self) -> list[str]:
        return ["id"]

    def process(self, inputs: StepInput) -> StepOutput:
        with open(self.log_path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps([row["id"] for row in inputs]) + "\n")
        yield inputs


class GlobalFailsWhileFlag(GlobalStep):
    """Raises while the file ``fail_flag`` exists; otherwise adds ``total`` (rows received)."""

    fail_flag: str

    @property
    def inputs(self) -> list[str]:
        return ["id"]

    @property
    def outputs(self) -> list[str]:
        return ["total"]

    def process(self, inputs: StepInput) -> StepOutput:
        if Path(self.fail_flag).exists():
            raise ValueError("global step cannot proceed")
        yield [{**row, "total": len(inputs)} for row in inputs]


class BrokenSource(GeneratorStep):
    """Yields ``{"id": i}`` in batches; raises ``OSError`` when it reaches ``fail_at``."""

    fail_at: int

    @property
    def outputs(self) -> list[str]:
        return ["id"]

    def process(self, offset: int = 0) -> GeneratorStepOutput:
        for start in range(offset, 20, self.batch_size):
            if start >= self.fail_at:
                raise OSError("source went away")
            yield [{"id": i} for i in range(start, start + self.batch_size)], start + self.batch_size >= 20


class MixedTypes(Step):
    """Writes ``value``: an int for even ids, a str for odd ids (not storable as one column)."""

    @property
    def inputs(self) -> list[str]:
        return ["id"]

    @property
    def outputs(self) -> list[str]:
        return ["value"]

    def process(self, inputs: StepInput) -> StepOutput:
        yield [{**row, "value": row["id"] if row["id"] % 2 == 0 else str(row["id"])} for row in inputs]


class TypeChangesAt(Step):
    """Writes ``value``: the id (an int) in batches before the one holding ``at``, a str from it on."""

    at: int = 0

    @property
    def inputs(self) -> list[str]:
        return ["id"]

    @property
    def outputs(self) -> list[str]:
        return ["value"]

    def process(self, inputs: StepInput) -> StepOutput:
        late = any(row["id"] >= self.at for row in inputs)
        yield [{**row, "value": str(row["id"]) if late else row["id"]} for row in inputs]


class LoadFails(Step):
    """A step whose ``load()`` raises (e.g. missing model weights)."""

    @property
    def inputs(self) -> list[str]:
        return ["id"]

    def load(self) -> None:
        super().load()
        raise RuntimeError("model weights are missing")

    def process(self, inputs: StepInput) -> StepOutput:
        yield inputs


class LifecycleLog(Step):
    """Appends ``load``/``unload`` to ``events_path``."""

    events_path: str

    @property
    def inputs(self) -> list[str]:
        return ["id"]

    def load(self) -> None:
        super().load()
        with open(self.events_path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps("load") + "\n")

    def unload(self) -> None:
        with open(self.events_path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps("unload") + "\n")
        super().unload()

    def process(self, inputs: StepInput) -> StepOutput:
        yield inputs


def _assert_caused_by(error: BaseException, kind: str, message: str) -> None:
    """The step's original exception is chained as ``__cause__``.

    Inline, the cause is the step's exception itself. From a worker process it is a
    ``RemoteTraceback`` whose text holds the original ``Type: message`` line.
    """
    cause = error.__cause__
    assert cause is not None, "the original error must be chained as __cause__"
    if isinstance(cause, RemoteTraceback):
        assert f"{kind}: {message}" in cause.text.splitlines(), cause.text
    else:
        assert (type(cause).__name__, str(cause)) == (kind, message)


def _ids(n: int) -> list[dict[str, int]]:
    return [{"id": i} for i in range(n)]


def _flaky_pipeline(tmp_path: Path, failing_attempts: int, enable_metadata: bool = False) -> Pipeline:
    attempts = tmp_path / "attempts"
    attempts.mkdir()
    with Pipeline(name="flaky", cache_dir=tmp_path / "cache", enable_metadata=enable_metadata, seed=0) as pipeline:
        gen = LoadDataFromDicts(name="gen", data=_ids(20), batch_size=5)
        flaky = FlakyOnId(
            name="flaky", attempts_dir=str(attempts), fail_id=12, failing_attempts=failing_attempts, input_batch_size=5
        )
        gen >> flaky >> SeesOut(name="after", input_batch_size=10)
    return pipeline


def _attempts(tmp_path: Path) -> dict[int, int]:
    return {int(p.name): int(p.read_text()) for p in (tmp_path / "attempts").iterdir()}


def test_failing_batch_keeps_its_rows_with_the_step_outputs_set_to_none(
    tmp_path: Path, executor: str, cache, rows
) -> None:
    pipeline = _flaky_pipeline(tmp_path, failing_attempts=1_000)

    result = rows(pipeline.run(executor=executor, config=EngineConfig(step_retries=0)))

    assert [r["id"] for r in result] == list(range(20))
    assert [r["out"] for r in result] == [None if 10 <= i < 15 else f"ok-{i}" for i in range(20)]
    assert [r["after_len"] for r in result] == [10] * 20
    assert [r["saw_out"] for r in result] == [True] * 20, "the successor gets the output column, set to None"
    assert "distilabel_metadata" not in result[0]
    records = cache(pipeline).records("flaky")
    assert [r.get("failed", 0) for r in records] == [0, 0, 5, 0]
    assert "Step 'flaky' failed on batch 2" in cache(pipeline).log_text
    assert "ValueError: cannot handle id 12" in cache(pipeline).log_text


def test_failing_batch_records_the_error_in_metadata_when_enabled(tmp_path: Path, executor: str, rows) -> None:
    pipeline = _flaky_pipeline(tmp_path, failing_attempts=1_000, enable_metadata=True)

    result = rows(pipeline.run(executor=executor, config=EngineConfig(step_retries=0)))

    metadata = [r["distilabel_metadata"] for r in result]
    assert metadata[10:15] == [{"error_flaky": "ValueError: cannot handle id 12"}] * 5
    assert metadata[:10] == [None] * 10
    assert metadata[15:] == [None] * 5


def test_without_retries_a_step_failing_once_is_imputed(tmp_path: Path, executor: str, rows) -> None:
    pipeline = _flaky_pipeline(tmp_path, failing_attempts=1)

    result = rows(pipeline.run(executor=executor, config=EngineConfig(step_retries=0)))

    assert [r["out"] for r in result][10:15] == [None] * 5
    assert _attempts(tmp_path) == {0: 1, 5: 1, 10: 1, 15: 1}


def test_with_retries_a_step_failing_once_succeeds(tmp_path: Path, executor: str, rows) -> None:
    pipeline = _flaky_pipeline(tmp_path, failing_attempts=1)

    result = rows(pipeline.run(executor=executor, config=EngineConfig(step_retries=2)))

    assert [r["out"] for r in result] == [f"ok-{i}" for i in range(20)]
    assert _attempts(tmp_path) == {0: 1, 5: 1, 10: 2, 15: 1}


def test_retries_are_bounded_then_the_batch_is_imputed(tmp_path: Path, executor: str, cache, rows) -> None:
    pipeline = _flaky_pipeline(tmp_path, failing_attempts=1_000)

    result = rows(pipeline.run(executor=executor, config=EngineConfig(step_retries=2)))

    assert _attempts(tmp_path) == {0: 1, 5: 1, 10: 3, 15: 1}
    assert [r["out"] for r in result][10:15] == [None] * 5
    assert "after 3 attempt(s)" in cache(pipeline).log_text


def test_global_step_error_stops_the_run_and_keeps_committed_batches(
    tmp_path: Path, executor: str, cache, rows, lines
) -> None:
    flag, log = tmp_path / "fail", tmp_path / "calls.jsonl"
    flag.touch()
    with Pipeline(name="global-fails", cache_dir=tmp_path / "cache", seed=0) as pipeline:
        gen = LoadDataFromDicts(name="gen", data=_ids(10), batch_size=5)
        (
            gen
            >> CallLog(name="logged", log_path=str(log), input_batch_size=5)
            >> GlobalFailsWhileFlag(name="whole", fail_flag=str(flag))
        )

    with pytest.raises(GlobalStepError, match=r"Global step 'whole' failed") as info:
        pipeline.run(executor=executor)

    assert isinstance(info.value, StepExecutionError)
    _assert_caused_by(info.value, "ValueError", "global step cannot proceed")
    folder = cache(pipeline)
    assert sorted((r["step"], r["seq"]) for r in folder.journal()) == [
        ("gen", 0),
        ("gen", 1),
        ("logged", 0),
        ("logged", 1),
    ]
    for record in folder.journal():
        assert (folder.root / record["file"]).is_file()
    assert lines(log) == [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9]]

    flag.unlink()
    result = rows(pipeline.run(executor=executor))

    assert [(r["id"], r["total"]) for r in result] == [(i, 10) for i in range(10)]
    assert lines(log) == [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9]], "committed batches must not be recomputed"


def test_generator_error_stops_the_run_and_keeps_its_committed_batches(tmp_path: Path, executor: str, cache) -> None:
    with Pipeline(name="generator-fails", cache_dir=tmp_path, seed=0) as pipeline:
        BrokenSource(name="source", fail_at=10, batch_size=5) >> BatchLen(name="after", input_batch_size=5)

    with pytest.raises(GeneratorStepError, match=r"step 'source'|Generator step 'source'") as info:
        pipeline.run(executor=executor)

    _assert_caused_by(info.value, "OSError", "source went away")
    folder = cache(pipeline)
    assert [(r["seq"], r["rows"]) for r in folder.records("source")] == [(0, 5), (1, 5)]
    assert [(r["seq"], r["rows"]) for r in folder.records("after")] == [(0, 5), (1, 5)]


def test_leaf_column_with_mixed_types_stops_the_run_naming_step_and_column(tmp_path: Path, executor: str) -> None:
    with Pipeline(name="mixed-types", cache_dir=tmp_path, seed=0) as pipeline:
        LoadDataFromDicts(name="gen", data=_ids(4), batch_size=4) >> MixedTypes(name="mixed", input_batch_size=4)

    with pytest.raises(
        StepOutputError, match=r"Step 'mixed' produced column 'value' with values that cannot be stored together"
    ):
        pipeline.run(executor=executor)

    assert list(tmp_path.rglob("*.parquet")) == []


def test_leaf_column_changing_type_across_batches_stops_the_run_at_that_batch(
    tmp_path: Path, executor: str, cache
) -> None:
    with Pipeline(name="type-changes", cache_dir=tmp_path, seed=0) as pipeline:
        gen = LoadDataFromDicts(name="gen", data=_ids(12), batch_size=4)
        gen >> TypeChangesAt(name="leaf", at=8, input_batch_size=4)

    with pytest.raises(
        StepOutputError, match=r"Leaf step 'leaf' wrote batch 2 .*cannot be unified with its earlier batches.*value"
    ):
        pipeline.run(executor=executor)

    assert [r["seq"] for r in cache(pipeline).records("leaf")] == [0, 1]  # the batches before it stay committed
    with pytest.raises(StepOutputError, match=r"Leaf step 'leaf' wrote batch 2 "):
        pipeline.run(executor=executor)  # resumed: checked against the batches committed before


def test_leaf_column_none_in_one_batch_and_typed_in_the_next_is_no_conflict(
    tmp_path: Path, executor: str, rows
) -> None:
    with Pipeline(name="type-nulls", cache_dir=tmp_path, seed=0) as pipeline:
        gen = LoadDataFromDicts(
            name="gen", data=[{"id": i, "value": None if i < 4 else i} for i in range(8)], batch_size=4
        )
        gen >> KeepColumns(name="leaf", columns=["id", "value"], input_batch_size=4)

    assert [r["value"] for r in rows(pipeline.run(executor=executor))] == [None] * 4 + [4, 5, 6, 7]


def test_load_failure_names_the_step_chains_the_cause_and_writes_no_data(tmp_path: Path, executor: str) -> None:
    with Pipeline(name="load-fails", cache_dir=tmp_path, seed=0) as pipeline:
        gen = LoadDataFromDicts(name="gen", data=_ids(10), batch_size=5)
        gen >> BatchLen(name="fine", input_batch_size=5) >> LoadFails(name="broken")

    with pytest.raises(StepLoadError, match=r"Step 'broken'.*failed to load") as info:
        pipeline.run(executor=executor)

    _assert_caused_by(info.value, "RuntimeError", "model weights are missing")
    assert list(tmp_path.rglob("*.parquet")) == []
    assert list(tmp_path.rglob("*.seg")) == []


def test_steps_loaded_before_a_load_failure_are_unloaded(tmp_path: Path, executor: str, lines) -> None:
    events = tmp_path / "events.jsonl"
    with Pipeline(name="load-fails-unload", cache_dir=tmp_path / "cache", seed=0) as pipeline:
        gen = LoadDataFromDicts(name="gen", data=_ids(4), batch_size=2)
        gen >> LifecycleLog(name="tracked", events_path=str(events)) >> LoadFails(name="broken")

    with pytest.raises(StepLoadError, match="Step 'broken'"):
        pipeline.run(executor=executor)

    assert lines(events) == ["load", "unload"]


def test_every_loaded_step_is_unloaded_after_a_successful_run(tmp_path: Path, executor: str, lines) -> None:
    events = tmp_path / "events.jsonl"
    with Pipeline(name="lifecycle", cache_dir=tmp_path / "cache", seed=0) as pipeline:
        LoadDataFromDicts(name="gen", data=_ids(4), batch_size=2) >> LifecycleLog(
            name="tracked", events_path=str(events)
        )

    pipeline.run(executor=executor)

    assert lines(events) == ["load", "unload"]
