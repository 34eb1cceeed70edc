"""``pipeline.dag`` answers distilabel's DAG queries too (code written against distilabel's ``_dag``)."""

from __future__ import annotations

import networkx as nx
import pytest

from distil_dagster.pipeline import Pipeline
from distil_dagster.steps import GroupColumns, KeepColumns, LoadDataFromDicts


def _diamond() -> Pipeline:
    with Pipeline(name="diamond") as pipeline:
        gen = LoadDataFromDicts(name="gen", data=[{"a": 1}])
        left, right = KeepColumns(name="left", columns=["a"]), KeepColumns(name="right", columns=["a"])
        join = GroupColumns(name="join", columns=["a"])
        tail = KeepColumns(name="tail", columns=["grouped_a"])
        gen >> [left, right] >> join >> tail
        gen >> tail
    return pipeline


def test_distilabels_dag_queries() -> None:
    dag = _diamond().dag

    assert list(dag) == ["gen", "left", "right", "join", "tail"]
    assert isinstance(dag.G, nx.DiGraph) and set(dag.G.edges) >= {("gen", "left"), ("join", "tail")}
    assert dag.get_step("join")["step"] is dag.step("join")
    assert dag.root_steps == {"gen"} and dag.leaf_steps == {"tail"}
    assert list(dag.get_step_predecessors("join")) == ["left", "right"]
    assert list(dag.get_step_successors("gen")) == ["left", "right", "tail"]
    with pytest.raises(ValueError, match="Step with name 'nope' does not exist"):
        dag.get_step("nope")


def test_trophic_levels_group_steps_that_may_run_together() -> None:
    dag = _diamond().dag

    assert dag.trophic_levels == {"gen": 1.0, "left": 2.0, "right": 2.0, "join": 3.0, "tail": 3.0}
    assert list(dag.iter_based_on_trophic_levels()) == [["gen"], ["left", "right"], ["join", "tail"]]
