"""``pipeline.yaml``: dump a pipeline to a dict/YAML and rebuild it.

Loading only imports and instantiates step classes (subclasses of the step base) and routing
functions marked as such — never an arbitrary callable named in the data (see
``distil_dagster.type_info``). YAML is read with ``yaml.safe_load``'s loader (``read_yaml``: plus
tuples as lists, which distilabel writes for one of its descriptions); documents nested too deeply
or expanding (through aliases) past a bound are refused. Every problem of a document is reported
in one ``PipelineValidationError`` naming the file. Secrets are never written.
"""

from __future__ import annotations

import http.client
import inspect
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import yaml

from distil_dagster import __version__
from distil_dagster.errors import PipelineValidationError
from distil_dagster.mixins.requirements import parse_requirements
from distil_dagster.pipeline.remote import fetch_text, is_url
from distil_dagster.pipeline.routing import RoutingBatchFunction
from distil_dagster.type_info import TypeInfoError, distilabel_only_fields, is_distilabel, resolve_type_info

if TYPE_CHECKING:
    from distil_dagster.pipeline.base import Pipeline

__all__ = ["dump_pipeline", "dump_text", "file_format", "load_file", "load_pipeline"]

Format = Literal["yaml", "json"]


def dump_pipeline(pipeline: Pipeline) -> dict[str, Any]:
    """The pipeline as plain data (what ``pipeline.yaml`` holds)."""
    dag = pipeline.dag
    steps = [{"step": dag.step(name).dump(), "name": name} for name in dag.names]
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
        "requirements": pipeline.requirements,
    }


def dump_yaml(pipeline: Pipeline) -> str:
    return yaml.safe_dump(dump_pipeline(pipeline), sort_keys=False, allow_unicode=True)


def dump_text(pipeline: Pipeline, fmt: Format) -> str:
    """The pipeline as YAML or JSON text."""
    return dump_yaml(pipeline) if fmt == "yaml" else json.dumps(dump_pipeline(pipeline), indent=2, ensure_ascii=False)


# Bounds on a loaded document: deeper nesting overflows the stack of recursive code, and YAML
# aliases can make a small file expand to billions of values.
MAX_DEPTH = 100
MAX_VALUES = 10_000_000


def _check_size(data: Any, source: str) -> None:
    """Refuse documents nested deeper than ``MAX_DEPTH``, expanding (aliases) past ``MAX_VALUES``, or recursive.

    Sizes are memoized per object, so an alias bomb is measured without being expanded.
    """
    sizes: dict[int, int] = {}
    active: set[int] = set()

    def size(value: Any, depth: int) -> int:
        if depth > MAX_DEPTH:
            raise PipelineValidationError([f"{source}: values nested more than {MAX_DEPTH} levels deep."])
        if isinstance(value, dict):
            children = list(value.values())
        elif isinstance(value, (list, tuple, set, frozenset)):
            children = list(value)
        else:
            return 1
        key = id(value)
        if key in sizes:
            return sizes[key]
        if key in active:
            raise PipelineValidationError([f"{source}: a value contains itself (a recursive YAML alias)."])
        active.add(key)
        total = 1 + sum(size(child, depth + 1) for child in children)
        active.discard(key)
        if total > MAX_VALUES:
            raise PipelineValidationError([f"{source}: more than {MAX_VALUES} values once YAML aliases are expanded."])
        sizes[key] = total
        return total

    size(data, 0)


def _resolve(type_info: Any, kind: str, what: str, problems: list[str]) -> Any:
    try:
        return resolve_type_info(type_info, kind)
    except TypeInfoError as exc:
        problems.append(f"{what}: {exc}.")
        return None


