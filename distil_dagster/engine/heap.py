"""Long-lived objects stay out of the cyclic garbage collector's full passes while a run lasts.

A full pass (generation 2) visits every container object of the process. After the imports of a
typical run (pyarrow, pandas, pydantic, ``datasets``, the user's models) that is hundreds of
thousands of objects, 50-130 ms a pass here, and the allocations of a run trigger several passes:
measured, 0.15-0.3 s of a 100,000-row run in the main process and as much again in each worker.
``gc.freeze()`` moves the objects alive at that moment to a permanent generation the passes skip;
objects created later are collected as usual (reference counting is untouched either way).
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator

__all__ = ["settled_heap"]


@contextlib.contextmanager
def settled_heap() -> Iterator[None]:
    """Freeze the objects alive now for the duration of the block, then unfreeze them.

    Does nothing when the process already froze objects (its own policy, or an enclosing block)
    or runs without the cyclic collector.
    """
    ours = gc.isenabled() and gc.get_freeze_count() == 0
    if ours:
        gc.freeze()
    try:
        yield
    finally:
        if ours:
            gc.unfreeze()
