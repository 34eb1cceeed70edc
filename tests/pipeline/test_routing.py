"""Routing with ``sample_n_steps`` and re-joining in a convergence step.

``gen(batch_size=4, 12 rows) >> sample_n_steps(2) >> [three generators, input_batch_size=2]
>> GroupColumns(input_batch_size=2)``: every upstream batch goes to two of the three branches;
the convergence step re-joins, per upstream batch and in order, the rows of those two branches.
Decisions are seeded from the pipeline seed, so the same seed routes the same way.
"""

from __future__ import annotations

from pathlib import Path

from distil_dagster.pipeline import Pipeline, routing_batch_function, sample_n_steps
from distil_dagster.steps import GroupColumns, LoadDataFromDicts, Step, StepInput
from distil_dagster.steps.typing import StepOutput

BRANCHES = ["llm_a", "llm_b", "llm_c"]


class Generate(Step):
    """Writes ``generation = <step name>-<id>``."""

    @property
    def inputs(self) -> list[str]:
        return ["id"]

    @property
    def outputs(self) -> list[str]:
        return ["generation"]

    def process(self, inputs: StepInput) -> StepOutput:
        yield [{**row, "generation": f"{self.name}-{row['id']}"} for row in inputs]


@routing_batch_function
def first_two(steps: list[str]) -> list[str]:
    return steps[:2]


@routing_batch_function(description="the last two branches")  # distilabel 1.5's form: a decorator factory
def last_two(steps: list[str]) -> list[str]:
    """Not the description: the argument wins."""
    return steps[-2:]


def build(cache_dir: Path, seed: int = 0, rows_count: int = 12) -> Pipeline:
    with Pipeline(name="routing", cache_dir=cache_dir, seed=seed) as pipeline:
        gen = LoadDataFromDicts(name="gen", data=[{"id": i} for i in range(rows_count)], batch_size=4)
        branches = [Generate(name=name, input_batch_size=2) for name in BRANCHES]
        group = GroupColumns(
            name="group", columns=["generation"], output_columns=["grouped_generation"], input_batch_size=2
        )
        gen >> sample_n_steps(2) >> branches >> group
    return pipeline


def _routing(result: list[dict]) -> list[list[str]]:
    return [[g.split("-")[0] for g in row["grouped_generation"]] for row in result]


def test_convergence_step_gets_each_row_once_with_two_distinct_branches(tmp_path: Path, executor: str, rows) -> None:
    result = rows(build(tmp_path).run(executor=executor))

    assert [r["id"] for r in result] == list(range(12))
    for row in result:
        generations = row["grouped_generation"]
        branches = [g.rsplit("-", 1)[0] for g in generations]
        assert len(generations) == 2, row
        assert len(set(branches)) == 2, row
        assert set(branches) <= set(BRANCHES), row
        assert [g.rsplit("-", 1)[1] for g in generations] == [str(row["id"])] * 2, row
        assert branches == sorted(branches, key=BRANCHES.index), "branches in connection order"
    assert set(result[0]) == {"id", "grouped_generation"}


def test_rows_of_one_upstream_batch_go_to_the_same_two_branches(tmp_path: Path, executor: str, cache, rows) -> None:
    pipeline = build(tmp_path)

    result = rows(pipeline.run(executor=executor))

    routes = _routing(result)
    for start in range(0, 12, 4):
        assert routes[start : start + 4] == [routes[start]] * 4
    routed = [r["routed"] for r in cache(pipeline).records("gen")]
    assert routed == [routes[0], routes[4], routes[8]]


def test_routed_branches_receive_only_their_batches_in_input_batch_size_pieces(tmp_path: Path, cache) -> None:
    pipeline = build(tmp_path)
    pipeline.run()

    folder = cache(pipeline)
    routed = {r["seq"]: r["routed"] for r in folder.records("gen")}
    for branch in BRANCHES:
        sources = [seq for seq, targets in routed.items() if branch in targets]
        non_empty = [r for r in folder.records(branch) if r["rows"] > 0]
        assert [r["rows"] for r in non_empty] == [2, 2] * len(sources)
        assert [r["source"] for r in non_empty] == [s for s in sources for _ in (0, 1)]


def test_same_seed_routes_the_same_way_in_another_cache(tmp_path: Path, rows) -> None:
    first = rows(build(tmp_path / "one", seed=7).run())
    second = rows(build(tmp_path / "two", seed=7).run())

    assert first == second


def test_processes_executor_routes_like_inline(tmp_path: Path, rows) -> None:
    inline = rows(build(tmp_path / "inline", seed=7).run(executor="inline"))
    processes = rows(build(tmp_path / "processes", seed=7).run(executor="processes"))

    assert processes == inline


def test_another_seed_routes_differently(tmp_path: Path, rows) -> None:
    # Verified for these seeds: seed 0 and seed 1 give different routes for these 3 batches.
    zero = _routing(rows(build(tmp_path / "zero", seed=0).run()))
    one = _routing(rows(build(tmp_path / "one", seed=1).run()))

    assert zero != one
    assert build(tmp_path, seed=0).signature != build(tmp_path, seed=1).signature


