"""The hypothesis fuzz targets (``fuzz_targets.py``): no example may escape.

``DISTIL_DAGSTER_FUZZ_EXAMPLES`` sets the examples per target (default 40; the large setting is
1000). An escape is an error that is not a ``DistilDagsterError`` naming what is wrong, a file
written outside the cache folder, or a run that returns wrong data.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.reliability.fuzz_targets import TARGETS

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = int(os.environ.get("DISTIL_DAGSTER_FUZZ_EXAMPLES", "40"))


# The thread method: a timeout that fires inside hypothesis's engine must end the test, not be
# taken for a failing example and shrunk.
@pytest.mark.timeout(max(120, EXAMPLES * 2), method="thread")
@pytest.mark.parametrize("target", sorted(TARGETS))
def test_no_example_escapes(target: str) -> None:
    figures = TARGETS[target](EXAMPLES)

    print(f"{target}: {figures.examples} examples in {figures.seconds:.1f} s")
    assert not figures.escapes, f"{len(figures.escapes)} escape(s) in target {target!r}:\n" + "\n".join(
        f"- {escape}" for escape in figures.escapes
    )
    assert figures.examples >= EXAMPLES


_DRIVER_DEMO = """
import json
from hypothesis import strategies as st
from tests.reliability.fuzz_targets import dde_problem, run_target
figures = run_target("demo", 50, st.integers(), lambda x: dde_problem(ValueError(x), []) if x > 10 else None)
print(json.dumps(figures.escapes))
"""


def test_the_driver_reports_and_shrinks_an_escape() -> None:
    # In a fresh interpreter: what earlier tests left in this process (a Ray runtime, model
    # threads) must not change hypothesis's shrinking.
    done = subprocess.run(
        [sys.executable, "-c", _DRIVER_DEMO], cwd=ROOT, capture_output=True, text=True, timeout=50, check=True
    )
    escapes = json.loads(done.stdout.strip().splitlines()[-1])

    assert escapes[0].startswith("not a DistilDagsterError: ValueError")
    assert escapes[-1].startswith("shrunk: not a DistilDagsterError: ValueError") and "11" in escapes[-1]
