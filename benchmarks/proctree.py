"""Run a benchmark child in its own session, bounded by a timeout, and measure its process tree.

Memory method: psutil is not installed in either venv here, so a watcher thread reads ``/proc``
directly. The child is started with ``start_new_session=True``; every process whose session id
is the child's pid belongs to its tree, including workers that a forkserver (a grandchild) forks,
and processes re-parented to init after their parent died. Every ``interval`` seconds the watcher
reads ``VmRSS`` and ``VmHWM`` from ``/proc/<pid>/status`` of each of them and keeps:

- ``peak_rss``: the largest *sum of VmRSS over the tree at one sampling instant* — the memory the
  tree held at once (may miss a spike shorter than the interval; pages shared between a forked
  worker and its parent are counted in both, as ``ps`` does);
- ``peak_pss``: the same with ``Pss`` from ``/proc/<pid>/smaps_rollup`` (shared pages divided among
  the processes sharing them: the honest sum for forked workers);
- ``hwm_sum``: the sum over every process ever seen of its last-read ``VmHWM`` (its own peak) —
  an upper bound of the tree's peak (the processes' peaks need not coincide).

``resource.getrusage(RUSAGE_CHILDREN)`` is not used for the tree: it reports the largest single
descendant that was waited for, not a sum, and misses workers a forkserver reaps. The workloads
report their own ``RUSAGE_SELF`` max RSS as a cross-check of the main process.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["ChildRun", "child_env", "run_child", "session_pids"]

PYCACHE = Path(__file__).resolve().parent / ".work" / "pycache"


def child_env(**extra: str) -> dict[str, str]:
    """The environment for a benchmark child.

    Bytecode is cached under ``benchmarks/.work/pycache`` (``PYTHONPYCACHEPREFIX``) even when the
    caller sets ``PYTHONDONTWRITEBYTECODE``: otherwise the editable distil_dagster sources are
    compiled again in every process while distilabel's installed ``.pyc`` files are used, and
    nothing is written into the package's own folders.
    """
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(PYCACHE)
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def session_pids(sid: int) -> list[int]:
    """Pids of the live processes in session ``sid`` (zombies left out)."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as handle:
                stat = handle.read()
        except OSError:
            continue
        fields = stat[stat.rindex(b")") + 2 :].split()
        # fields: state ppid pgrp session ...
        if int(fields[3]) == sid and fields[0] != b"Z":
            pids.append(int(entry))
    return pids


def _pss_kb(pid: int) -> int:
    """``Pss`` in kB from ``smaps_rollup`` (0 when unavailable)."""
    try:
        with open(f"/proc/{pid}/smaps_rollup", "rb") as handle:
            for line in handle:
                if line.startswith(b"Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _status_kb(pid: int) -> tuple[int, int] | None:
    """``(VmRSS, VmHWM)`` in kB, or None for a gone process or a zombie."""
    try:
        with open(f"/proc/{pid}/status", "rb") as handle:
            text = handle.read()
    except OSError:
        return None
    rss = hwm = None
    for line in text.splitlines():
        if line.startswith(b"VmRSS:"):
            rss = int(line.split()[1])
        elif line.startswith(b"VmHWM:"):
            hwm = int(line.split()[1])
    if rss is None or hwm is None:
        return None
    return rss, hwm


@dataclass
class ChildRun:
    """What one child run did."""

    returncode: int | None  # None: still running at the timeout (a hang), then killed
    wall_seconds: float
    stdout: str
    stderr: str
    timed_out: bool = False
    peak_rss_kb: int = 0
    peak_pss_kb: int = 0
    hwm_sum_kb: int = 0
    processes_seen: int = 0
    leftovers: list[int] = field(default_factory=list)  # session processes alive after the main one exited

    @property
    def hang(self) -> bool:
        return self.timed_out


class _Watcher(threading.Thread):
    def __init__(self, sid: int, interval: float) -> None:
        super().__init__(daemon=True, name="proctree-watcher")
        self.sid = sid
        self.interval = interval
        self.halt = threading.Event()
        self.peak_rss = 0
        self.peak_pss = 0
        self.hwm: dict[int, int] = {}

    def sample(self) -> None:
        total = total_pss = 0
        for pid in session_pids(self.sid):
            got = _status_kb(pid)
            if got is None:
                continue
            rss, hwm = got
            total += rss
            total_pss += _pss_kb(pid)
            self.hwm[pid] = max(self.hwm.get(pid, 0), hwm)
        self.peak_rss = max(self.peak_rss, total)
        self.peak_pss = max(self.peak_pss, total_pss)

    def run(self) -> None:
        while not self.halt.is_set():
            self.sample()
            self.halt.wait(self.interval)


def _kill_session(sid: int) -> list[int]:
    """SIGKILL what is left of the session we started (its group first, then stragglers by pid)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(sid, signal.SIGKILL)
    left = session_pids(sid)
    for pid in left:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    return left


def run_child(
    cmd: Sequence[str],
    *,
    timeout: float,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    watch: bool = True,
    interval: float = 0.02,
    log_dir: Path | None = None,
    grace: float = 5.0,
) -> ChildRun:
    """Run ``cmd`` in a new session; kill the whole session at ``timeout`` (reported as a hang).

    stdout and stderr go to files in ``log_dir`` (a pipe could fill up and stall a chatty child).
    """
    log_dir = log_dir or Path(os.environ.get("TMPDIR", "/tmp"))
    log_dir.mkdir(parents=True, exist_ok=True)
    out_path, err_path = log_dir / "stdout.txt", log_dir / "stderr.txt"
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(
            list(cmd), cwd=cwd, env=env, stdout=out, stderr=err, stdin=subprocess.DEVNULL, start_new_session=True
        )
        watcher = _Watcher(proc.pid, interval) if watch else None
        if watcher is not None:
            watcher.start()
        timed_out = False
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            _kill_session(proc.pid)
            proc.wait()
        wall = time.perf_counter() - start
        if watcher is not None:
            watcher.halt.set()
            watcher.join()
    # Helpers (a forkserver, a resource tracker) exit when they see the main process gone; anything
    # still alive in the session after ``grace`` seconds is reported and ended.
    deadline = time.monotonic() + grace
    while not timed_out and session_pids(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    leftovers = [] if timed_out else _kill_session(proc.pid)
    return ChildRun(
        returncode=None if timed_out else proc.returncode,
        wall_seconds=wall,
        stdout=out_path.read_text(errors="replace"),
        stderr=err_path.read_text(errors="replace"),
        timed_out=timed_out,
        peak_rss_kb=watcher.peak_rss if watcher else 0,
        peak_pss_kb=watcher.peak_pss if watcher else 0,
        hwm_sum_kb=sum(watcher.hwm.values()) if watcher else 0,
        processes_seen=len(watcher.hwm) if watcher else 0,
        leftovers=leftovers,
    )
