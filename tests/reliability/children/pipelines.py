"""The pipelines of the fault scenarios, built from a JSON-able :class:`Spec`.

The child script (``fault_target.py``) and the Dagster definitions (``dagster_fault_definitions.py``)
build the same pipeline from the same spec, so both share one signature folder. Steps come from
``tests.engine.faulty_steps`` and ``tests.e2e.kill_target``, imported by their package names:
the class path is part of the signature.

Shape (``fault`` picks the class of ``work``)::

    load ──> work ──> leaf          leaf: Herald (announces ids when asked)
      └───> side ──> total          total: Count, a global step

With ``fault="llm"``: ``load ──> gen`` (TextGeneration with OpenAILLM), rows carrying the fake
server's misbehaviour markers.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from distil_dagster.models.llms.openai import OpenAILLM
from distil_dagster.pipeline import Pipeline
from distil_dagster.steps import LoadDataFromDicts, Step
from distil_dagster.steps.tasks import TextGeneration
from tests.e2e.kill_target import Count, Hash
from tests.engine.faulty_steps import Crash, ExitOnLoad, Flaky, Gate, Herald, Stall

__all__ = ["FAULTS", "Spec", "build"]

FAULTS = ("", "kill", "exit", "load-exit", "raise", "hang", "gate", "llm")


@dataclass
class Spec:
    """What to build.

    Attributes:
        name: the pipeline name.
        rows: ids ``0..rows-1``.
        fault: the misbehaviour of step ``work`` (one of ``FAULTS``; ``""``: a plain Herald).
        fault_id: the row that triggers it.
        marker: the heal marker (``kill``, ``exit``, ``load-exit``, ``raise``, ``hang``) or the
            gate file (``gate``); excluded from the signature.
        stall_mode: ``sleep`` or ``spin`` (``hang``).
        hold_load / announce / gate: ``work``'s Herald settings (``fault=""``): its ``load()``
            or its announced batch waits until the ``gate`` file exists.
        leaf_announce: ids the leaf announces when it reaches them.
        markers: ``fault="llm"``: row id -> the fake server's marker (``#status=500`` ...).
        base_url: ``fault="llm"``: the server.
    """

    name: str = "faults"
    rows: int = 120
    fault: str = ""
    fault_id: int = -1
    marker: str = ""
    stall_mode: str = "sleep"
    hold_load: bool = False
    announce: list[int] = field(default_factory=list)
    gate: str = ""
    leaf_announce: list[int] = field(default_factory=list)
    markers: dict[int, str] = field(default_factory=dict)
    base_url: str = ""

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, text: str) -> Spec:
        data = json.loads(text)
        data["markers"] = {int(k): v for k, v in data.get("markers", {}).items()}
        return cls(**data)

    def replace(self, **changes: Any) -> Spec:
        return dataclasses.replace(self, **changes)


def _work(spec: Spec) -> Step:
    common: dict[str, Any] = {"name": "work", "input_batch_size": 5}
    if spec.fault in ("kill", "exit"):
        return Crash(fault=spec.fault, fault_id=spec.fault_id, heal_marker=spec.marker, **common)
    if spec.fault == "load-exit":
        return ExitOnLoad(heal_marker=spec.marker, **common)
    if spec.fault == "raise":
        return Flaky(fault_id=spec.fault_id, heal_marker=spec.marker, **common)
    if spec.fault == "hang":
        return Stall(fault_id=spec.fault_id, heal_marker=spec.marker, mode=spec.stall_mode, **common)
    if spec.fault == "gate":
        return Gate(gate_id=spec.fault_id, gate_file=spec.marker, **common)
    if spec.fault == "":
        return Herald(column="hw", hold_load=spec.hold_load, announce=spec.announce, gate=spec.gate, **common)
    raise ValueError(f"unknown fault {spec.fault!r}; choose one of {FAULTS}")


def build(spec: Spec, cache_dir: Path | None = None) -> Pipeline:
    """The pipeline of ``spec`` (``cache_dir=None``: the default, e.g. ``DISTIL_DAGSTER_CACHE_DIR``)."""
    if spec.fault == "llm":
        return _build_llm(spec, cache_dir)
    with Pipeline(name=spec.name, cache_dir=cache_dir) as pipeline:
        load = LoadDataFromDicts(name="load", data=[{"id": i} for i in range(spec.rows)], batch_size=8)
        work = _work(spec)
        leaf = Herald(name="leaf", column="hl", announce=spec.leaf_announce, input_batch_size=7)
        side = Hash(name="side", column="hs", rounds=50, input_batch_size=10)
        total = Count(name="total")
        load >> work >> leaf
        load >> side >> total
    return pipeline


def _build_llm(spec: Spec, cache_dir: Path | None) -> Pipeline:
    data = [{"id": i, "instruction": f"row {i} {spec.markers.get(i, '')}".strip()} for i in range(spec.rows)]
    llm = OpenAILLM(
        model="fake",
        base_url=spec.base_url,
        api_key="fake-key",
        timeout=1.0,
        max_retries=2,
        retry_backoff=0.05,
        max_concurrency=8,
    )
    with Pipeline(name=spec.name, cache_dir=cache_dir) as pipeline:
        load = LoadDataFromDicts(name="load", data=data, batch_size=8)
        gen = TextGeneration(name="gen", llm=llm, input_batch_size=6)
        load >> gen
    return pipeline