def test_routing_function_decides_the_targets(tmp_path: Path, rows) -> None:
    with Pipeline(name="first-two", cache_dir=tmp_path, seed=0) as pipeline:
        gen = LoadDataFromDicts(name="gen", data=[{"id": i} for i in range(6)], batch_size=2)
        branches = [Generate(name=name, input_batch_size=2) for name in BRANCHES]
        gen >> first_two >> branches >> GroupColumns(name="group", columns=["generation"], input_batch_size=1)

    result = rows(pipeline.run())

    assert [r["grouped_generation"] for r in result] == [[f"llm_a-{i}", f"llm_b-{i}"] for i in range(6)]


def test_uneven_last_upstream_batch_is_rejoined(tmp_path: Path, executor: str, rows) -> None:
    result = rows(build(tmp_path, rows_count=10).run(executor=executor))

    assert [r["id"] for r in result] == list(range(10))
    assert all(len(set(route)) == 2 for route in _routing(result))


class Collect(Step):
    """A leaf that keeps the rows as they are and adds ``<name>_len``."""

    @property
    def inputs(self) -> list[str]:
        return ["generation"]

    @property
    def outputs(self) -> list[str]:
        return [f"{self.name}_len"]

    def process(self, inputs: StepInput) -> StepOutput:
        yield [{**row, f"{self.name}_len": len(inputs)} for row in inputs]


def test_each_routed_branch_can_feed_its_own_leaf(tmp_path: Path, rows) -> None:
    with Pipeline(name="routed-leaves", cache_dir=tmp_path, seed=0) as pipeline:
        gen = LoadDataFromDicts(name="gen", data=[{"id": i} for i in range(10)], batch_size=2)
        a, b = Generate(name="a", input_batch_size=2), Generate(name="b", input_batch_size=2)
        gen >> sample_n_steps(1) >> [a, b]
        a >> Collect(name="leaf_a", input_batch_size=2)
        b >> Collect(name="leaf_b", input_batch_size=2)

    distiset = pipeline.run()

    leaf_a, leaf_b = rows(distiset, "leaf_a"), rows(distiset, "leaf_b")
    assert sorted(r["id"] for r in leaf_a + leaf_b) == list(range(10))
    assert [r["id"] for r in leaf_a] == sorted(r["id"] for r in leaf_a)
    assert [r["id"] for r in leaf_b] == sorted(r["id"] for r in leaf_b)
    assert all(r["generation"] == f"a-{r['id']}" for r in leaf_a)
    assert all(r["generation"] == f"b-{r['id']}" for r in leaf_b)


def test_convergence_step_over_a_subset_of_the_routed_branches(tmp_path: Path, rows) -> None:
    with Pipeline(name="routed-subset", cache_dir=tmp_path, seed=0) as pipeline:
        gen = LoadDataFromDicts(name="gen", data=[{"id": i} for i in range(12)], batch_size=4)
        branches = [Generate(name=name, input_batch_size=2) for name in BRANCHES]
        gen >> sample_n_steps(2) >> branches
        branches[:2] >> GroupColumns(name="group", columns=["generation"], input_batch_size=2)
        branches[2] >> Collect(name="leaf_c", input_batch_size=2)

    distiset = pipeline.run()

    grouped, leaf_c = rows(distiset, "group"), rows(distiset, "leaf_c")
    assert [r["id"] for r in grouped] == list(range(12)), "every batch reaches llm_a or llm_b"
    for row in grouped:
        expected = [f"{b}-{row['id']}" for b in BRANCHES[:2] if f"{b}-{row['id']}" in row["grouped_generation"]]
        assert row["grouped_generation"] == expected and expected, row
    c_ids = {r["id"] for r in leaf_c}
    assert all((len(r["grouped_generation"]) == 1) == (r["id"] in c_ids) for r in grouped)


def test_routing_function_from_the_decorator_factory_routes_and_keeps_its_description(tmp_path: Path, rows) -> None:
    with Pipeline(name="last-two", cache_dir=tmp_path, seed=0) as pipeline:
        gen = LoadDataFromDicts(name="gen", data=[{"id": i} for i in range(4)], batch_size=2)
        branches = [Generate(name=name, input_batch_size=2) for name in BRANCHES]
        gen >> last_two >> branches >> GroupColumns(name="group", columns=["generation"], input_batch_size=1)

    result = rows(pipeline.run(executor="inline"))

    assert [r["grouped_generation"] for r in result] == [[f"llm_b-{i}", f"llm_c-{i}"] for i in range(4)]
    assert last_two.description == "the last two branches"
    assert first_two.description is None and sample_n_steps(2).description is None
    assert Pipeline.from_yaml(_dumped(pipeline, tmp_path)).signature == pipeline.signature


def _dumped(pipeline: Pipeline, folder: Path) -> Path:
    path = folder / "pipeline.yaml"
    pipeline.save(path)
    return path
