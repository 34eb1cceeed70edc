"""Hypothesis fuzz targets: bad input must fail as a ``DistilDagsterError`` naming what is wrong.

``TARGETS`` maps a target name to a function running one hypothesis property ``n`` times and
returning :class:`FuzzFigures`. An example *escapes* when it fails with anything but a
``DistilDagsterError`` whose message names the offending item (or carries a traceback), when it
writes a file outside its cache folder, or when a run succeeds with wrong data. An escape fails the
property (so hypothesis shrinks it) and is recorded; the shrunk example is reported last.

Targets:

- ``yaml``: ``Pipeline.from_yaml`` on random bytes and text, mutated valid dumps (wrong types,
  disallowed classes such as ``os.system`` in ``type_info``, dangling connections), deep nesting
  and YAML aliases.
- ``runtime_params``: random ``parameters`` for real steps (nested LLM parameters included);
  accepted values must run (or be set) correctly.
- ``names``: step and column names (unicode, separators, ``..``, NUL, reserved, colliding).
- ``rows``: row data through a loader, a normal step and a global step (inline executor).
"""

from __future__ import annotations

import contextlib
import copy
import math
import os
import shutil
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from distil_dagster.distiset import Distiset
from distil_dagster.engine.config import EngineConfig
from distil_dagster.engine.runner import apply_parameters
from distil_dagster.errors import DistilDagsterError
from distil_dagster.models.llms.openai import OpenAILLM
from distil_dagster.pipeline import Pipeline, sample_n_steps
from distil_dagster.steps import KeepColumns, LoadDataFromDicts, StepInput, step
from distil_dagster.steps.tasks import TextGeneration
from distil_dagster.steps.typing import StepOutput

__all__ = ["TARGETS", "FuzzFigures", "run_target"]

_MAX_ESCAPES = 25
_TRACEBACK = "Traceback (most recent call last)"
_CONFIG = EngineConfig(fsync=False, step_retries=0)  # durability is not under test here; speed is


@dataclass
class FuzzFigures:
    """What one target did.

    Attributes:
        target: the target's name.
        examples: examples executed (shrinking included).
        escapes: one short description per distinct escape; the shrunk example comes last.
        seconds: wall time of the target.
    """

    target: str
    examples: int
    escapes: list[str] = field(default_factory=list)
    seconds: float = 0.0


# -- steps used by the targets (module level: importable by name from pipeline.yaml) -----------
@step(inputs=["a"], outputs=["touched"])
def Touch(inputs: StepInput, mark: int = 1) -> StepOutput:
    """Add ``touched`` to every row, leaving the rest as it is."""
    for row in inputs:
        row["touched"] = mark
    yield inputs


@step(step_type="global")
def Collect(inputs: StepInput) -> StepOutput:
    """Pass every row through, once all rows are there."""
    yield inputs


@step()
def PassThrough(inputs: StepInput) -> StepOutput:
    """Pass the rows of each batch through."""
    yield inputs


