"""FaissNearestNeighbour: exact k-NN with numpy against a brute-force reference, faiss's ordering
and padding, distilabel's "drop the first of k + 1" rule, pipelines, pipeline.yaml and errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from pydantic import ValidationError

from distil_dagster.errors import GlobalStepError, PipelineValidationError, RemoteTraceback
from distil_dagster.pipeline import Pipeline
from distil_dagster.steps import LoadDataFromDicts
from distil_dagster.steps.nearest_neighbour import FaissNearestNeighbour
from distil_dagster.steps.vector_search import Metric, k_nearest

FLOAT32_MAX = float(np.finfo(np.float32).max)


def run_step(step: FaissNearestNeighbour, vectors: Any) -> list[dict[str, Any]]:
    rows = [{"id": i, "embedding": list(map(float, v))} for i, v in enumerate(vectors)]
    result = next(step.process_applying_mappings(rows))
    assert [r["id"] for r in result] == list(range(len(rows)))  # every row, in input order
    return result


def reference(queries: np.ndarray, base: np.ndarray, k: int, metric: int) -> tuple[list[list[int]], np.ndarray]:
    """Every pair scored directly, sorted by (score, index): the ``k`` nearest of each query."""
    if metric == Metric.L2:
        scores = ((queries[:, None, :] - base[None, :, :]) ** 2).sum(axis=2)
        keys = scores
    else:
        scores = queries @ base.T
        keys = -scores
    order = [sorted(range(len(base)), key=lambda j, r=r: (keys[r, j], j))[:k] for r in range(len(queries))]
    return order, np.take_along_axis(scores, np.asarray(order), axis=1)


def reference_step(matrix: np.ndarray, k: int, metric: int) -> tuple[list[list[int]], np.ndarray]:
    """distilabel's rule over the reference: the ``k + 1`` nearest of each row, the first dropped."""
    order, scores = reference(matrix, matrix, k + 1, metric)
    return [o[1:] for o in order], scores[:, 1:]


