"""Steps that misbehave on purpose, importable by worker processes."""

from __future__ import annotations

import contextlib
import errno
import os
import select
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path

from distil_dagster.steps import Step, StepInput
from distil_dagster.steps.typing import StepOutput


class Tag(Step):
    """Adds ``pid`` (the worker's process id) and ``double``; optionally misbehaves on one id.

    Attributes:
        fault: ``kill`` (SIGKILL itself), ``exit`` (``os._exit(3)``), ``raise`` or ``""``.
        fault_id: the row id that triggers the fault.
        signal_pid: with ``fault="sigint"``, the process to send SIGINT to.
        once_marker: a file: the fault fires only while it does not exist (then creates it).
    """

    fault: str = ""
    fault_id: int = -1
    signal_pid: int = 0
    once_marker: str = ""

    signature_exclude = frozenset({"signal_pid", "once_marker"})

    @property
    def inputs(self) -> list[str]:
        return ["id"]

    @property
    def outputs(self) -> list[str]:
        return ["pid", "double"]

    def process(self, *inputs: StepInput) -> StepOutput:
        rows = inputs[0]
        if any(r["id"] == self.fault_id for r in rows):
            if self.fault == "kill":
                os.kill(os.getpid(), signal.SIGKILL)
            if self.fault == "exit":
                os._exit(3)
            if self.fault == "raise":
                raise ValueError(f"boom on {self.fault_id}")
            if self.fault == "sigint" and not (self.once_marker and os.path.exists(self.once_marker)):
                if self.once_marker:
                    open(self.once_marker, "w").close()
                os.kill(self.signal_pid, signal.SIGINT)
        for row in rows:
            row["pid"] = os.getpid()
            row["double"] = row["id"] * 2
        yield rows


class FailingLoad(Step):
    """A step whose ``load()`` raises."""

    @property
    def inputs(self) -> list[str]:
        return ["id"]

    def load(self) -> None:
        raise RuntimeError("model weights not found")

    def process(self, *inputs: StepInput) -> StepOutput:
        yield inputs[0]


class DeviceProbe(Step):
    """Records the ``CUDA_VISIBLE_DEVICES`` its worker sees, and the worker's pid."""

    @property
    def inputs(self) -> list[str]:
        return ["id"]

    @property
    def outputs(self) -> list[str]:
        return [f"devices_{self.name}", f"pid_{self.name}"]

    def process(self, *inputs: StepInput) -> StepOutput:
        rows = inputs[0]
        for row in rows:
            row[f"devices_{self.name}"] = os.environ.get("CUDA_VISIBLE_DEVICES")
            row[f"pid_{self.name}"] = os.getpid()
        yield rows


class Flaky(Step):
    """Raises on the batch holding ``fault_id`` while the file ``heal_marker`` does not exist.

    ``calls_log`` (a file) gets one line per call: the first id of the batch.
    """

    fault_id: int = -1
    heal_marker: str = ""
    calls_log: str = ""

    signature_exclude = frozenset({"heal_marker", "calls_log"})

    @property
    def inputs(self) -> list[str]:
        return ["id"]

    @property
    def outputs(self) -> list[str]:
        return ["value"]

    def process(self, *inputs: StepInput) -> StepOutput:
        rows = inputs[0]
        if self.calls_log:
            with open(self.calls_log, "a") as log:
                log.write(f"{rows[0]['id']}\n")
        if any(r["id"] == self.fault_id for r in rows) and not os.path.exists(self.heal_marker):
            raise ValueError(f"flaky on {self.fault_id}")
        for row in rows:
            row["value"] = row["id"] * 10
        yield rows


class Stall(Step):
    """Stalls on the batch holding ``fault_id`` while the file ``heal_marker`` does not exist.

    ``mode``: ``sleep`` (blocked in a system call) or ``spin`` (a pure-Python loop).
    """

    fault_id: int = -1
    heal_marker: str = ""
    mode: str = "sleep"

    signature_exclude = frozenset({"heal_marker", "mode"})

    @property
    def inputs(self) -> list[str]:
        return ["id"]

    @property
    def outputs(self) -> list[str]:
        return ["value"]

    def process(self, *inputs: StepInput) -> StepOutput:
        rows = inputs[0]
        if any(r["id"] == self.fault_id for r in rows) and not os.path.exists(self.heal_marker):
            if self.mode == "sleep":
                time.sleep(3600)
            while not os.path.exists(self.heal_marker):
                pass
        for row in rows:
            row["value"] = row["id"] * 10
        yield rows


def _tell(line: str) -> None:
    """One line on stderr for the test driving the run, with this process group (its session)."""
    sys.stderr.write(f"{line} pgid={os.getpgid(0)}\n")
    sys.stderr.flush()


class Crash(Step):
    """Adds ``double``; on the batch holding ``fault_id`` its process dies (or signals), once.

    Attributes:
        fault: ``kill`` (SIGKILL itself), ``exit`` (``os._exit(3)``) or ``signal`` (send
            ``signum`` to ``signal_pid`` and go on).
        fault_id: the row id that triggers the fault.
        heal_marker: created just before the fault; while it exists the step behaves.
    """

    fault: str = "kill"
    fault_id: int = -1
    heal_marker: str = ""
    signal_pid: int = 0
    signum: int = int(signal.SIGTERM)

    signature_exclude = frozenset({"heal_marker", "signal_pid"})

    @property
    def inputs(self) -> list[str]:
        return ["id"]

    @property
    def outputs(self) -> list[str]:
        return ["double"]

    def process(self, *inputs: StepInput) -> StepOutput:
        rows = inputs[0]
        if any(r["id"] == self.fault_id for r in rows) and not os.path.exists(self.heal_marker):
            open(self.heal_marker, "w").close()
            if self.fault == "signal":
                os.kill(self.signal_pid, self.signum)
            elif self.fault == "kill":
                os.kill(os.getpid(), signal.SIGKILL)
            else:
                os._exit(3)
        for row in rows:
            row["double"] = row["id"] * 2
        yield rows