# -- the driver ------------------------------------------------------------------------------
def _describe(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" at {Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else ""
    return f"{type(exc).__name__}{where}: {str(exc)[:300]}"


def dde_problem(exc: BaseException, names: list[str]) -> str | None:
    """Why ``exc`` escapes (not a DistilDagsterError, a traceback in its text, names none of ``names``)."""
    if not isinstance(exc, DistilDagsterError):
        return f"not a DistilDagsterError: {_describe(exc)}"
    text = str(exc)
    if _TRACEBACK in text:
        return f"traceback in the message: {text[:300]}"
    if names and not any(n in text or repr(n) in text for n in names):
        return f"message names none of {names!r}: {text[:300]}"
    return None


class _Escape(AssertionError):
    """An example escaped; hypothesis shrinks it."""


def run_target(name: str, n: int, strategy: st.SearchStrategy[Any], check: Callable[[Any], str | None]) -> FuzzFigures:
    """Run ``check`` on ``n`` examples of ``strategy``; ``check`` returns an escape description or ``None``."""
    figures = FuzzFigures(name, 0)
    seen: set[str] = set()

    @settings(
        max_examples=n,
        deadline=None,
        database=None,
        derandomize=False,
        report_multiple_bugs=False,
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def prop(example: Any) -> None:
        figures.examples += 1
        problem = check(example)
        if problem is None:
            return
        if problem not in seen and len(seen) < _MAX_ESCAPES:
            seen.add(problem)
            figures.escapes.append(problem)
        raise _Escape(problem)

    started = time.perf_counter()
    try:
        prop()
    except _Escape as exc:
        notes = "\n".join(getattr(exc, "__notes__", []))
        figures.escapes.append(f"shrunk: {exc}\n{notes}")
    except Exception as exc:  # hypothesis itself failed (flaky, unsatisfiable): report it too
        figures.escapes.append(f"hypothesis failed: {_describe(exc)}")
    figures.seconds = time.perf_counter() - started
    return figures


class Sandbox:
    """A folder per example; everything a run writes must stay inside the example's cache folder.

    The working directory and ``tempfile``'s folder point into the sandbox while a target runs,
    so a stray relative path or temp file is caught too.
    """

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="distil-fuzz-"))
        self.cwd = self.root / "cwd"
        self.tmp = self.root / "tmp"
        self.cwd.mkdir()
        self.tmp.mkdir()
        self.count = 0

    @contextlib.contextmanager
    def active(self) -> Iterator[Sandbox]:
        old_cwd, old_tmp = os.getcwd(), tempfile.tempdir
        os.chdir(self.cwd)
        tempfile.tempdir = str(self.tmp)
        try:
            yield self
        finally:
            os.chdir(old_cwd)
            tempfile.tempdir = old_tmp
            shutil.rmtree(self.root, ignore_errors=True)

    def example_dir(self) -> Path:
        self.count += 1
        path = self.root / f"ex{self.count}"
        path.mkdir()
        return path

    def strays(self, example: Path) -> list[str]:
        """Files and folders written outside ``example/cache`` (then removed), relative to the sandbox."""
        cache = example / "cache"
        found = []
        for path in self.root.rglob("*"):
            if path == cache or cache in path.parents or path in (self.cwd, self.tmp, example):
                continue
            found.append(path.relative_to(self.root).as_posix())
        for child in [*self.cwd.iterdir(), *self.tmp.iterdir()]:
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child, ignore_errors=True)
            else:
                child.unlink(missing_ok=True)
        shutil.rmtree(example, ignore_errors=True)
        return found


# -- values ----------------------------------------------------------------------------------
_WEIRD_TEXT = st.sampled_from(
    ["", "/", "a/b", "..", ".", "../x", "a\\b", "\x00", "a\x00b", "x" * 300, " ", "é", "名前", "\u202e", "CON", "-a"]
)
_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False),
    st.text(max_size=20),
    _WEIRD_TEXT,
    st.binary(max_size=8),
)
_ANY_VALUE = st.recursive(
    _SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=3), st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=8,
)


def _deep(depth: int, leaf: Any = 1) -> Any:
    value = leaf
    for i in range(depth):
        value = [value] if i % 2 else {"k": value}
    return value


_DEEP = st.integers(min_value=50, max_value=400).map(_deep)


# -- target: yaml ----------------------------------------------------------------------------
def _base_dumps() -> list[dict[str, Any]]:
    cache = tempfile.mkdtemp(prefix="distil-fuzz-base-")
    try:
        with Pipeline(name="linear", cache_dir=cache) as linear:
            load = LoadDataFromDicts(name="load", data=[{"a": 1, "b": "x"}, {"a": 2, "b": "y"}], batch_size=1)
            keep = KeepColumns(name="keep", columns=["a"])
            load >> keep
        with Pipeline(name="routed", cache_dir=cache) as routed:
            load = LoadDataFromDicts(name="load", data=[{"a": i} for i in range(4)], batch_size=2)
            touches = [Touch(name=f"touch_{i}", input_batch_size=1) for i in range(3)]
            load >> sample_n_steps(2) >> touches >> Collect(name="collect")
        with Pipeline(name="llm", cache_dir=cache) as with_llm:
            load = LoadDataFromDicts(name="load", data=[{"instruction": "hi"}])
            llm = OpenAILLM(model="m", base_url="http://127.0.0.1:9/v1", api_key="not-a-secret")
            load >> TextGeneration(name="gen", llm=llm)
        return [p.dump() for p in (linear, routed, with_llm)]
    finally:
        shutil.rmtree(cache, ignore_errors=True)


