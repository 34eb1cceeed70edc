"""``pipeline.yaml``: dump a pipeline to a dict/YAML and rebuild it.

Loading only imports and instantiates step classes (subclasses of the step base) and routing
functions marked as such — never an arbitrary callable named in the data. YAML is read with
``yaml.safe_load``. Secrets are never written.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from distil_dagster import __version__
from distil_dagster.errors import PipelineValidationError
from distil_dagster.pipeline.routing import RoutingBatchFunction
from distil_dagster.pipeline.signature import canonical

if TYPE_CHECKING:
    from distil_dagster.pipeline.base import Pipeline

__all__ = ["dump_pipeline", "load_pipeline"]


def dump_pipeline(pipeline: Pipeline) -> dict[str, Any]:
    """The pipeline as plain data (what ``pipeline.yaml`` holds)."""
    dag = pipeline.dag
    steps = []
    for name in dag.names:
        step = dag.step(name)
        cls = type(step)
        fields = {k: getattr(step, k) for k in type(step).model_fields if k != "pipeline"}
        data = canonical(fields)
        data["runtime_parameters_info"] = step.get_runtime_parameters_info()
        data["type_info"] = {"module": cls.__module__, "name": cls.__qualname__}
        steps.append({"step": data, "name": name})
    connections = [{"from": name, "to": dag.successors(name)} for name in dag.names]
    routing = [
        {"step": r.upstream, "routing_batch_function": r.function.dump(), "targets": r.targets}
        for r in dag.routing.values()
    ]
    return {
        "distil_dagster": {"version": __version__},
        "pipeline": {
            "name": pipeline.name,
            "description": pipeline.description,
            "seed": pipeline.seed,
            "enable_metadata": pipeline.enable_metadata,
            "steps": steps,
            "connections": connections,
            "routing_batch_functions": routing,
            "type_info": {"module": type(pipeline).__module__, "name": type(pipeline).__qualname__},
        },
    }


def dump_yaml(pipeline: Pipeline) -> str:
    return yaml.safe_dump(dump_pipeline(pipeline), sort_keys=False, allow_unicode=True)


def _import(module: str, qualname: str, what: str) -> Any:
    try:
        obj: Any = importlib.import_module(module)
        for part in qualname.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as exc:
        raise PipelineValidationError([f"{what}: cannot import '{module}.{qualname}' ({exc})."]) from exc
    return obj


def load_pipeline(data: Any, source: str = "<data>") -> Pipeline:
    """Rebuild a pipeline from :func:`dump_pipeline` output."""
    from distil_dagster.pipeline.base import Pipeline
    from distil_dagster.steps.base import _Step

    if not isinstance(data, dict) or not isinstance(data.get("pipeline"), dict):
        raise PipelineValidationError([f"{source}: expected a mapping with a 'pipeline' key."])
    spec = data["pipeline"]
    problems: list[str] = []
    steps_spec = spec.get("steps") or []
    if not isinstance(steps_spec, list):
        raise PipelineValidationError([f"{source}: 'pipeline.steps' must be a list."])
    pipeline = Pipeline(
        name=spec.get("name"),
        description=spec.get("description"),
        seed=spec.get("seed", 0),
        enable_metadata=bool(spec.get("enable_metadata", False)),
    )
    with pipeline:
        for entry in steps_spec:
            step_data = dict(entry.get("step") or {}) if isinstance(entry, dict) else {}
            name = entry.get("name") if isinstance(entry, dict) else None
            type_info = step_data.pop("type_info", None) or {}
            step_data.pop("runtime_parameters_info", None)
            what = f"{source}: step {name!r}"
            cls = _import(str(type_info.get("module")), str(type_info.get("name")), what)
            if not (isinstance(cls, type) and issubclass(cls, _Step)):
                problems.append(f"{what}: '{type_info.get('module')}.{type_info.get('name')}' is not a step class.")
                continue
            try:
                cls(**{**step_data, "name": name})
            except (TypeError, ValueError) as exc:
                problems.append(f"{what}: cannot be created from its fields: {exc}")
        if problems:
            raise PipelineValidationError(problems)
        for conn in spec.get("connections") or []:
            for target in conn.get("to") or []:
                pipeline.add_edge(conn["from"], target)
        for entry in spec.get("routing_batch_functions") or []:
            fn_spec = entry["routing_batch_function"]
            obj = _import(fn_spec["module"], fn_spec["name"], f"{source}: routing of step {entry['step']!r}")
            if isinstance(obj, RoutingBatchFunction):
                function = obj
            elif getattr(obj, "__distil_dagster_routing_factory__", False):
                function = obj(**(fn_spec.get("kwargs") or {}))
            else:
                raise PipelineValidationError(
                    [f"{source}: '{fn_spec['module']}.{fn_spec['name']}' is not a routing batch function."]
                )
            pipeline.dag.add_routing(entry["step"], function, list(entry["targets"]))
    return pipeline


def load_yaml(path: str | Path) -> Pipeline:
    """Read ``pipeline.yaml`` safely and rebuild the pipeline."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise PipelineValidationError([f"{path}: cannot read pipeline YAML ({exc})."]) from exc
    return load_pipeline(data, source=str(path))