def _load_steps(steps_spec: list[Any], source: str, problems: list[str]) -> None:
    """Create the steps of ``steps_spec`` in the active pipeline; collect what is wrong.

    A step distilabel wrote (its class is a ``distilabel.*`` one): fields distil_dagster's class
    does not have are dropped when they hold nothing (``None``, ``False``, empty), and refused by
    name otherwise.
    """
    from distil_dagster.steps.base import _Step

    for index, entry in enumerate(steps_spec):
        if not isinstance(entry, dict) or not isinstance(entry.get("step"), dict):
            problems.append(f"{source}: pipeline.steps[{index}] must be a mapping with 'name' and 'step' mappings.")
            continue
        name = entry.get("name")
        what = f"{source}: step {name!r}"
        if not isinstance(name, str):
            problems.append(f"{what} (pipeline.steps[{index}]): the name must be a string.")
            continue
        step_data = dict(entry["step"])
        type_info = step_data.pop("type_info", None)
        step_data.pop("runtime_parameters_info", None)
        if "pipeline" in step_data:
            problems.append(f"{what}: 'pipeline' is not a step field.")
            continue
        cls = _resolve(type_info, "step class", what, problems)
        if cls is None:
            continue
        if not (isinstance(cls, type) and issubclass(cls, _Step)) or inspect.isabstract(cls):
            problems.append(f"{what}: '{type_info['module']}.{type_info['name']}' is not a step class.")
            continue
        if any(not isinstance(key, str) for key in step_data):
            problems.append(f"{what}: field names must be strings, got {sorted(map(repr, step_data))}.")
            continue
        fields = _known_fields(cls, step_data, what, problems) if is_distilabel(type_info) else step_data
        if fields is None:
            continue
        try:
            cls(**{**fields, "name": name})
        except (TypeError, ValueError, RecursionError) as exc:
            problems.append(f"{what}: cannot be created from its fields: {exc}")


def _known_fields(cls: type, data: dict[str, Any], what: str, problems: list[str]) -> dict[str, Any] | None:
    """``data`` without the distilabel-only fields that hold nothing; ``None`` (and a problem) if one holds a value."""
    try:
        return distilabel_only_fields(cls, data)
    except TypeInfoError as exc:
        problems.append(f"{what}: {exc}")
        return None


def _load_connections(pipeline: Pipeline, connections: Any, source: str, problems: list[str]) -> None:
    if not isinstance(connections, list):
        problems.append(f"{source}: 'pipeline.connections' must be a list.")
        return
    for index, conn in enumerate(connections):
        where = f"{source}: pipeline.connections[{index}]"
        targets = conn.get("to") if isinstance(conn, dict) else None
        if targets is None and isinstance(conn, dict):
            targets = []
        if not isinstance(conn, dict) or not isinstance(targets, list):
            problems.append(f"{where} must be a mapping with 'from' (a step) and 'to' (a list of steps).")
            continue
        unknown = [s for s in [conn.get("from"), *targets] if not isinstance(s, str) or s not in pipeline.dag]
        if unknown:
            problems.append(f"{where} names unknown step(s) {unknown}; steps are {pipeline.dag.names}.")
            continue
        for target in targets:
            pipeline.add_edge(conn["from"], target)


def _load_routing(pipeline: Pipeline, routings: Any, source: str, problems: list[str]) -> None:
    if not isinstance(routings, list):
        problems.append(f"{source}: 'pipeline.routing_batch_functions' must be a list.")
        return
    for index, entry in enumerate(routings):
        where = f"{source}: pipeline.routing_batch_functions[{index}]"
        fn_spec = entry.get("routing_batch_function") if isinstance(entry, dict) else None
        targets = entry.get("targets") if isinstance(entry, dict) else None
        if isinstance(entry, dict) and fn_spec is None and is_distilabel(entry.get("type_info")):
            # distilabel writes the function as the entry's type_info; the targets are the step's successors
            fn_spec = entry["type_info"]
            upstream = entry.get("step")
            targets = (
                pipeline.dag.successors(upstream) if isinstance(upstream, str) and upstream in pipeline.dag else []
            )
        if not isinstance(fn_spec, dict) or not isinstance(targets, list):
            problems.append(f"{where} must be a mapping with 'step', 'routing_batch_function' and 'targets'.")
            continue
        upstream = entry.get("step")
        unknown = [s for s in [upstream, *targets] if not isinstance(s, str) or s not in pipeline.dag]
        if unknown:
            problems.append(f"{where} names unknown step(s) {unknown}; steps are {pipeline.dag.names}.")
            continue
        what = f"{source}: routing of step {upstream!r}"
        obj = _resolve(fn_spec, "routing batch function", what, problems)
        kwargs = fn_spec.get("kwargs") or {}
        if obj is None:
            continue
        if isinstance(obj, RoutingBatchFunction):
            function = obj
        elif getattr(obj, "__distil_dagster_routing_factory__", False) is True and isinstance(kwargs, dict):
            try:
                function = obj(**{str(k): v for k, v in kwargs.items()})
            except (TypeError, ValueError) as exc:
                problems.append(f"{what}: cannot be created from its kwargs: {exc}")
                continue
        else:
            problems.append(f"{what}: '{fn_spec['module']}.{fn_spec['name']}' is not a routing batch function.")
            continue
        pipeline.dag.add_routing(upstream, function, list(targets))