_BAD_TYPE_INFO = st.sampled_from(
    [
        {"module": "os", "name": "system"},
        {"module": "builtins", "name": "eval"},
        {"module": "subprocess", "name": "Popen"},
        {"module": "antigravity", "name": "x"},
        {"module": "distil_dagster.steps", "name": "step"},
        {"module": "distil_dagster.steps", "name": "LoadDataFromDicts.__init__.__globals__"},
        {"module": "distil_dagster.pipeline.base", "name": "Pipeline"},
        {"module": "", "name": "x"},
        {"module": ".relative", "name": "x"},
        {"module": "a\x00b", "name": "x"},
        {"module": "no_such_module_xyz", "name": "X"},
        {"module": "distil_dagster.steps", "name": ""},
        {"module": 5, "name": ["x"]},
        "os.system",
        None,
        [],
    ]
)
_REPLACEMENT = st.one_of(_ANY_VALUE, _DEEP, _BAD_TYPE_INFO)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if len(prefix) > 12:  # do not walk into the deep values inserted before
        return found
    if isinstance(value, dict):
        for key, child in value.items():
            found += _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found += _paths(child, (*prefix, index))
    return found


@st.composite
def _mutated_dump(draw: st.DrawFn, bases: list[dict[str, Any]]) -> str:
    data = copy.deepcopy(draw(st.sampled_from(bases)))
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        paths = _paths(data)[1:]
        if not paths:  # earlier mutations emptied the document
            break
        path = draw(st.sampled_from(paths))
        parent = data
        for key in path[:-1]:
            parent = parent[key]
        action = draw(st.sampled_from(["replace", "delete", "type_info"]))
        if action == "delete":
            del parent[path[-1]]
        elif action == "type_info" and isinstance(parent, dict) and "type_info" in parent:
            parent["type_info"] = copy.deepcopy(draw(_BAD_TYPE_INFO))  # later mutations must not edit the constant
        else:
            parent[path[-1]] = copy.deepcopy(draw(_REPLACEMENT))
    try:
        text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
    except (yaml.YAMLError, RecursionError):
        text = repr(data)
    if draw(st.booleans()):  # garble the text a little
        cut = draw(st.integers(min_value=0, max_value=len(text)))
        text = text[:cut] + draw(st.text(max_size=5)) + text[cut + draw(st.integers(0, 5)) :]
    return text


def _deep_text(depth: int) -> str:
    return "pipeline: " + "[" * depth + "]" * depth


def _aliases_text(levels: int) -> str:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, levels):
        prev = f"*a{i - 1}"
        lines.append(f"a{i}: &a{i} [{', '.join([prev] * 10)}]")
    last = f"*a{levels - 1}"
    lines.append(
        f"pipeline: {{name: p, steps: [{{name: load, step: {{data: [{{x: {last}}}], type_info: "
        "{module: distil_dagster.steps, name: LoadDataFromDicts}}}]}"
    )
    return "\n".join(lines)


def _yaml_check(sandbox: Sandbox) -> Callable[[str | bytes], str | None]:
    def check(text: str | bytes) -> str | None:
        example = sandbox.example_dir()
        path = example / "pipeline.yaml"
        path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8", "surrogatepass"))
        problem = None
        try:
            pipeline = Pipeline.from_yaml(path)
            pipeline.cache_dir = example / "cache"
            pipeline.validate()
            _ = pipeline.signature, pipeline.dump()
            Pipeline.from_dict(pipeline.dump())
        except DistilDagsterError as exc:
            problem = dde_problem(exc, [str(path)] if "Invalid pipeline" not in str(exc) else [])
        except BaseException as exc:
            problem = dde_problem(exc, [])
        strays = [s for s in sandbox.strays(example) if not s.endswith("pipeline.yaml")]
        if problem is None and strays:
            problem = f"files written outside the cache folder: {strays[:5]}"
        return problem

    return check


