"""A time limit on a step call made in the calling process (the inline backend).

On the main thread a real-time timer (``SIGALRM``) interrupts the call, blocking system calls
included. On another thread (e.g. under a Dagster executor) the limit is delivered as an
asynchronous exception, which Python raises at the next bytecode: a call blocked inside C code
is interrupted only when it returns. Process backends enforce the limit by killing the worker.
"""

from __future__ import annotations

import ctypes
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

__all__ = ["Expired", "time_limit"]


class Expired(BaseException):
    """Raised inside a call that ran past its limit (a ``BaseException``: step retries ignore it)."""


@contextmanager
def time_limit(seconds: float | None) -> Iterator[None]:
    """Raise ``Expired`` in the body once it has run ``seconds`` (no limit when ``None``)."""
    if seconds is None:
        yield
        return
    if threading.current_thread() is threading.main_thread():
        with _alarm(seconds):
            yield
    else:
        with _async_exception(seconds):
            yield


@contextmanager
def _alarm(seconds: float) -> Iterator[None]:
    def expire(signum: int, frame: FrameType | None) -> None:
        raise Expired

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@contextmanager
def _async_exception(seconds: float) -> Iterator[None]:
    target = threading.get_ident()
    lock = threading.Lock()
    state = {"left": False}

    def expire() -> None:
        with lock:  # never raise into the thread once the body has left
            if not state["left"]:
                ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(target), ctypes.py_object(Expired))

    timer = threading.Timer(seconds, expire)
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()
        with lock:
            state["left"] = True
            # An exception set but not raised yet must not escape later, outside the body.
            ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(target), ctypes.c_void_p(0))
