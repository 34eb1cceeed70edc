"""The fake Hub: HTTP behaviour the clients rely on, and a real push / load round trip through it."""

from __future__ import annotations

import base64
import http.client
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from tests.hub.fake_hub import FakeHub

TOKEN = "hf_fake_token_for_tests"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
ROWS = [{"a": 1, "b": "x"}, {"a": 2, "b": "y"}, {"a": 3, "b": "z"}]


def _answer(connection: http.client.HTTPConnection) -> tuple[int, dict[str, str], bytes]:
    response = connection.getresponse()
    return response.status, dict(response.headers), response.read()


def test_http_answers_on_one_keep_alive_connection(fake_hub: FakeHub) -> None:
    connection = http.client.HTTPConnection(fake_hub.endpoint.removeprefix("http://"), timeout=10)
    connection.request("GET", "/api/datasets/someone/missing", headers=AUTH)
    status, headers, _ = _answer(connection)
    assert (status, headers["X-Error-Code"]) == (404, "RepoNotFound")
    connection.request("POST", "/api/repos/create", body=json.dumps({"name": "r", "organization": "someone"}))
    assert _answer(connection)[0] == 401  # writes need a token
    create = {"name": "r", "organization": "someone", "type": "dataset", "visibility": "private"}
    connection.request("POST", "/api/repos/create", body=json.dumps(create), headers=AUTH)
    assert _answer(connection)[0] == 200
    added = {"path": "dir/a.txt", "content": base64.b64encode(b"hello").decode(), "encoding": "base64"}
    lines = [{"key": "header", "value": {"summary": "Add a file", "description": ""}}, {"key": "file", "value": added}]
    chunks = (json.dumps(line).encode() + b"\n" for line in lines)  # a chunked request body
    connection.request("POST", "/api/datasets/someone/r/commit/main", body=chunks, headers=AUTH, encode_chunked=True)
    status, _, body = _answer(connection)
    commit = json.loads(body)["commitOid"]
    assert status == 200 and len(commit) == 40
    connection.request("HEAD", "/datasets/someone/r/resolve/main/dir/a.txt", headers=AUTH)
    status, headers, body = _answer(connection)
    assert (status, headers["Content-Length"], headers["X-Repo-Commit"], body) == (200, "5", commit, b"")
    connection.request("GET", "/datasets/someone/r/resolve/main/dir/a.txt", headers={**AUTH, "Range": "bytes=1-3"})
    status, headers, body = _answer(connection)
    assert (status, headers["Content-Range"], body) == (206, "bytes 1-3/5", b"ell")
    connection.request("GET", "/datasets/someone/r/resolve/main/dir/b.txt", headers=AUTH)
    status, headers, _ = _answer(connection)
    assert (status, headers["X-Error-Code"], headers["X-Repo-Commit"]) == (404, "EntryNotFound", commit)
    connection.request("GET", "/datasets/someone/r/resolve/main/dir/a.txt")
    assert _answer(connection)[0] == 401  # a private repo is not readable without a token
    connection.request("GET", "/api/datasets/someone/r/tree/main?recursive=true", headers=AUTH)
    paths = [(entry["type"], entry["path"]) for entry in json.loads(_answer(connection)[2])]
    assert paths == [("directory", "dir"), ("file", ".gitattributes"), ("file", "dir/a.txt")]
    connection.request("GET", "/api/unknown", headers=AUTH)
    assert _answer(connection)[0] == 404
    connection.close()
    files = fake_hub.files("someone/r")
    assert sorted(files) == [".gitattributes", "dir/a.txt"] and files["dir/a.txt"] == b"hello"
    assert fake_hub.repos() == {"someone/r": True}
    assert fake_hub.commits("someone/r") == ["initial commit", "Add a file"]
    assert fake_hub.unhandled == ["GET /api/unknown"]


@pytest.mark.slow
def test_datasets_push_to_hub_and_load_dataset_round_trip(fake_hub: FakeHub, tmp_path: Path) -> None:
    env = {name: value for name, value in os.environ.items() if name not in ("HF_HUB_OFFLINE", "HF_TOKEN")}
    env |= fake_hub.client_env()  # HF_ENDPOINT, HF_HUB_DISABLE_XET=1, HF_HUB_DISABLE_TELEMETRY=1
    env |= {"HF_HOME": str(tmp_path / "hf-home"), "HF_DATASETS_CACHE": str(tmp_path / "datasets-cache")}
    script = Path(__file__).with_name("push_script.py")
    done = subprocess.run(
        [sys.executable, str(script), "someone/demo"], env=env, capture_output=True, text=True, timeout=180
    )
    assert done.returncode == 0, done.stderr[-4000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["rows"] == ROWS  # load_dataset read the first config back through the Hub API
    assert result["configs"] == ["first", "second"]

    files = fake_hub.files("someone/demo")
    first, second = "first/train-00000-of-00001.parquet", "second/train-00000-of-00001.parquet"
    assert sorted(result["files"]) == sorted(files)
    assert {first, second, "README.md", "pipeline.yaml"} <= set(files)
    assert pq.read_table(io.BytesIO(files[first])).to_pylist() == ROWS  # LFS content, not a pointer
    assert pq.read_table(io.BytesIO(files[second])).to_pylist() == [{"c": 1.5}]
    assert files["pipeline.yaml"] == b"name: x\n"
    readme = files["README.md"].decode()
    header = yaml.safe_load(readme.split("---")[1])
    assert [config["config_name"] for config in header["configs"]] == ["first", "second"]
    assert readme.endswith("Pushed by the fake Hub test.\n")
    assert fake_hub.repos() == {"someone/demo": True}  # created private by the first push
    assert f"Bearer {TOKEN}" in fake_hub.authorizations
    assert fake_hub.unhandled == []