def yaml_target(n: int) -> FuzzFigures:
    """Fuzz ``Pipeline.from_yaml``: a DistilDagsterError naming the file, or a valid pipeline."""
    bases = _base_dumps()
    strategy = st.one_of(
        st.binary(max_size=200),
        st.text(max_size=200),
        _mutated_dump(bases),
        _mutated_dump(bases),
        _mutated_dump(bases),
        st.integers(min_value=10, max_value=20_000).map(_deep_text),
        st.integers(min_value=2, max_value=9).map(_aliases_text),
    )
    sandbox = Sandbox()
    with sandbox.active():
        return run_target("yaml", n, strategy, _yaml_check(sandbox))


# -- target: runtime_params ------------------------------------------------------------------
_PARAM_VALUE = st.one_of(
    _ANY_VALUE,
    st.integers(min_value=-5, max_value=5),
    st.floats(),
    st.dictionaries(st.text(max_size=8), _ANY_VALUE, max_size=3),
    _DEEP,
)
_RUNNABLE = ("load", "touch", "collect")
_KNOWN = {
    "load": ["batch_size", "resources", "x"],
    "touch": ["input_batch_size", "mark", "resources"],
    "collect": ["input_batch_size"],
    "gen": ["input_batch_size", "num_generations", "add_raw_output", "llm", "x"],
}
_LLM_PARAMS = [
    "generation_kwargs",
    "structured_output",
    "max_concurrency",
    "base_url",
    "api_key",
    "timeout",
    "max_retries",
    "retry_backoff",
    "model",
    "nope",
]


@st.composite
def _parameters(draw: st.DrawFn) -> Any:
    if draw(st.integers(0, 20)) == 0:
        return draw(_ANY_VALUE)
    params: dict[Any, Any] = {}
    for _ in range(draw(st.integers(0, 3))):
        name = draw(st.one_of(st.sampled_from([*_KNOWN, "unknown"]), _WEIRD_TEXT, st.integers(0, 3)))
        if draw(st.integers(0, 10)) == 0:
            params[name] = draw(_ANY_VALUE)
            continue
        values: dict[Any, Any] = {}
        for _ in range(draw(st.integers(1, 3))):
            key = draw(st.sampled_from(_KNOWN.get(name, ["input_batch_size", "x"])))
            if key == "llm":
                llm = {draw(st.sampled_from(_LLM_PARAMS)): draw(_PARAM_VALUE) for _ in range(draw(st.integers(1, 3)))}
                values[key] = llm if draw(st.integers(0, 8)) else draw(_ANY_VALUE)
            else:
                values[key] = draw(_PARAM_VALUE)
        params[name] = values
    return params


def _params_pipeline(cache: Path, with_llm: bool = True) -> Pipeline:
    with Pipeline(name="params", cache_dir=cache) as pipeline:
        load = LoadDataFromDicts(name="load", data=[{"a": i} for i in range(5)], batch_size=2)
        load >> Touch(name="touch", input_batch_size=2) >> Collect(name="collect")
        if not with_llm:
            return pipeline
        llm = OpenAILLM(model="m", base_url="http://127.0.0.1:9/v1", api_key="not-a-secret")
        load2 = LoadDataFromDicts(name="load2", data=[{"instruction": "hi"}])
        load2 >> TextGeneration(name="gen", llm=llm)
    return pipeline


def _names_in(params: Any) -> list[str]:
    return [str(k) for k in params] if isinstance(params, dict) else []


def _params_check(sandbox: Sandbox) -> Callable[[Any], str | None]:
    def check(params: Any) -> str | None:
        example = sandbox.example_dir()
        pipeline = _params_pipeline(example / "cache")
        problem = None
        params = params or {}  # as Pipeline.run does
        try:
            apply_parameters(pipeline, params)
            problem = _check_params_applied(pipeline, params)
            _ = pipeline.signature, pipeline.dump()
            if problem is None and not (set(params) - set(_RUNNABLE)):
                runnable = {k: v for k, v in params.items() if k in _RUNNABLE}
                problem = _check_run(_params_pipeline(example / "cache", with_llm=False), runnable)
        except DistilDagsterError as exc:
            problem = _params_error_problem(exc, params)
        except BaseException as exc:
            problem = dde_problem(exc, [])
        strays = sandbox.strays(example)
        if problem is None and strays:
            problem = f"files written outside the cache folder: {strays[:5]}"
        return problem

    return check


