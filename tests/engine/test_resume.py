"""Resume after a crash: only the batches missing from the journal are computed again.

A crash is simulated by keeping only the first K lines of ``commits.jsonl`` (the journal is in
dependency order, so any prefix is a state a crash can leave). The first run is inline; the
resume runs on each executor (the cache does not depend on the executor). It must give every
row exactly once, equal to an uninterrupted run, and each step must process exactly the batches
whose commits were lost. Steps append what they process to a log file given as a field.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from distil_dagster.pipeline import Pipeline, sample_n_steps
from distil_dagster.steps import GeneratorStep, GroupColumns, Step, StepInput
from distil_dagster.steps.typing import GeneratorStepOutput, StepOutput

ROWS = 30


class Numbers(GeneratorStep):
    """Yields ``{"id": i}`` for ``i < count``; logs the offset of every batch it produces."""

    count: int
    log_path: str

    @property
    def outputs(self) -> list[str]:
        return ["id"]

    def process(self, offset: int = 0) -> GeneratorStepOutput:
        if offset >= self.count:
            yield [], True
            return
        for start in range(offset, self.count, self.batch_size):
            end = min(start + self.batch_size, self.count)
            with open(self.log_path, "a", encoding="utf-8") as handle:
                handle.write(json.dumps({"step": self.name, "offset": start}) + "\n")
            yield [{"id": i} for i in range(start, end)], end >= self.count


class Logged(Step):
    """Logs the ids of every batch it processes; writes ``<name>_len``."""

    log_path: str

    @property
    def inputs(self) -> list[str]:
        return ["id"]

    @property
    def outputs(self) -> list[str]:
        return [f"{self.name}_len"]

    def process(self, inputs: StepInput) -> StepOutput:
        with open(self.log_path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps({"step": self.name, "ids": [row["id"] for row in inputs]}) + "\n")
        yield [{**row, f"{self.name}_len": len(inputs)} for row in inputs]


class Generate(Step):
    """Logs its batches; writes ``generation = <name>-<id>``."""

    log_path: str

    @property
    def inputs(self) -> list[str]:
        return ["id"]

    @property
    def outputs(self) -> list[str]:
        return ["generation"]

    def process(self, inputs: StepInput) -> StepOutput:
        with open(self.log_path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps({"step": self.name, "ids": [row["id"] for row in inputs]}) + "\n")
        yield [{**row, "generation": f"{self.name}-{row['id']}"} for row in inputs]


def build_branching(cache_dir: Path, log: Path) -> Pipeline:
    """numbers(batch 4) >> a(5) >> [b(7), c(3)]: two leaves."""
    with Pipeline(name="resume", cache_dir=cache_dir, seed=0) as pipeline:
        numbers = Numbers(name="numbers", count=ROWS, log_path=str(log), batch_size=4)
        a = Logged(name="a", log_path=str(log), input_batch_size=5)
        (
            numbers
            >> a
            >> [
                Logged(name="b", log_path=str(log), input_batch_size=7),
                Logged(name="c", log_path=str(log), input_batch_size=3),
            ]
        )
    return pipeline


def build_routed(cache_dir: Path, log: Path) -> Pipeline:
    with Pipeline(name="resume-routed", cache_dir=cache_dir, seed=0) as pipeline:
        numbers = Numbers(name="numbers", count=12, log_path=str(log), batch_size=4)
        branches = [Generate(name=n, log_path=str(log), input_batch_size=2) for n in ("x", "y", "z")]
        group = GroupColumns(name="group", columns=["generation"], input_batch_size=2)
        numbers >> sample_n_steps(2) >> branches >> group
    return pipeline


def _calls(log: Path) -> list[dict]:
    return [json.loads(line) for line in log.read_text().splitlines()]


def _by_step(calls: list[dict]) -> dict[str, list]:
    out: dict[str, list] = {}
    for call in calls:
        out.setdefault(call["step"], []).append(call.get("ids", call.get("offset")))
    return out


def _non_empty_seqs(records: list[dict]) -> dict[str, list[int]]:
    """Step -> seq_nos (in order) of the batches with rows, i.e. the ones a step is called for."""
    out: dict[str, list[int]] = {}
    for record in records:
        out.setdefault(record["step"], [])
    for record in sorted(records, key=lambda r: (r["step"], r["seq"])):
        if record["rows"] > 0:
            out[record["step"]].append(record["seq"])
    return out


def _expected_recomputed(full: list[dict], kept: list[dict]) -> dict[str, list]:
    """For every step, the calls of the first run whose batches are not in the kept journal."""
    first_run = _by_step(full)
    kept_seqs = {(r["step"], r["seq"]) for r in kept}
    return {
        step: [c for seq, c in enumerate(calls) if (step, seq) not in kept_seqs] for step, calls in first_run.items()
    }


def _assert_journal_in_dependency_order(journal: list[dict]) -> None:
    seen: set[tuple[str, int]] = set()
    for record in journal:
        for source, ranges in record.get("from", {}).items():
            for seq, _start, _end in ranges:
                assert (source, seq) in seen, f"{record} before {source} batch {seq}"
        seen.add((record["step"], record["seq"]))


def _reference(tmp_path: Path, builder) -> dict[str, list[dict]]:
    distiset = builder(tmp_path / "reference", tmp_path / "reference.jsonl").run()
    return {name: dd["train"].to_list() for name, dd in distiset.items()}


CASES = [("inline", k) for k in (0, 1, 2, 3, 6, 10, 15, 21, 27, 28)] + [("processes", k) for k in (0, 6, 21)]


@pytest.mark.parametrize(("executor", "keep"), CASES)
def test_resume_recomputes_only_the_lost_batches(tmp_path: Path, cache, executor: str, keep: int) -> None:
    reference = _reference(tmp_path, build_branching)
    log = tmp_path / "calls.jsonl"
    pipeline = build_branching(tmp_path / "cache", log)
    pipeline.run()
    folder = cache(pipeline)
    journal = folder.journal()
    assert len(journal) == 8 + 6 + 5 + 10
    _assert_journal_in_dependency_order(journal)
    first_calls = _calls(log)
    assert all(seqs == list(range(len(seqs))) for seqs in _non_empty_seqs(journal).values())
    folder.keep_journal_lines(keep)
    kept = journal[:keep]

    distiset = build_branching(tmp_path / "cache", log).run(executor=executor)

    assert {name: dd["train"].to_list() for name, dd in distiset.items()} == reference
    assert [r["id"] for r in distiset["b"]["train"]] == list(range(ROWS))
    assert [r["id"] for r in distiset["c"]["train"]] == list(range(ROWS))
    resumed_calls = _by_step(_calls(log)[len(first_calls) :])
    expected = {step: calls for step, calls in _expected_recomputed(first_calls, kept).items() if calls}
    assert resumed_calls == expected
    assert sorted((r["step"], r["seq"]) for r in folder.journal()) == sorted((r["step"], r["seq"]) for r in journal)


def test_resume_logs_reused_and_computed_batches(tmp_path: Path, cache) -> None:
    log = tmp_path / "calls.jsonl"
    pipeline = build_branching(tmp_path / "cache", log)
    pipeline.run()
    folder = cache(pipeline)
    journal = folder.journal()
    kept = journal[:12]
    folder.keep_journal_lines(12)

    build_branching(tmp_path / "cache", log).run()

    text = folder.log_text
    for step, total in {"numbers": 8, "a": 6, "b": 5, "c": 10}.items():
        reused = sum(1 for r in kept if r["step"] == step)
        pattern = rf"Step '{step}': {total - reused} batch\(es\), \d+ row\(s\) computed; {reused} batch\(es\) reused"
        assert re.search(pattern, text), pattern


def test_resume_continues_the_generator_from_its_row_offset(tmp_path: Path, cache) -> None:
    log = tmp_path / "calls.jsonl"
    pipeline = build_branching(tmp_path / "cache", log)
    pipeline.run()
    folder = cache(pipeline)
    first = len(_calls(log))
    generator_lines = [i for i, r in enumerate(folder.journal()) if r["step"] == "numbers"]
    folder.keep_journal_lines(generator_lines[3] + 1)

    build_branching(tmp_path / "cache", log).run()

    offsets = [c["offset"] for c in _calls(log)[first:] if c["step"] == "numbers"]
    assert offsets == [16, 20, 24, 28]


@pytest.mark.parametrize(
    ("executor", "keep"), [("inline", 1), ("inline", 4), ("inline", 9), ("inline", 14), ("processes", 9)]
)
def test_resumed_routing_is_the_same_as_the_uninterrupted_run(tmp_path: Path, cache, executor: str, keep: int) -> None:
    reference = _reference(tmp_path, build_routed)
    log = tmp_path / "calls.jsonl"
    pipeline = build_routed(tmp_path / "cache", log)
    pipeline.run()
    folder = cache(pipeline)
    journal = folder.journal()
    assert len(journal) > 14
    first_calls = _calls(log)
    folder.keep_journal_lines(keep)

    distiset = build_routed(tmp_path / "cache", log).run(executor=executor)

    assert {name: dd["train"].to_list() for name, dd in distiset.items()} == reference
    assert [r["id"] for r in distiset["default"]["train"]] == list(range(12))
    resumed_calls = _by_step(_calls(log)[len(first_calls) :])
    routed_records = [r for r in journal if r["step"] in ("x", "y", "z")]
    kept_seqs = {(r["step"], r["seq"]) for r in journal[:keep]}
    expected: dict[str, list] = {}
    first_by_step = _by_step(first_calls)
    for step in ("x", "y", "z"):
        non_empty = [
            r["seq"] for r in sorted(routed_records, key=lambda r: r["seq"]) if r["step"] == step and r["rows"] > 0
        ]
        lost = [call for seq, call in zip(non_empty, first_by_step.get(step, [])) if (step, seq) not in kept_seqs]
        if lost:
            expected[step] = lost
    assert {s: c for s, c in resumed_calls.items() if s in ("x", "y", "z")} == expected