def _pipeline_fields(spec: dict[Any, Any], source: str) -> dict[str, Any]:
    problems = []
    fields = {
        "name": spec.get("name"),
        "description": spec.get("description"),
        "seed": spec.get("seed", 0),
        "enable_metadata": spec.get("enable_metadata", False),
    }
    for key, kind in (("name", str), ("description", str), ("seed", int), ("enable_metadata", bool)):
        value = fields[key]
        optional = key in ("name", "description")
        wrong_bool = kind is int and isinstance(value, bool)
        if (value is None and not optional) or (value is not None and (not isinstance(value, kind) or wrong_bool)):
            problems.append(f"{source}: 'pipeline.{key}' must be {kind.__name__}, got {type(value).__name__}.")
    if problems:
        raise PipelineValidationError(problems)
    return fields


def _requirements(data: dict[Any, Any], source: str) -> list[str]:
    """The document's top-level ``requirements`` (as distilabel writes them), checked."""
    value = data.get("requirements") or []
    if not isinstance(value, list) or not all(isinstance(r, str) for r in value):
        raise PipelineValidationError([f"{source}: 'requirements' must be a list of strings."])
    try:
        return parse_requirements(value, f"{source}: 'requirements'")
    except ValueError as exc:
        raise PipelineValidationError([str(exc)]) from None


def load_pipeline(data: Any, source: str = "<data>") -> Pipeline:
    """Rebuild a pipeline from :func:`dump_pipeline` output; a bad document raises one error listing its problems."""
    from distil_dagster.pipeline.base import Pipeline

    if not isinstance(data, dict) or not isinstance(data.get("pipeline"), dict):
        raise PipelineValidationError([f"{source}: expected a mapping with a 'pipeline' key."])
    _check_size(data, source)
    spec = data["pipeline"]
    steps_spec = spec.get("steps") or []
    if not isinstance(steps_spec, list):
        raise PipelineValidationError([f"{source}: 'pipeline.steps' must be a list."])
    pipeline = Pipeline(**_pipeline_fields(spec, source), requirements=_requirements(data, source))
    problems: list[str] = []
    with pipeline:
        _load_steps(steps_spec, source, problems)
        if problems:
            raise PipelineValidationError(problems)
        _load_connections(pipeline, spec.get("connections") or [], source, problems)
        _load_routing(pipeline, spec.get("routing_batch_functions") or [], source, problems)
    try:
        pipeline.validate()
    except PipelineValidationError as exc:
        problems.extend(f"{source}: {p}" for p in exc.problems)
    if problems:
        raise PipelineValidationError(problems)
    return pipeline


class _DocumentLoader(yaml.SafeLoader):
    """The safe loader, also reading ``!!python/tuple`` as a list: plain data (distilabel 1.5.3 writes
    one for a description of ``LoadDataFromDisk``); any other Python tag is still refused."""


def _tuple_as_list(loader: _DocumentLoader, node: yaml.Node) -> list[Any]:
    if not isinstance(node, yaml.SequenceNode):
        raise yaml.constructor.ConstructorError(None, None, "a !!python/tuple that is not a sequence", node.start_mark)
    return loader.construct_sequence(node)


_DocumentLoader.add_constructor("tag:yaml.org,2002:python/tuple", _tuple_as_list)


def read_yaml(text: str) -> Any:
    """A YAML document read safely (see ``_DocumentLoader``)."""
    return yaml.load(text, Loader=_DocumentLoader)  # a SafeLoader subclass


def load_file(path: str | Path, fmt: Format = "yaml") -> Pipeline:
    """Read a ``pipeline.yaml`` (or, ``fmt="json"``, a ``pipeline.json``) — a file, or an
    ``http(s)://`` URL such as a Hub dataset's — safely and rebuild the pipeline."""
    source = str(path)
    what = "YAML" if fmt == "yaml" else "JSON"
    try:
        text = fetch_text(source) if is_url(path) else Path(path).read_text(encoding="utf-8")
        data = read_yaml(text) if fmt == "yaml" else json.loads(text)
    except (OSError, http.client.HTTPException, UnicodeDecodeError, ValueError, yaml.YAMLError) as exc:
        raise PipelineValidationError([f"{source}: cannot read pipeline {what} ({exc})."]) from exc
    except RecursionError as exc:
        raise PipelineValidationError([f"{source}: cannot read pipeline {what} (nested too deeply)."]) from exc
    return load_pipeline(data, source=source)


def file_format(path: str | os.PathLike[str]) -> Format:
    """``"json"`` for a ``.json`` path, else ``"yaml"``."""
    return "json" if str(path).lower().endswith(".json") else "yaml"