def _params_error_problem(exc: DistilDagsterError, params: Any) -> str | None:
    problem = dde_problem(exc, _names_in(params) or ["parameters"])
    if problem is not None:
        return problem
    for line in getattr(exc, "problems", [str(exc)]):
        if "runtime parameter" in line and "'" not in line:
            return f"a problem names no parameter: {line[:300]}"
    return None


def _check_params_applied(pipeline: Pipeline, params: dict[str, Any]) -> str | None:
    for name, values in params.items():
        for key, value in values.items():
            current = getattr(pipeline.dag.step(name), key)
            if key == "llm" or not isinstance(value, (int, str)) or isinstance(value, bool):
                continue
            if current != value:
                return f"step {name!r}: runtime parameter {key!r} accepted {value!r} but holds {current!r}"
    return None


def _check_run(pipeline: Pipeline, params: dict[str, Any]) -> str | None:
    try:
        distiset = pipeline.run(parameters=params, executor="inline", use_cache=False, config=_CONFIG)
    except DistilDagsterError as exc:
        return _params_error_problem(exc, params)
    mark = params.get("touch", {}).get("mark", 1)
    expected = [{"a": i, "touched": mark} for i in range(5)]
    got = distiset["default"]["train"].to_list()
    if got != expected:
        return f"run with {params!r} produced {got!r}"
    return None


def runtime_params_target(n: int) -> FuzzFigures:
    """Fuzz runtime parameters: a DistilDagsterError naming step and parameter, or a correct run."""
    sandbox = Sandbox()
    with sandbox.active():
        return run_target("runtime_params", n, _parameters(), _params_check(sandbox))


# -- target: names ---------------------------------------------------------------------------
_NAME = st.one_of(
    st.text(min_size=1, max_size=12),
    st.text(alphabet="ab_-.", min_size=1, max_size=6),
    _WEIRD_TEXT,
    st.sampled_from(["distilabel_metadata", "default", "data", "steps", "pipeline.yaml", "A", "a", "a_b", "a-b"]),
)


@dataclass
class NamesCase:
    """Step names (loader, middle, leaf) and the loader's column names."""

    steps: list[str]
    columns: list[str]


@st.composite
def _names(draw: st.DrawFn) -> NamesCase:
    """Mostly plain names with a fuzzed one here and there, so that runs succeed as well as fail."""

    def pick(plain: str) -> str:
        return draw(_NAME) if draw(st.integers(0, 2)) == 0 else plain

    steps = [pick(plain) for plain in ("load", "middle", "leaf")]
    columns = [pick(f"col{i}") for i in range(draw(st.integers(1, 3)))]
    return NamesCase(steps, columns)


_NAMES = _names()


def _names_check(sandbox: Sandbox) -> Callable[[NamesCase], str | None]:
    def check(case: NamesCase) -> str | None:
        example = sandbox.example_dir()
        columns = list(dict.fromkeys(case.columns))
        data = [{c: f"{c}:{i}" for c in columns} for i in range(3)]
        problem = None
        try:
            with Pipeline(name="names", cache_dir=example / "cache") as pipeline:
                load = LoadDataFromDicts(name=case.steps[0], data=data, batch_size=2)
                middle = PassThrough(name=case.steps[1], input_batch_size=1)
                load >> middle >> Collect(name=case.steps[2])
            distiset = pipeline.run(executor="inline", config=_CONFIG)
            problem = _rows_problem(distiset, data, pipeline.enable_metadata) or _dagster_problem(pipeline)
        except DistilDagsterError as exc:
            problem = dde_problem(exc, [*case.steps, *columns])
        except BaseException as exc:
            problem = dde_problem(exc, [])
        strays = sandbox.strays(example)
        if problem is None and strays:
            problem = f"files written outside the cache folder: {strays[:5]}"
        return problem

    return check


def _dagster_problem(pipeline: Pipeline) -> str | None:
    """The pipeline's Dagster face must build for every name the engine accepts."""
    import dagster as dg

    from distil_dagster.dagster import DistilDagsterIOManager, DistilDagsterResource, build_pipeline_assets

    dg.Definitions(
        assets=[build_pipeline_assets(pipeline)],
        resources={"distil_dagster": DistilDagsterResource(), "distil_dagster_io_manager": DistilDagsterIOManager()},
    ).resolve_all_job_defs()
    return None


