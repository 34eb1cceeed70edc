"""``pipeline.ray()``, distilabel's way to run a pipeline on Ray."""

from __future__ import annotations

from pathlib import Path

import pytest

from distil_dagster.errors import PipelineValidationError
from tests.e2e.kill_target import build


@pytest.mark.timeout(120)
def test_ray_view_runs_on_ray_and_gives_the_inline_rows(tmp_path: Path, ray_cluster: str) -> None:
    on_ray = build("linear", tmp_path / "ray", rows=40).ray()

    distiset = on_ray.run()

    inline = build("linear", tmp_path / "inline", rows=40).run(executor="inline")
    assert {n: d["train"].to_list() for n, d in distiset.items()} == {
        n: d["train"].to_list() for n, d in inline.items()
    }
    assert "Ray started" not in Path(distiset.log_filename_path).read_text()  # the test's Ray, used as it is
    assert on_ray.name == on_ray.pipeline.name and on_ray.dag is on_ray.pipeline.dag


def test_ray_view_refuses_init_kwargs_and_other_executors(tmp_path: Path) -> None:
    pipeline = build("linear", tmp_path, rows=4)

    with pytest.raises(PipelineValidationError, match=r"ray\(ray_init_kwargs=...\) is not supported"):
        pipeline.ray(ray_init_kwargs={"num_cpus": 2})
    with pytest.raises(PipelineValidationError, match="a Ray pipeline runs on Ray"):
        pipeline.ray().run(executor="inline")
    assert not list(tmp_path.rglob("*.parquet"))
