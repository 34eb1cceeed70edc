"""The ``distil-dagster`` command: pipeline run/info from a pipeline.yaml, cache list/clean."""

from __future__ import annotations

import contextlib
import functools
import http.server
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from distil_dagster.cli import build_parser, main
from distil_dagster.distiset import create_distiset
from distil_dagster.examples.pipelines import build_instructions_pipeline

_HOLD = (
    "import sys; from filelock import FileLock; lock = FileLock(sys.argv[1]); lock.acquire(); "
    "print('held', flush=True); sys.stdin.read()"
)


@pytest.fixture
def finished(tmp_path: Path) -> Path:
    """The example pipeline run once; returns its signature folder."""
    pipeline = build_instructions_pipeline(cache_dir=tmp_path / "cache")
    pipeline.run(executor="inline")
    (folder,) = (tmp_path / "cache" / pipeline.name).iterdir()
    return folder


def test_pipeline_info_and_run_from_the_cached_yaml(
    finished: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["pipeline", "info", "--config", str(finished / "pipeline.yaml")]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["signature"] == finished.name
    assert sorted(info["leaves"]) == ["grouped_responses", "ranked_instructions"]
    other = tmp_path / "other"
    code = main(
        [
            "pipeline",
            "run",
            "--config",
            str(finished / "pipeline.yaml"),
            "--cache-dir",
            str(other),
            "--param",
            "concise.template=Short: {instruction}",
        ]
    )
    assert code == 0
    (folder,) = (other / "instructions-demo").iterdir()
    assert folder.name != finished.name  # a runtime parameter changes the signature
    rows = create_distiset(folder)["grouped_responses"]["train"].to_list()
    assert any(g.startswith("Short: ") for r in rows for g in r["generations"])


def test_cache_list_shows_status_rows_and_size(finished: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cache", "list", "--cache-dir", str(finished.parent.parent)]) == 0
    out = capsys.readouterr().out
    assert "instructions-demo" in out and finished.name[:12] in out and "finished" in out
    assert " 40 " in out  # rows of the two leaves


def test_cache_clean_is_a_dry_run_unless_yes(finished: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = str(finished.parent.parent)
    assert main(["cache", "clean", "--cache-dir", root, "--pipeline", "instructions-demo"]) == 0
    assert "Would remove" in capsys.readouterr().out and finished.exists()
    assert main(["cache", "clean", "--cache-dir", root, "--signature", finished.name[:8], "--yes"]) == 0
    assert "Removed" in capsys.readouterr().out and not finished.exists()


def test_cache_clean_skips_a_folder_in_use_and_needs_a_filter(
    finished: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = str(finished.parent.parent)
    assert main(["cache", "clean", "--cache-dir", root]) == 2
    assert "choose what to remove" in capsys.readouterr().err
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLD, str(finished / ".lock")], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        assert main(["cache", "clean", "--cache-dir", root, "--all", "--yes"]) == 0
        assert "a run is using it" in capsys.readouterr().out and finished.exists()
    finally:
        holder.communicate("", timeout=30)


class _Files(http.server.SimpleHTTPRequestHandler):
    """Serves a folder; records the ``Authorization`` header of every request on the server."""

    def do_GET(self) -> None:
        self.server.authorizations.append(self.headers.get("Authorization"))  # type: ignore[attr-defined]
        super().do_GET()

    def log_message(self, format: str, *args: object) -> None:  # keep the test output quiet
        pass


@contextlib.contextmanager
def _serve(directory: Path) -> Iterator[tuple[str, list[str | None]]]:
    """``directory`` over HTTP on 127.0.0.1: its base URL and the Authorization headers seen."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Files, directory=str(directory)))
    server.authorizations = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", server.authorizations  # type: ignore[attr-defined]
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def served(finished: Path) -> Iterator[tuple[str, list[str | None]]]:
    """The signature folder over HTTP on 127.0.0.1: its base URL and the Authorization headers seen."""
    with _serve(finished) as answer:
        yield answer


def test_pipeline_info_from_a_url_sends_the_hub_token_only_to_the_hub(
    served: tuple[str, list[str | None]],
    finished: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    base, authorizations = served
    monkeypatch.setenv("HF_TOKEN", "hf_cli_url_token")

    monkeypatch.setenv("HF_ENDPOINT", "https://hub.example")
    assert main(["pipeline", "info", "--config", f"{base}/pipeline.yaml"]) == 0
    assert json.loads(capsys.readouterr().out)["signature"] == finished.name
    monkeypatch.setenv("HF_ENDPOINT", base)
    assert main(["pipeline", "info", "--config", f"{base}/pipeline.yaml"]) == 0

    assert authorizations == [None, "Bearer hf_cli_url_token"]
    assert main(["pipeline", "info", "--config", f"{base}/missing.yaml"]) == 2
    assert f"{base}/missing.yaml: cannot read pipeline YAML (HTTP Error 404" in capsys.readouterr().err


_SCRIPT = """
from pathlib import Path

from distil_dagster.pipeline import Pipeline
from distil_dagster.steps import LoadDataFromDicts, StepInput, step

from script_helpers import OFFSET  # a module next to the script, as `python script.py` would find it


@step(inputs=["id"], outputs=["shifted"])
def Shift(inputs: StepInput):
    for row in inputs:
        row["shifted"] = row["id"] + OFFSET
    yield inputs


with Pipeline(name="from-script") as pipeline:
    LoadDataFromDicts(name="load", data=[{"id": i} for i in range(7)], batch_size=3) >> Shift(name="shift")

other = pipeline

if __name__ == "__main__":
    Path(__file__).with_name("main-block-ran").touch()
"""


@pytest.fixture
def script(tmp_path: Path) -> Path:
    """A pipeline script importing a module next to it; its ``__main__`` block leaves a marker file."""
    folder = tmp_path / "scripts"
    folder.mkdir()
    (folder / "script_helpers.py").write_text("OFFSET = 100\n")
    path = folder / "make_data.py"
    path.write_text(_SCRIPT)
    return path


@pytest.mark.parametrize("executor", ["inline", "processes"])
def test_pipeline_run_from_a_script_imports_it_without_its_main_block(
    script: Path, tmp_path: Path, executor: str, capsys: pytest.CaptureFixture[str]
) -> None:
    cache = tmp_path / "cache"
    args = ["pipeline", "run", "--script", str(script), "--cache-dir", str(cache), "--executor", executor]
    assert main(args) == 0

    (folder,) = (cache / "from-script").iterdir()
    rows = create_distiset(folder)["default"]["train"].to_list()
    assert rows == [{"id": i, "shifted": i + 100} for i in range(7)]  # the workers imported it too
    assert not (script.parent / "main-block-ran").exists()
    assert "default" in capsys.readouterr().out


def test_pipeline_run_script_errors_name_the_script(
    script: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["pipeline", "run", "--cache-dir", str(tmp_path / "cache")]
    assert main([*base, "--script", str(script), "--pipeline-variable-name", "nope"]) == 2
    err = capsys.readouterr().err
    assert f"{script}: the script defines no Pipeline called 'nope'" in err and "['other', 'pipeline']" in err

    broken = script.with_name("broken.py")
    broken.write_text("raise RuntimeError('no data today')\n")
    assert main([*base, "--script", str(broken)]) == 2
    assert f"{broken}: the script raised RuntimeError while being imported: no data today" in capsys.readouterr().err

    assert main([*base, "--script", str(script.with_suffix(".txt"))]) == 2
    assert "must be a Python file (.py)" in capsys.readouterr().err
    assert main([*base, "--script", str(script), "--config", "pipeline.yaml"]) == 2
    assert "give either --config or --script" in capsys.readouterr().err
    assert main(base) == 2


def test_pipeline_run_script_from_a_url_needs_consent_and_leaves_the_working_directory_alone(
    script: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (script.parent / "script_helpers.py").unlink()  # a downloaded script stands alone
    script.write_text(_SCRIPT.replace("from script_helpers import OFFSET", "OFFSET = 5"))
    workdir = tmp_path / "workdir"
    workdir.mkdir()
    monkeypatch.chdir(workdir)
    cache = tmp_path / "cache"
    with _serve(script.parent) as (base, _):
        url = f"{base}/{script.name}"
        assert main(["pipeline", "run", "--script", url, "--cache-dir", str(cache), "--executor", "inline"]) == 2
        assert "confirm it on a terminal or pass --yes" in capsys.readouterr().err  # stdin is not a terminal
        assert not cache.exists()

        args = ["pipeline", "run", "--script", url, "--yes", "--cache-dir", str(cache), "--executor", "processes"]
        assert main(args) == 0
        assert main(["pipeline", "run", "--script", f"{base}/missing.py", "--yes", "--cache-dir", str(cache)]) == 2
        assert f"{base}/missing.py: cannot download the script (HTTP Error 404" in capsys.readouterr().err

    (folder,) = (cache / "from-script").iterdir()
    assert create_distiset(folder)["default"]["train"]["shifted"] == [i + 5 for i in range(7)]
    assert list(workdir.iterdir()) == []


def test_ignore_cache_is_distilabels_name_for_no_cache() -> None:
    assert build_parser().parse_args(["pipeline", "run", "--config", "p.yaml", "--ignore-cache"]).no_cache
