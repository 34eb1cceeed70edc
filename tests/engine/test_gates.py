"""The test gates: a step held at a point until the test opens it, without timed waits."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from tests.engine.faulty_steps import open_gate, wait_at_gate


def test_an_open_gate_lets_a_step_through_at_once(tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    open_gate(gate)  # nobody waits yet
    told: list[str] = []

    wait_at_gate(gate, lambda: told.append("here"), limit=5)

    assert told == ["here"]


def test_a_waiting_step_passes_once_the_test_opens_the_gate_after_the_announcement(tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    announced = threading.Event()
    passed = threading.Event()

    def step() -> None:
        wait_at_gate(gate, announced.set, limit=30)
        passed.set()

    thread = threading.Thread(target=step)
    thread.start()
    assert announced.wait(10)
    assert not passed.is_set()  # held: nothing has opened the gate
    open_gate(gate)
    thread.join(10)

    assert passed.is_set()
    assert gate.is_file()  # stays open for the next step
    wait_at_gate(gate, lambda: None, limit=5)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gate"]  # no temp FIFO left


def test_a_gate_never_opened_times_out(tmp_path: Path) -> None:
    with pytest.raises(TimeoutError, match="never opened"):
        wait_at_gate(tmp_path / "gate", lambda: None, limit=0.2)


def test_opening_a_gate_twice_is_harmless(tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    open_gate(gate)
    open_gate(gate)
    wait_at_gate(gate, lambda: None, limit=5)