class ExitOnLoad(Step):
    """Its ``load()`` exits the process (``os._exit(3)``) while ``heal_marker`` does not exist."""

    heal_marker: str = ""

    signature_exclude = frozenset({"heal_marker"})

    @property
    def inputs(self) -> list[str]:
        return ["id"]

    @property
    def outputs(self) -> list[str]:
        return ["loaded"]

    def load(self) -> None:
        super().load()
        if not os.path.exists(self.heal_marker):
            _tell(f"step {self.name} exits in load")
            os._exit(3)

    def process(self, *inputs: StepInput) -> StepOutput:
        rows = inputs[0]
        for row in rows:
            row["loaded"] = True
        yield rows


class Herald(Step):
    """Adds ``<column>`` (a hash of ``id``) and tells on stderr where it is, to be signalled there.

    ``herald <name> loading`` when ``load()`` starts (with ``hold_load``, it then waits at the
    gate ``gate``, see ``wait_at_gate``); ``herald <name> reached <id>`` when a batch
    holding one of ``announce`` starts (which then waits at ``gate``, if one is named). A test opens the gate once
    it has signalled, so the signal always lands in that phase, however slow the machine. Each
    line ends with ``pgid=<the process group>``.
    """

    column: str = "herald"
    hold_load: bool = False
    announce: list[int] = []
    gate: str = ""

    signature_exclude = frozenset({"hold_load", "announce", "gate"})

    @property
    def inputs(self) -> list[str]:
        return ["id"]

    @property
    def outputs(self) -> list[str]:
        return [self.column]

    def load(self) -> None:
        super().load()
        if self.hold_load:
            wait_at_gate(self.gate, lambda: _tell(f"herald {self.name} loading"))

    def process(self, *inputs: StepInput) -> StepOutput:
        rows = inputs[0]
        reached = [r["id"] for r in rows if r["id"] in self.announce]
        if reached:
            announce = lambda: _tell(f"herald {self.name} reached {reached[0]}")  # noqa: E731
            if self.gate:
                wait_at_gate(self.gate, announce)
            else:
                announce()
        for row in rows:
            row[self.column] = f"{self.name}-{row['id'] * 7919 % 10007}"
        yield rows


class Gate(Step):
    """Passes rows through; the batch holding ``gate_id`` waits at the gate ``gate_file``.

    It tells ``gate <name> waiting`` on stderr once waiting, and gives up (raises) after 60 s.
    """

    gate_id: int = -1
    gate_file: str = ""

    signature_exclude = frozenset({"gate_file"})

    @property
    def inputs(self) -> list[str]:
        return ["id"]

    def process(self, *inputs: StepInput) -> StepOutput:
        rows = inputs[0]
        if any(r["id"] == self.gate_id for r in rows):
            wait_at_gate(self.gate_file, lambda: _tell(f"gate {self.name} waiting"))
        yield rows


# -- gates: a test holds a step at one point until it opens the gate (an event, not a timed wait).
# A gate is a path. A regular file there is an open gate: a step arriving later passes at once. A
# step that arrives while the gate is closed puts a FIFO there, with itself as the reader, and
# waits (bounded) until ``open_gate`` writes to it; then it leaves a regular file, so the gate
# stays open. The FIFO is made under a temp name with its reader already open and linked into
# place, so an opener never finds a FIFO nobody reads. (Here, not in a module of their own: some
# targets load this file by path, without the ``tests`` package.)


def wait_at_gate(path: str | Path, announce: Callable[[], None], limit: float = 60.0) -> None:
    """``announce()`` once ready to be let through, then wait until the gate at ``path`` opens.

    Raises ``TimeoutError`` after ``limit`` seconds (a test that never opens it is still bounded).
    """
    path = Path(path)
    if path.is_file():
        announce()
        return
    fifo = path.with_name(f".{path.name}.{os.getpid()}.fifo")
    os.mkfifo(fifo, 0o600)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    try:
        try:
            os.link(fifo, path)
        except FileExistsError:  # opened meanwhile (a regular file)
            announce()
            return
        finally:
            fifo.unlink()
        announce()
        readable, _, _ = select.select([reader], [], [], limit)
        if not readable:
            raise TimeoutError(f"gate {path} never opened")
    finally:
        os.close(reader)
    path.unlink(missing_ok=True)
    path.touch()  # open from now on


def open_gate(path: str | Path) -> None:
    """Open the gate at ``path``: wake the step waiting there, or let the next one through."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # nobody waits: a regular file
    except FileExistsError:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
        except OSError as exc:
            if exc.errno == errno.ENXIO:  # a FIFO whose step already went through
                return
            raise
        with contextlib.suppress(BlockingIOError):
            os.write(fd, b"1")
    os.close(fd)


class FreezeCount(Step):
    """Adds ``frozen``: how many objects the process computing the batch has frozen (``gc.freeze``)."""

    @property
    def inputs(self) -> list[str]:
        return ["id"]

    @property
    def outputs(self) -> list[str]:
        return ["frozen"]

    def process(self, inputs: StepInput) -> StepOutput:  # type: ignore[override]
        import gc

        yield [{**row, "frozen": gc.get_freeze_count()} for row in inputs]
