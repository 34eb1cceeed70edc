"""What the fault scenarios share: running the fault child or the Dagster CLI, reading leaves, judging errors.

Every pipeline run happens in a child (``children/fault_target.py``, or ``dagster asset
materialize -f children/dagster_fault_definitions.py``) bounded by a timeout; this module only
reads the cache folder the children leave behind and compares it with a reference run of the
same spec, healed (cached per spec on the scenario object, like ``kill.py``).
"""

from __future__ import annotations

import json
import signal
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from distil_dagster.distiset import create_distiset
from distil_dagster.errors import CacheCorruptedError
from tests.reliability.children.pipelines import Spec
from tests.reliability.harness import ROOT, Child, Outcome, child_env, compare_rows, python, run_child

__all__ = [
    "DAGSTER_DEFINITIONS",
    "FAULT_TARGET",
    "References",
    "check_dagster_failure",
    "dagster_home",
    "leaf_rows",
    "results",
    "run_dagster",
    "run_target",
    "signature_folder",
    "tail",
]

FAULT_TARGET = ROOT / "tests" / "reliability" / "children" / "fault_target.py"
DAGSTER_DEFINITIONS = "tests/reliability/children/dagster_fault_definitions.py"
RUN_TIMEOUT = 90.0
DAGSTER_TIMEOUT = 150.0
_METADATA = "distilabel_metadata"
_NOISE = ("pid",)


def tail(text: str, lines: int = 25) -> str:
    """The last lines of a child's output, for a report."""
    return "\n".join(text.strip().splitlines()[-lines:])


def run_target(
    spec: Spec,
    cache: Path,
    executor: str,
    *options: str,
    timeout: float = RUN_TIMEOUT,
    signum: int = signal.SIGTERM,
    signal_when: Callable[[str], bool] | None = None,
    after_signal: Callable[[], None] | None = None,
) -> Child:
    """``fault_target.py`` on ``spec`` (``options``: its further flags)."""
    args = [python(), str(FAULT_TARGET), "--spec", spec.to_json(), "--cache-dir", str(cache), "--executor", executor]
    return run_child([*args, *options], timeout, signum=signum, signal_when=signal_when, after_signal=after_signal)


def dagster_home(workdir: Path) -> Path:
    """A Dagster instance folder with telemetry off."""
    home = workdir / "dagster_home"
    home.mkdir(exist_ok=True)
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\nnux:\n  enabled: false\n")
    return home


def run_dagster(
    spec: Spec,
    cache: Path,
    workdir: Path,
    engine: dict[str, Any] | None = None,
    timeout: float = DAGSTER_TIMEOUT,
    signum: int = signal.SIGTERM,
    signal_when: Callable[[str], bool] | None = None,
    after_signal: Callable[[], None] | None = None,
) -> Child:
    """``dagster asset materialize --select '*'`` of ``spec``'s pipeline, its cache under ``cache``."""
    env = child_env(
        FAULT_SPEC=spec.to_json(),
        FAULT_ENGINE=json.dumps(engine or {}),
        DISTIL_DAGSTER_CACHE_DIR=str(cache),
        DAGSTER_HOME=str(dagster_home(workdir)),
    )
    args = [str(Path(python()).with_name("dagster")), "asset", "materialize", "-f", DAGSTER_DEFINITIONS]
    return run_child(
        [*args, "--select", "*"], timeout, env=env, signum=signum, signal_when=signal_when, after_signal=after_signal
    )


def results(child: Child) -> list[dict[str, Any]]:
    """The ``RESULT`` lines a fault child printed, in order."""
    return [json.loads(line[7:]) for line in child.stdout.splitlines() if line.startswith("RESULT ")]


def signature_folder(cache: Path, name: str) -> Path:
    """The pipeline's only signature folder under ``cache``."""
    folders = [p for p in (cache / name).iterdir() if p.is_dir()]
    if len(folders) != 1:
        raise AssertionError(f"expected one signature folder of {name!r} in {cache}, found {len(folders)}")
    return folders[0]


def _normal(row: dict[str, Any]) -> dict[str, Any]:
    """A row without run-dependent values; the metadata reduced to which steps recorded errors."""
    out = {k: v for k, v in row.items() if k not in _NOISE and k != _METADATA}
    metadata = row.get(_METADATA) or {}
    errors = sorted(k for k, v in metadata.items() if k.startswith("error_") and v is not None)
    if errors:
        out["errors"] = errors
    return out


def leaf_rows(cache: Path, name: str) -> dict[str, list[dict[str, Any]]]:
    """Every leaf of the pipeline's signature folder, rows normalized (see ``_normal``)."""
    distiset = create_distiset(signature_folder(cache, name), enable_metadata=True)
    return {leaf: [_normal(r) for r in dd["train"].to_list()] for leaf, dd in distiset.items()}


def compare_leaves(expected: dict[str, list[dict]], cache: Path, name: str, outcome: Outcome) -> None:
    """Fold the comparison of the final cache with ``expected`` into ``outcome``."""
    try:
        got = leaf_rows(cache, name)
    except CacheCorruptedError as exc:
        outcome.unclear.append(f"the final cache is unreadable: {exc}")
        return
    outcome.add(compare_rows(expected, got))


@dataclass
class References:
    """Reference leaves per spec: an uninterrupted inline run with the fault healed."""

    cache: dict[str, dict[str, list[dict]]] = field(default_factory=dict)

    def get(self, spec: Spec, workdir: Path) -> dict[str, list[dict]]:
        marker = workdir / "reference-healed"
        marker.touch()
        healed = spec.replace(marker=str(marker))  # the fault healed, the gate open
        # What does not change the healed output: the trigger, the marker, the announcements.
        neutral = {"marker": "", "fault_id": -1, "stall_mode": "sleep", "announce": [], "leaf_announce": []}
        key = healed.replace(**neutral, hold_load=False, gate="").to_json()
        if key not in self.cache:
            cache = workdir / "reference"
            child = run_target(healed.replace(announce=[], leaf_announce=[], hold_load=False, gate=""), cache, "inline")
            if child.returncode != 0:
                raise AssertionError(f"the reference run failed ({child.returncode}):\n{tail(child.stderr)}")
            self.cache[key] = leaf_rows(cache, spec.name)
        return self.cache[key]


def check_dagster_failure(child: Child, what: str, kinds: Iterable[str], names: Iterable[str]) -> list[str]:
    """Unclear-error findings of a Dagster CLI run expected to fail: the failed step event names the error."""
    if child.hung:
        return []
    if child.returncode == 0:
        return [f"{what}: dagster asset materialize succeeded; a failure was expected:\n{tail(child.stderr)}"]
    failures = [line for line in child.stderr.splitlines() if "STEP_FAILURE" in line]
    if not failures:
        return [f"{what}: no STEP_FAILURE event (exit code {child.returncode}):\n{tail(child.stderr)}"]
    text = child.stderr[child.stderr.index(failures[0]) :]
    kinds = tuple(kinds)
    problems = []
    if not any(k in failures[0] or k in text[:4000] for k in kinds):
        problems.append(f"{what}: the failed step does not show {'/'.join(kinds)}:\n{tail(text, 15)}")
    missing = [n for n in names if n not in text[:4000]]
    if missing:
        problems.append(f"{what}: the failed step does not name {missing}:\n{tail(text, 15)}")
    return problems