def names_target(n: int) -> FuzzFigures:
    """Fuzz step and column names: a PipelineValidationError naming them, or a run inside the cache."""
    sandbox = Sandbox()
    with sandbox.active():
        return run_target("names", n, _NAMES, _names_check(sandbox))


# -- target: rows ----------------------------------------------------------------------------
_ROW_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**64), max_value=2**64),
    st.floats(),
    st.text(max_size=10),
    st.binary(max_size=5),
    st.integers(0, 30).map(lambda k: "é" * 1_000_000 if k == 0 else "x" * (k * 100)),
)
_ROW_VALUE = st.recursive(
    _ROW_SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=3), st.dictionaries(st.sampled_from(["p", "q", "r"]), children, max_size=2)
    ),
    max_leaves=6,
)


@dataclass
class RowsCase:
    """Rows for the loader and its batch size."""

    rows: list[dict[str, Any]]
    batch_size: int
    global_leaf: bool


_ROWS = st.builds(
    RowsCase,
    st.lists(st.dictionaries(st.sampled_from(["a", "b", "c"]), _ROW_VALUE, max_size=3), max_size=6),
    st.integers(min_value=1, max_value=4),
    st.booleans(),
)


def _same(a: Any, b: Any) -> bool:
    """Equal as stored: NaN equals NaN, tuples and sets are lists, ints equal their floats."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        keys = set(a) | set(b)
        return all(_same(a.get(k), b.get(k)) for k in keys)
    if type(a) is not type(b) and not (isinstance(a, (int, float)) and isinstance(b, (int, float))):
        return False
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    return bool(a == b)


def _rows_problem(distiset: Distiset, rows: list[dict[str, Any]], metadata: bool) -> str | None:
    total = sum(len(d["train"]) for d in distiset.values())
    if not rows:
        return None if total == 0 else f"no input rows, but {total} rows came out"
    if set(distiset) != {"default"}:
        return f"expected one config 'default', got {sorted(distiset)}"
    got = distiset["default"]["train"].to_list()
    if len(got) != len(rows):
        return f"{len(rows)} rows in, {len(got)} out"
    for i, (expected, actual) in enumerate(zip(rows, got)):
        actual = {k: v for k, v in actual.items() if k != "touched" and (metadata or k != "distilabel_metadata")}
        if not _same(expected, actual):
            return f"row {i} changed: {_short(expected)} became {_short(actual)}"
    return None


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) < 200 else text[:200] + "..."


def _rows_check(sandbox: Sandbox) -> Callable[[RowsCase], str | None]:
    def check(case: RowsCase) -> str | None:
        example = sandbox.example_dir()
        problem = None
        try:
            with Pipeline(name="rows", cache_dir=example / "cache") as pipeline:
                load = LoadDataFromDicts(name="load", data=copy.deepcopy(case.rows), batch_size=case.batch_size)
                middle = load >> PassThrough(name="middle", input_batch_size=2)
                if case.global_leaf:
                    middle >> Collect(name="collect")
            distiset = pipeline.run(executor="inline", config=_CONFIG)
            problem = _rows_problem(distiset, case.rows, pipeline.enable_metadata)
        except DistilDagsterError as exc:
            problem = dde_problem(exc, ["load", "middle", "collect"])
        except BaseException as exc:
            problem = dde_problem(exc, [])
        strays = sandbox.strays(example)
        if problem is None and strays:
            problem = f"files written outside the cache folder: {strays[:5]}"
        return problem

    return check


def rows_target(n: int) -> FuzzFigures:
    """Fuzz row data: a correct Distiset or a DistilDagsterError naming step, column or batch."""
    sandbox = Sandbox()
    with sandbox.active():
        return run_target("rows", n, _ROWS, _rows_check(sandbox))


TARGETS: dict[str, Callable[[int], FuzzFigures]] = {
    "yaml": yaml_target,
    "runtime_params": runtime_params_target,
    "names": names_target,
    "rows": rows_target,
}
"""Target name -> ``target(n)`` running ``n`` examples."""
