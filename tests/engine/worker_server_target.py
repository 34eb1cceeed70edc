"""Run a small processes pipeline into the cache folder ``argv[1]``; print how many child
processes this process has afterwards (the worker server outlives the run until exit)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from distil_dagster.pipeline import Pipeline
from distil_dagster.steps import LoadDataFromDicts
from tests.engine.faulty_steps import FreezeCount


def children() -> int:
    """Processes whose parent is this one (Linux ``/proc``)."""
    count = 0
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == os.getpid():
                count += 1
    return count


if __name__ == "__main__":
    with Pipeline(name="prestart", cache_dir=sys.argv[1]) as pipeline:
        LoadDataFromDicts(data=[{"id": i} for i in range(3)]) >> FreezeCount(name="frozen")
    distiset = pipeline.run(executor="processes")
    print("ROWS", len(distiset["default"]["train"]), "CHILDREN", children())
