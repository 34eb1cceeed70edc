"""``pipeline.yaml``: save, load back (same signature, same output), and refuse what is not a step.

Loading imports only step classes and routing functions; a YAML naming any other callable
(``os.system``, ``subprocess.Popen``) is refused with ``PipelineValidationError`` before
anything is called.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from distil_dagster.errors import PipelineValidationError
from distil_dagster.mixins.runtime_parameters import RuntimeParameter
from distil_dagster.pipeline import Pipeline, sample_n_steps
from distil_dagster.pipeline.routing import RoutingBatchFunction
from distil_dagster.steps import GroupColumns, LoadDataFromDicts, Step, StepInput, step
from distil_dagster.steps.typing import StepOutput


@step(inputs=["id"], outputs=["scaled"])
def Scale(inputs: StepInput, factor: RuntimeParameter[int] = 2) -> StepOutput:
    for row in inputs:
        row["scaled"] = row["id"] * factor
    yield inputs


class Tag(Step):
    """Writes ``generation = <name>-<id>`` (``suffix`` appended)."""

    suffix: str = ""

    @property
    def inputs(self) -> list[str]:
        return ["id"]

    @property
    def outputs(self) -> list[str]:
        return ["generation"]

    def process(self, inputs: StepInput) -> StepOutput:
        yield [{**row, "generation": f"{self.name}-{row['id']}{self.suffix}"} for row in inputs]


def _linear(cache_dir: Path) -> Pipeline:
    with Pipeline(name="yaml-linear", description="a linear pipeline", cache_dir=cache_dir, seed=3) as pipeline:
        gen = LoadDataFromDicts(name="gen", data=[{"id": i} for i in range(7)], batch_size=3)
        (
            gen
            >> Scale(name="scale", factor=7, input_batch_size=2)
            >> Tag(name="tag", suffix="!", input_mappings={"id": "id"})
        )
    return pipeline


def _routed(cache_dir: Path) -> Pipeline:
    with Pipeline(name="yaml-routed", cache_dir=cache_dir, seed=5) as pipeline:
        gen = LoadDataFromDicts(name="gen", data=[{"id": i} for i in range(8)], batch_size=4)
        branches = [Tag(name=n, input_batch_size=2) for n in ("a", "b", "c")]
        gen >> sample_n_steps(2) >> branches >> GroupColumns(name="group", columns=["generation"], input_batch_size=2)
    return pipeline


def _load(path: Path, cache_dir: Path) -> Pipeline:
    loaded = Pipeline.from_yaml(path)
    loaded.cache_dir = cache_dir
    return loaded


def test_saved_pipeline_loads_with_the_same_signature_and_output(tmp_path: Path, rows) -> None:
    original = _linear(tmp_path / "one")
    original.save(tmp_path / "pipeline.yaml")

    loaded = _load(tmp_path / "pipeline.yaml", tmp_path / "two")

    assert loaded.signature == original.signature
    assert (loaded.name, loaded.description, loaded.seed) == ("yaml-linear", "a linear pipeline", 3)
    assert loaded.dag.names == ["gen", "scale", "tag"]
    assert loaded.dag.successors("gen") == ["scale"] and loaded.dag.successors("scale") == ["tag"]
    expected = [{"id": i, "scaled": 7 * i, "generation": f"tag-{i}!"} for i in range(7)]
    assert rows(original.run()) == expected
    assert rows(loaded.run()) == expected
    assert (tmp_path / "two" / "yaml-linear" / original.signature / "commits.jsonl").is_file()


def test_decorated_step_class_is_restored_by_module_and_name(tmp_path: Path) -> None:
    _linear(tmp_path).save(tmp_path / "pipeline.yaml")
    data = yaml.safe_load((tmp_path / "pipeline.yaml").read_text())

    steps = {entry["name"]: entry["step"] for entry in data["pipeline"]["steps"]}
    assert steps["scale"]["type_info"] == {"module": __name__, "name": "Scale"}
    assert steps["tag"]["type_info"] == {"module": __name__, "name": "Tag"}

    loaded = Pipeline.from_yaml(tmp_path / "pipeline.yaml")
    assert type(loaded.dag.step("scale")) is Scale
    assert loaded.dag.step("scale").factor == 7
    assert loaded.dag.step("scale").input_batch_size == 2
    assert type(loaded.dag.step("tag")) is Tag
    assert loaded.dag.step("tag").suffix == "!"


def test_dump_is_what_save_writes(tmp_path: Path) -> None:
    pipeline = _linear(tmp_path)
    pipeline.save(tmp_path / "pipeline.yaml")

    assert yaml.safe_load((tmp_path / "pipeline.yaml").read_text()) == pipeline.dump()
    assert Pipeline.from_dict(pipeline.dump()).signature == pipeline.signature


def test_json_saves_and_loads_like_yaml(tmp_path: Path) -> None:
    pipeline = _linear(tmp_path / "cache")
    as_json, as_yaml, forced = tmp_path / "p.json", tmp_path / "p.yaml", tmp_path / "p.txt"

    pipeline.save(as_json)
    pipeline.save(as_yaml)
    pipeline.save(forced, format="json")

    assert json.loads(as_json.read_text()) == pipeline.dump() == yaml.safe_load(as_yaml.read_text())
    assert json.loads(forced.read_text()) == pipeline.dump()
    for loaded in (Pipeline.from_json(as_json), Pipeline.from_file(as_json), Pipeline.from_file(as_yaml)):
        assert loaded.signature == pipeline.signature
    as_json.write_text("{not json")
    with pytest.raises(PipelineValidationError, match=r"p\.json: cannot read pipeline JSON"):
        Pipeline.from_file(as_json)


def test_routing_with_sample_n_steps_is_restored(tmp_path: Path, rows) -> None:
    original = _routed(tmp_path / "one")
    original.save(tmp_path / "pipeline.yaml")

    loaded = _load(tmp_path / "pipeline.yaml", tmp_path / "two")

    assert loaded.signature == original.signature
    routing = loaded.dag.routing["gen"]
    assert isinstance(routing.function, RoutingBatchFunction)
    assert routing.targets == ["a", "b", "c"]
    assert routing.function.dump() == {
        "module": "distil_dagster.pipeline.routing",
        "name": "sample_n_steps",
        "kwargs": {"n": 2},
    }
    assert loaded.dag.convergence_upstream("group") == "gen"
    first, second = rows(original.run()), rows(loaded.run())
    assert first == second
    assert [r["id"] for r in second] == list(range(8))
    assert all(len(r["grouped_generation"]) == 2 for r in second)


def test_run_writes_pipeline_yaml_that_loads_back(tmp_path: Path, cache) -> None:
    pipeline = _linear(tmp_path)
    pipeline.run()

    loaded = Pipeline.from_yaml(cache(pipeline).root / "pipeline.yaml")

    assert loaded.signature == pipeline.signature


def _yaml_with_step_type(tmp_path: Path, module: str, name: str, fields: dict) -> Path:
    data = _linear(tmp_path / "cache").dump()
    entry = data["pipeline"]["steps"][1]
    entry["step"] = {**fields, "type_info": {"module": module, "name": name}}
    path = tmp_path / "evil.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_yaml_naming_os_system_as_a_step_is_refused(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = _yaml_with_step_type(tmp_path, "os", "system", {"command": f"touch {marker}"})

    with pytest.raises(PipelineValidationError, match=r"step 'scale': 'os\.system' is not a step class"):
        Pipeline.from_yaml(path)

    assert not marker.exists()


def test_yaml_naming_a_non_step_class_is_refused_without_instantiating_it(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = _yaml_with_step_type(tmp_path, "subprocess", "Popen", {"args": ["touch", str(marker)]})

    with pytest.raises(PipelineValidationError, match=r"'subprocess\.Popen' is not a step class"):
        Pipeline.from_yaml(path)

    assert not marker.exists()


def test_yaml_naming_os_system_as_a_routing_function_is_refused(tmp_path: Path) -> None:
    _routed(tmp_path / "cache").save(tmp_path / "pipeline.yaml")
    data = yaml.safe_load((tmp_path / "pipeline.yaml").read_text())
    marker = tmp_path / "pwned"
    data["pipeline"]["routing_batch_functions"][0]["routing_batch_function"] = {
        "module": "os",
        "name": "system",
        "kwargs": {"command": f"touch {marker}"},
    }
    (tmp_path / "evil.yaml").write_text(yaml.safe_dump(data))

    with pytest.raises(PipelineValidationError, match=r"'os\.system' is not a routing batch function"):
        Pipeline.from_yaml(tmp_path / "evil.yaml")

    assert not marker.exists()


def test_yaml_with_python_tags_is_not_executed(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.yaml"
    path.write_text(f"pipeline: !!python/object/apply:os.system ['touch {marker}']\n")

    with pytest.raises(PipelineValidationError, match=r"cannot read pipeline YAML"):
        Pipeline.from_yaml(path)

    assert not marker.exists()


def test_yaml_naming_a_missing_class_is_refused(tmp_path: Path) -> None:
    path = _yaml_with_step_type(tmp_path, __name__, "DoesNotExist", {})

    with pytest.raises(PipelineValidationError, match=rf"cannot import '{__name__}\.DoesNotExist'"):
        Pipeline.from_yaml(path)


def _distilabel_document(data_files: Path, extra: dict[str, object]) -> dict[str, object]:
    """A pipeline file as distilabel 1.5.3 writes it (runtime parameter infos left out)."""
    common = {
        "resources": {"replicas": 1, "cpus": None},
        "input_mappings": {},
        "output_mappings": {},
        "use_cache": True,
    }
    loader = {
        "name": "load",
        **common,
        "batch_size": 1,
        "data_files": str(data_files),
        "revision": None,
        "streaming": False,
        **extra,
        "type_info": {"module": "distilabel.steps.generators.huggingface", "name": "LoadDataFromFileSystem"},
    }
    keep = {
        "name": "keep",
        **common,
        "input_batch_size": 50,
        "columns": ["a"],
        "type_info": {"module": "distilabel.steps.columns.keep", "name": "KeepColumns"},
    }
    return {
        "distilabel": {"version": "1.5.3"},
        "pipeline": {
            "name": "written-by-distilabel",
            "description": None,
            "steps": [{"step": loader, "name": "load"}, {"step": keep, "name": "keep"}],
            "connections": [{"from": "load", "to": ["keep"]}, {"from": "keep", "to": []}],
            "routing_batch_functions": [],
            "type_info": {"module": "distilabel.pipeline.local", "name": "Pipeline"},
        },
        "requirements": [],
    }


def test_a_pipeline_file_written_by_distilabel_runs_with_the_counterpart_classes(tmp_path: Path, rows) -> None:
    data = tmp_path / "rows.jsonl"
    data.write_text('{"a": 1, "b": "x"}\n{"a": 2, "b": "y"}\n')
    path = tmp_path / "pipeline.yaml"
    path.write_text(yaml.safe_dump(_distilabel_document(data, {})))

    pipeline = Pipeline.from_yaml(path)
    pipeline.cache_dir = tmp_path / "cache"

    assert [type(pipeline.dag.step(n)).__module__ for n in pipeline.dag.names] == [
        "distil_dagster.steps.generators.file_system",
        "distil_dagster.steps.columns.keep",
    ]
    assert rows(pipeline.run(executor="inline")) == [{"a": 1}, {"a": 2}]


def test_a_description_distilabel_writes_as_a_python_tuple_loads(tmp_path: Path) -> None:
    data = tmp_path / "rows.jsonl"
    data.write_text('{"a": 1}\n')
    document = _distilabel_document(data, {})
    document["pipeline"]["steps"][0]["step"]["runtime_parameters_info"] = [  # type: ignore[index]
        {"name": "config", "optional": True, "description": ("The configuration", " of the dataset.")}
    ]
    path = tmp_path / "pipeline.yaml"
    path.write_text(yaml.dump(document))  # the tuple is written as distilabel writes it
    assert "!!python/tuple" in path.read_text()

    assert Pipeline.from_yaml(path).dag.names == ["load", "keep"]


def test_distilabel_classes_or_fields_without_a_counterpart_are_refused_by_name(tmp_path: Path) -> None:
    document = _distilabel_document(tmp_path / "rows.jsonl", {"shuffle_files": True})  # a field ours lacks
    document["pipeline"]["steps"][1]["step"]["type_info"] = {  # type: ignore[index]
        "module": "distilabel.models.llms.vllm",
        "name": "vLLM",
    }

    with pytest.raises(PipelineValidationError) as caught:
        Pipeline.from_dict(document)

    assert caught.value.problems == [
        "<data>: step 'load': distilabel's LoadDataFromFileSystem fields ['shuffle_files'] have no distil_dagster "
        "counterpart; remove them from the file to run it without them.",
        "<data>: step 'keep': 'distilabel.models.llms.vllm.vLLM' has no distil_dagster counterpart (no step class of "
        "that name).",
    ]


def test_routing_written_by_distilabel_routes_to_the_steps_successors(tmp_path: Path, rows) -> None:
    data = tmp_path / "rows.jsonl"
    data.write_text("".join(f'{{"a": {i}, "b": "x"}}\n' for i in range(4)))
    document = _distilabel_document(data, {})
    steps = document["pipeline"]["steps"]  # type: ignore[index]
    keep_a = steps[1]
    keep_b = {"name": "keep_b", "step": {**keep_a["step"], "name": "keep_b", "input_batch_size": 1}}
    keep_a["step"]["input_batch_size"] = 1
    steps.append(keep_b)
    document["pipeline"]["connections"] = [  # type: ignore[index]
        {"from": "load", "to": ["keep", "keep_b"]},
        {"from": "keep", "to": []},
        {"from": "keep_b", "to": []},
    ]
    document["pipeline"]["routing_batch_functions"] = [  # type: ignore[index]
        {
            "step": "load",
            "description": "Sample 1 steps from the list of downstream steps.",
            "type_info": {
                "module": "distilabel.pipeline.routing_batch_function",
                "name": "sample_n_steps",
                "kwargs": {"n": 1},
            },
        }
    ]

    pipeline = Pipeline.from_dict(document)
    pipeline.cache_dir = tmp_path / "cache"

    assert pipeline.dag.routing["load"].targets == ["keep", "keep_b"]
    assert pipeline.dag.routing["load"].function.dump() == {
        "module": "distil_dagster.pipeline.routing",
        "name": "sample_n_steps",
        "kwargs": {"n": 1},
    }
    distiset = pipeline.run(executor="inline")
    assert sorted(r["a"] for r in rows(distiset, "keep") + rows(distiset, "keep_b")) == [0, 1, 2, 3]


def test_distilabel_defaults_that_ask_for_what_the_engine_does_are_dropped() -> None:
    from distil_dagster.models import OpenAILLM
    from distil_dagster.type_info import TypeInfoError, distilabel_only_fields

    written = {"model": "m", "cuda_devices": "auto", "disable_cuda_device_placement": False}

    assert distilabel_only_fields(OpenAILLM, written) == {"model": "m"}
    with pytest.raises(TypeInfoError, match=r"OpenAILLM fields \['cuda_devices'\] have no distil_dagster counterpart"):
        distilabel_only_fields(OpenAILLM, {**written, "cuda_devices": [0, 1]})
