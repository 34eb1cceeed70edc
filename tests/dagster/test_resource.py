"""DistilDagsterResource and the engine run behind a Dagster run: errors, logs, stopping, resuming."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

from distil_dagster.dagster import DistilDagsterResource, EngineRunError
from distil_dagster.dagster.engine_run import EngineRun
from distil_dagster.models import OpenAILLM
from distil_dagster.pipeline import Pipeline
from distil_dagster.steps import LoadDataFromDicts
from distil_dagster.steps.tasks import TextGeneration
from tests.dagster import pipelines
from tests.dagster.conftest import EXAMPLE_GRAPH, Run, materialization
from tests.models.openai_server import FakeOpenAIServer

pytestmark = pytest.mark.timeout(60)


def _failure_text(result: dg.ExecuteInProcessResult) -> str:
    failures = [e for e in result.all_events if e.is_step_failure]
    assert failures, "expected a failed op"
    error = failures[0].step_failure_data.error
    parts = []
    while error is not None:
        parts.append(error.message)
        error = error.cause
    return "\n".join(parts)


def test_an_engine_failure_fails_the_op_naming_the_step(run: Run, cache_dir: Path) -> None:
    result = run(pipelines.build_exploding(cache_dir), raise_on_error=False)

    assert not result.success
    text = _failure_text(result)
    assert "before step 'explode' finished" in text
    assert "the global step exploded" in text
    assert "pipeline.log" in text


def test_a_pipeline_with_an_async_llm_materializes(run: Run, cache_dir: Path) -> None:
    # The engine run deep-copies the pipeline: an LLM's lock and event loop must not be copied.
    with FakeOpenAIServer() as server:
        with Pipeline(name="llm-assets", cache_dir=cache_dir) as pipeline:
            llm = OpenAILLM(model="fake", base_url=server.base_url, api_key="-", max_retries=0)
            load = LoadDataFromDicts(name="load", data=[{"instruction": f"say {i}"} for i in range(3)])
            load >> TextGeneration(name="gen", llm=llm)
        result = run(pipeline)

    assert result.success
    assert materialization(result, dg.AssetKey(["llm_assets", "gen"]))["dagster/row_count"] == 3


def test_an_invalid_runtime_parameter_fails_the_first_op(run: Run, example: Pipeline) -> None:
    config = {"ops": {EXAMPLE_GRAPH: {"config": {"concise": {"input_batch_size": 0}}}}}

    result = run(example, run_config=config, raise_on_error=False)

    assert not result.success
    failed = [e.step_key for e in result.all_events if e.is_step_failure]
    assert failed == [f"{EXAMPLE_GRAPH}.{EXAMPLE_GRAPH}__load_instructions"]
    assert "Step 'concise': runtime parameter 'input_batch_size' is invalid" in _failure_text(result)


def test_engine_logs_reach_the_dagster_event_log(run: Run, example: Pipeline, instance: dg.DagsterInstance) -> None:
    result = run(example)

    messages = [entry.user_message for entry in instance.all_logs(result.run_id)]
    assert any("Pipeline 'instructions-demo' finished" in m for m in messages)
    assert any("Step 'grouped_responses': 10 batch(es), 20 row(s) computed" in m for m in messages)


@pytest.fixture
def gate() -> Iterator[None]:
    pipelines.GATE.clear()
    yield
    pipelines.GATE.set()


@pytest.mark.usefixtures("gate")
def test_stop_ends_the_engine_gracefully_and_the_next_run_resumes(run: Run, cache_dir: Path) -> None:
    pipeline = pipelines.build_gated(cache_dir)
    engine = EngineRun(
        "stop-test", DistilDagsterResource(cache_dir=str(cache_dir), fsync=False, executor="inline").settings()
    )
    engine.start(pipeline, ["gate"], {})
    updates = engine.updates("gate")
    assert next(u for u in updates if u.progress.batches >= 1)  # row 0 passed; row 1 waits at the gate

    engine.stop()  # what an op does when Dagster terminates the run
    pipelines.GATE.set()
    with pytest.raises(EngineRunError, match="was stopped before step 'gate' finished"):
        for _ in updates:
            pass
    assert engine.join(10)
    kept = engine.progress("gate").batches
    assert 1 <= kept < pipelines.ROWS

    metadata = materialization(run(pipeline), dg.AssetKey(["gated", "gate"]))
    assert metadata["reused_batches"] == kept
    assert metadata["rows"] == metadata["dagster/row_count"] == pipelines.ROWS


def test_a_second_start_with_another_selection_is_refused(cache_dir: Path) -> None:
    pipeline = pipelines.build_linear(cache_dir)
    engine = EngineRun(
        "twice", DistilDagsterResource(cache_dir=str(cache_dir), fsync=False, executor="inline").settings()
    )
    engine.start(pipeline, ["double"], {})
    engine.start(pipeline, ["double"], {})  # later ops of the same run attach

    with pytest.raises(EngineRunError, match="one Dagster run drives one engine run"):
        engine.start(pipeline, ["double"], {"double": {"input_batch_size": 2}})
    assert engine.join(10)


def test_unknown_settings_are_clear_errors() -> None:
    with pytest.raises(EngineRunError, match="not a logging level"):
        DistilDagsterResource(log_level="LOUD").settings()