@pytest.mark.parametrize("metric", [0, 1])
@pytest.mark.parametrize("k", [1, 3])
@pytest.mark.parametrize("search_batch_size", [4, 1000])  # blocks of 4 with a remainder; one block
def test_the_step_equals_a_brute_force_reference(metric: int, k: int, search_batch_size: int) -> None:
    matrix = np.random.default_rng(metric * 10 + k).normal(size=(37, 8))
    expected_indices, expected_scores = reference_step(matrix, k, metric)

    result = run_step(FaissNearestNeighbour(k=k, metric_type=metric, search_batch_size=search_batch_size), matrix)

    assert [r["nn_indices"] for r in result] == expected_indices
    assert np.allclose([r["nn_scores"] for r in result], expected_scores, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("metric", list(Metric))
def test_k_nearest_breaks_ties_by_index_whatever_the_block_sizes(metric: Metric) -> None:
    matrix = np.random.default_rng(3).integers(-2, 3, size=(29, 3)).astype(np.float64)  # many exact ties
    matrix[[7, 19]] = matrix[2]
    queries = matrix[::3]
    expected_indices, expected_scores = reference(queries, matrix, 6, metric)

    for query_block, base_block in [(1, 1), (2, 3), (4, 5), (3, 29), (100, 2), (100, 100)]:
        indices, scores = k_nearest(queries, matrix, 6, metric, query_block, base_block)
        assert indices.tolist() == expected_indices, (query_block, base_block)
        assert scores.tolist() == expected_scores.tolist(), (query_block, base_block)  # small integers: exact


def test_k_nearest_over_many_equal_rows_lists_the_lowest_indices_at_distance_zero() -> None:
    matrix = np.tile(np.random.default_rng(4).normal(size=(1, 16)), (150, 1))  # 150 x 150 tiny distances

    indices, scores = k_nearest(matrix, matrix, 4, Metric.L2, 150, 150)

    assert indices.tolist() == [[0, 1, 2, 3]] * 150
    assert scores.tolist() == [[0.0] * 4] * 150


def test_l2_drops_the_row_itself_so_distinct_rows_never_list_themselves() -> None:
    matrix = np.random.default_rng(11).normal(size=(20, 4))

    result = run_step(FaissNearestNeighbour(k=3), matrix)  # metric_type None: L2, as faiss's IndexFlat

    for i, row in enumerate(result):
        assert i not in row["nn_indices"]
        others = sorted((float(((matrix[i] - matrix[j]) ** 2).sum()), j) for j in range(20) if j != i)
        assert row["nn_indices"] == [j for _, j in others[:3]]


def test_a_later_exact_duplicate_lists_itself_as_faiss_ties_go_to_the_lower_index() -> None:
    vectors = [[0.0, 0.0], [5.0, 0.0], [0.0, 0.0], [0.0, 1.0]]

    result = run_step(FaissNearestNeighbour(k=1), vectors)

    # rows 0 and 2 both rank [0, 2] at distance 0 (ties to the lower index) and drop 0: row 2 lists itself;
    # rows 1 and 3 are as far from 0 as from 2 and list 0
    assert [(r["nn_indices"], r["nn_scores"]) for r in result] == [
        ([2], [0.0]),
        ([0], [25.0]),
        ([2], [0.0]),
        ([0], [1.0]),
    ]


def test_duplicates_of_real_embeddings_are_at_distance_zero_exactly_so_the_rule_holds() -> None:
    # |q|^2 + |b|^2 - 2 q.b leaves about 1e-13 of rounding on a pair of equal 384-d vectors: enough
    # to put a row behind its duplicate, or give a negative distance, were it not recomputed
    originals = np.random.default_rng(2).normal(size=(30, 384))
    matrix = np.concatenate([originals, originals])  # row i + 30 repeats row i

    result = run_step(FaissNearestNeighbour(k=2, search_batch_size=7), matrix)

    assert [r["nn_indices"][0] for r in result] == [*range(30, 60), *range(30, 60)]
    assert [r["nn_scores"][0] for r in result] == [0.0] * 60
    assert all(score > 0 for r in result for score in r["nn_scores"][1:])


def test_inner_product_drops_the_best_match_which_is_not_always_the_row_itself() -> None:
    vectors = [[1.0, 0.0], [3.0, 0.0], [0.0, 1.0]]  # row 1 scores 3 with row 0, above row 0 itself (1)

    result = run_step(FaissNearestNeighbour(k=1, metric_type=0), vectors)

    assert [(r["nn_indices"], r["nn_scores"]) for r in result] == [([0], [1.0]), ([0], [3.0]), ([0], [0.0])]
    unit = run_step(FaissNearestNeighbour(k=1, metric_type=0), [[1.0, 0.0], [0.6, 0.8], [0.0, 1.0]])
    assert [r["nn_indices"] for r in unit] == [[1], [2], [1]]  # unit length: the row itself comes first


@pytest.mark.parametrize(("metric", "missing"), [(0, -FLOAT32_MAX), (1, FLOAT32_MAX)])
def test_fewer_rows_than_k_pad_with_minus_one_and_the_worst_float32_as_faiss(metric: int, missing: float) -> None:
    result = run_step(FaissNearestNeighbour(k=3, metric_type=metric), [[1.0, 0.0], [0.0, 2.0]])

    assert [r["nn_indices"] for r in result] == [[1, -1, -1], [0, -1, -1]]
    assert [r["nn_scores"][1:] for r in result] == [[missing, missing]] * 2
    assert next(FaissNearestNeighbour().process_applying_mappings([])) == []


def test_in_a_pipeline_on_every_executor(tmp_path: Path, executor: str, rows) -> None:
    matrix = np.random.default_rng(5).normal(size=(23, 6))
    data = [{"id": i, "embedding": v} for i, v in enumerate(matrix.tolist())]
    with Pipeline(name="nearest", cache_dir=tmp_path) as pipeline:
        load = LoadDataFromDicts(name="load", data=data, batch_size=4)
        load >> FaissNearestNeighbour(name="nn", k=3, metric_type=0, search_batch_size=5)

    result = rows(pipeline.run(executor=executor))

    expected_indices, expected_scores = reference_step(matrix, 3, 0)
    assert [r["id"] for r in result] == list(range(23))
    assert [r["nn_indices"] for r in result] == expected_indices
    assert np.allclose([r["nn_scores"] for r in result], expected_scores, rtol=1e-9, atol=1e-9)


def test_search_batch_size_and_the_compatibility_fields_are_outside_the_signature(tmp_path: Path) -> None:
    def build(**fields: Any) -> Pipeline:
        with Pipeline(name="nn-signature", cache_dir=tmp_path) as pipeline:
            LoadDataFromDicts(name="load", data=[{"embedding": [1.0]}]) >> FaissNearestNeighbour(name="nn", **fields)
        return pipeline

    plain = build().signature
    assert build(search_batch_size=7, string_factory="Flat", metric_type=1, device=0, train_size=9).signature == plain
    assert build(metric_type=0).signature != plain
    assert build(k=2).signature != plain


def test_yaml_round_trip_keeps_the_fields_and_the_signature(tmp_path: Path) -> None:
    with Pipeline(name="nn-yaml", cache_dir=tmp_path) as pipeline:
        load = LoadDataFromDicts(name="load", data=[{"embedding": [1.0, 2.0]}, {"embedding": [0.0, 1.0]}])
        load >> FaissNearestNeighbour(name="nn", k=2, metric_type=0, search_batch_size=8, string_factory="Flat")
    pipeline.save(tmp_path / "pipeline.yaml")

    loaded = Pipeline.from_yaml(tmp_path / "pipeline.yaml")

    step = loaded.dag.step("nn")
    assert isinstance(step, FaissNearestNeighbour)
    assert (step.k, step.metric_type, step.search_batch_size, step.string_factory) == (2, 0, 8, "Flat")
    assert loaded.signature == pipeline.signature


def test_a_step_distilabel_wrote_with_its_defaults_loads(tmp_path: Path) -> None:
    # distilabel's module path resolves through the distil_dagster.steps export
    common = {"resources": {"replicas": 1, "cpus": None, "gpus": None, "memory": None, "resources": None}}
    common |= {"input_mappings": {}, "output_mappings": {}, "use_cache": True}
    load = {"name": "load", **common, "batch_size": 50, "data": [{"embedding": [1.0]}, {"embedding": [3.0]}]}
    load["type_info"] = {"module": "distilabel.steps.generators.data", "name": "LoadDataFromDicts"}
    nn = {"name": "nn", **common, "input_batch_size": 50, "device": None, "string_factory": None, "metric_type": None}
    nn |= {"k": 1, "search_batch_size": 50, "train_size": None}
    nn["type_info"] = {"module": "distilabel.steps.embeddings.nearest_neighbour", "name": "FaissNearestNeighbour"}
    document = {
        "distilabel": {"version": "1.5.3"},
        "pipeline": {
            "name": "written-by-distilabel",
            "description": None,
            "steps": [{"step": load, "name": "load"}, {"step": nn, "name": "nn"}],
            "connections": [{"from": "load", "to": ["nn"]}, {"from": "nn", "to": []}],
            "routing_batch_functions": [],
            "type_info": {"module": "distilabel.pipeline.local", "name": "Pipeline"},
        },
        "requirements": [],
    }
    (tmp_path / "pipeline.yaml").write_text(yaml.safe_dump(document))

    pipeline = Pipeline.from_yaml(tmp_path / "pipeline.yaml")
    pipeline.cache_dir = tmp_path / "cache"

    assert isinstance(pipeline.dag.step("nn"), FaissNearestNeighbour)
    result = pipeline.run(executor="inline")["default"]["train"].to_list()
    assert [(r["nn_indices"], r["nn_scores"]) for r in result] == [([1], [4.0]), ([0], [4.0])]


@pytest.mark.parametrize("factory", ["IVF4,Flat", "HNSW32", "flat", "PQ8"])
def test_an_index_other_than_flat_is_refused(tmp_path: Path, factory: str) -> None:
    with pytest.raises(ValidationError, match=rf"string_factory '{factory}' asks faiss for an approximate"):
        FaissNearestNeighbour(string_factory=factory)
    with Pipeline(name="nn-factory", cache_dir=tmp_path) as pipeline:
        LoadDataFromDicts(name="load", data=[{"embedding": [1.0]}]) >> FaissNearestNeighbour(name="nn")

    with pytest.raises(PipelineValidationError, match=r"Step 'nn': runtime parameter 'string_factory' is invalid"):
        pipeline.run(parameters={"nn": {"string_factory": factory}}, executor="inline")


def test_metrics_other_than_inner_product_and_l2_are_refused() -> None:
    assert FaissNearestNeighbour(metric_type=Metric.INNER_PRODUCT).metric_type == 0
    with pytest.raises(ValidationError, match=r"metric_type 2 is not supported: use 0 .* or 1"):
        FaissNearestNeighbour(metric_type=2)


def test_bad_embeddings_are_reported_together_naming_the_step_column_and_rows() -> None:
    rows = [
        {"vector": [1.0, 0.0]},
        {"vector": None},
        {"vector": [1.0, 0.0, 0.0]},
        {"vector": [1.0, float("nan")]},
        {"vector": "1 0"},
        {"vector": ["a", "b"]},
    ]
    step = FaissNearestNeighbour(name="nn", input_mappings={"embedding": "vector"})

    with pytest.raises(ValueError) as caught:
        next(step.process_applying_mappings(rows))

    assert str(caught.value) == (
        "Step 'nn': column 'vector' needs one vector of finite numbers per row, all of one length (length 2, as "
        "row 0); 5 row(s) of the step's input are not: row 1 has no embedding (None); row 2 has length 3; row 3 "
        "holds NaN or infinite values; row 4 is not a list of numbers but a str; row 5 holds values that are not "
        "numbers. Drop or fix those rows upstream (a failed embedding is None)."
    )


def test_a_bad_embedding_stops_the_run_with_a_global_step_error(tmp_path: Path, executor: str) -> None:
    data = [{"embedding": [1.0, 0.0]}, {"embedding": [0.0, 1.0]}, {"embedding": None}]
    with Pipeline(name="nn-bad", cache_dir=tmp_path) as pipeline:
        LoadDataFromDicts(name="load", data=data) >> FaissNearestNeighbour(name="nn")

    with pytest.raises(GlobalStepError, match=r"Global step 'nn' failed") as caught:
        pipeline.run(executor=executor)

    cause = caught.value.__cause__
    text = cause.text if isinstance(cause, RemoteTraceback) else f"{type(cause).__name__}: {cause}"
    assert "ValueError: Step 'nn': column 'embedding' needs one vector" in text
    assert "row 2 has no embedding (None)" in text


def test_device_is_accepted_and_a_warning_says_it_has_no_effect(caplog: pytest.LogCaptureFixture) -> None:
    step = FaissNearestNeighbour(name="nn", device=[0, 1], train_size=100)

    with caplog.at_level("WARNING", logger="distil_dagster"):
        step.load()

    assert "Step 'nn': device=[0, 1] has no effect" in caplog.text
    assert run_step(step, [[0.0], [2.0]])[0]["nn_scores"] == [4.0]
