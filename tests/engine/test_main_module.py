"""Scripts and sessions whose main module workers cannot import again run with ``fork``.

distilabel forks its workers, so a script without ``if __name__ == "__main__":`` and steps defined
in a notebook or ``python -c`` work there; forkserver workers would import the script again (and
start the pipeline again) or fail to find the steps. Here they fork, and say so in the log.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from distil_dagster.engine import main_module
from distil_dagster.engine.main_module import fork_reason, start_method_for
from distil_dagster.errors import PipelineValidationError
from distil_dagster.steps import LoadDataFromDicts

SCRIPT = """
import sys
from distil_dagster.pipeline import Pipeline
from distil_dagster.steps import LoadDataFromDicts, StepInput, step

@step(inputs=["a"], outputs=["b"])
def Double(inputs: StepInput):
    for row in inputs:
        row["b"] = row["a"] * 2
    yield inputs

with Pipeline(name="unguarded", cache_dir=sys.argv[1] if len(sys.argv) > 1 else CACHE) as pipeline:
    LoadDataFromDicts(name="load", data=[{"a": i} for i in range(5)], batch_size=2) >> Double(name="double")
distiset = pipeline.run(use_cache=False)
print("ROWS", distiset["default"]["train"].to_list())
"""


@pytest.mark.slow
@pytest.mark.parametrize("how", ["script", "command", "stdin"])
def test_a_run_started_at_import_time_or_from_a_session_forks_its_workers(tmp_path: Path, how: str) -> None:
    cache = tmp_path / "cache"
    source = SCRIPT.replace("CACHE", repr(str(cache)))
    script = tmp_path / "unguarded.py"
    script.write_text(source)
    command = {
        "script": [sys.executable, str(script), str(cache)],
        "command": [sys.executable, "-c", source],
        "stdin": [sys.executable, "-"],
    }[how]

    done = subprocess.run(
        command, input=source if how == "stdin" else None, capture_output=True, text=True, timeout=120, cwd=tmp_path
    )

    assert done.returncode == 0, done.stderr
    assert "ROWS " + repr([{"a": i, "b": 2 * i} for i in range(5)]) in done.stdout
    reason = {
        "script": 'the script unguarded.py has no `if __name__ == "__main__":` block',
        "command": "steps ['double'] are defined in an interactive session",
        "stdin": "the main module comes from <stdin>",
    }[how]
    assert f"Worker processes start with fork: {reason}" in done.stderr
    log = next(cache.glob("unguarded/*/pipeline.log")).read_text()
    assert "Worker processes start with fork" in log


def _main_script(monkeypatch: pytest.MonkeyPatch, path: Path) -> None:
    monkeypatch.setattr(sys.modules["__main__"], "__file__", str(path), raising=False)


@pytest.mark.parametrize(
    "guard", ['if __name__ == "__main__":\n    run()\n', "if '__main__' == __name__:\n    run()\n"]
)
def test_a_guarded_script_keeps_forkserver(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, guard: str) -> None:
    script = tmp_path / "guarded.py"
    script.write_text("def run():\n    pass\n\n" + guard)
    _main_script(monkeypatch, script)

    assert fork_reason([]) is None
    assert start_method_for(None, []) == "forkserver"


def test_a_guard_inside_a_function_does_not_count(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    script = tmp_path / "nested.py"
    script.write_text('def main():\n    if __name__ == "__main__":\n        pass\n\nmain()\n')
    _main_script(monkeypatch, script)

    assert start_method_for(None, []) == "fork"


def test_a_configured_start_method_is_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    script = tmp_path / "unguarded.py"
    script.write_text("print('runs at import')\n")
    _main_script(monkeypatch, script)

    assert start_method_for("forkserver", []) == "forkserver"
    assert start_method_for("spawn", []) == "spawn"


def test_steps_from_importable_modules_need_no_fork_in_a_session(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(sys.modules["__main__"], "__file__", raising=False)

    assert fork_reason([LoadDataFromDicts(name="load", data=[{"a": 1}])]) is None


def test_where_fork_is_not_the_way_the_error_says_what_to_do(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    script = tmp_path / "unguarded.py"
    script.write_text("print('runs at import')\n")
    _main_script(monkeypatch, script)
    monkeypatch.setattr(main_module.sys, "platform", "darwin")

    with pytest.raises(PipelineValidationError, match=r"the script unguarded\.py has no .*executor=\"inline\""):
        start_method_for(None, [])


def test_the_inline_executor_never_asks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, rows) -> None:
    from distil_dagster.pipeline import Pipeline

    script = tmp_path / "unguarded.py"
    script.write_text("print('runs at import')\n")
    _main_script(monkeypatch, script)
    monkeypatch.setattr(main_module.sys, "platform", "darwin")
    with Pipeline(name="inline", cache_dir=tmp_path / "cache") as pipeline:
        LoadDataFromDicts(name="load", data=[{"a": 1}])

    assert rows(pipeline.run(executor="inline")) == [{"a": 1}]
