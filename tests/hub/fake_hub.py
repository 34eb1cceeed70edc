"""A real Hugging Face Hub-compatible HTTP server on 127.0.0.1 for tests.

``FakeHub`` serves, from memory and on a free port, the part of the Hub API that ``huggingface_hub`` and
``datasets`` use to create a repo, commit files to it and read them back (``Dataset.push_to_hub``,
``upload_file``, ``DatasetCard.load``, ``HfFileSystem``, ``load_dataset``):

- ``POST /api/repos/create``, ``POST /api/validate-yaml`` (accepts any card);
- ``GET /api/{type}s/{repo}[/revision/{rev}]``: repo info with its siblings (``?blobs=1``: sizes, LFS);
- ``GET /api/{type}s/{repo}/refs``, ``GET /api/{type}s/{repo}/tree/{rev}[/{path}]``, ``POST .../paths-info/{rev}``;
- ``POST /api/{type}s/{repo}/preupload/{rev}``: "lfs" for binary, large or ``.gitattributes``-tracked files;
- ``POST /{prefix}{repo}.git/info/lfs/objects/batch`` then ``PUT /lfs-upload/{oid}``: the LFS "basic" transfer;
- ``POST /api/{type}s/{repo}/commit/{rev}``: the NDJSON commit (regular and LFS files, deleted files and
  folders, ``parentCommit`` checked: 412 if the branch moved), each commit getting a new 40-hex id;
- ``HEAD`` / ``GET /{prefix}{repo}/resolve/{rev}/{path}``: the content (byte ranges too) with the headers
  ``hf_hub_download`` needs (``X-Repo-Commit``, ``ETag``, ``X-Linked-Etag``, ``X-Linked-Size``).

A repo is created with one commit holding a short ``.gitattributes``, as on the Hub. Errors carry the
``X-Error-Code`` the client maps to exceptions (``RepoNotFound``, ``RevisionNotFound``, ``EntryNotFound``).
Writes need an ``Authorization: Bearer`` header (exactly ``token`` if one is given), and so do reads of private
repos. Every ``Authorization`` value received is recorded in ``authorizations``.

Not served: Xet storage. huggingface_hub uploads through Xet whenever ``hf_xet`` is installed, whatever the
server offers, so a client must run with ``HF_HUB_DISABLE_XET=1`` (``client_env()`` includes it); the Xet token
route answers 501 saying so. Nor pull requests, branches other than ``main``, tags, gated repos, users and
organizations (repo ids must be ``namespace/name``), ``expand`` listings, the dataset viewer, or anything
else: unhandled requests are answered 404, logged and listed in ``unhandled``.
"""

from __future__ import annotations

import base64
import contextlib
import fnmatch
import hashlib
import itertools
import json
import logging
import posixpath
import re
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, NamedTuple
from urllib.parse import parse_qs, unquote, urlsplit

__all__ = ["FakeHub"]

logger = logging.getLogger(__name__)

_API_TYPES = {"models": "model", "datasets": "dataset", "spaces": "space"}  # /api/{segment}/...
_URL_PREFIXES = {"datasets": "dataset", "spaces": "space"}  # /{segment}/{repo}/resolve/... (models: none)
_TYPE_PREFIXES = {"model": "", "dataset": "datasets/", "space": "spaces/"}
_GITATTRIBUTES = b"*.arrow filter=lfs diff=lfs merge=lfs -text\n*.parquet filter=lfs diff=lfs merge=lfs -text\n"
_LFS_MIN_SIZE = 10 * 1024 * 1024  # the Hub stores files this large with LFS whatever their kind
_RANGE = re.compile(r"bytes=(\d*)-(\d*)")
_JSON = "application/json"
_LFS_JSON = "application/vnd.git-lfs+json"
_INVALID_CREDENTIALS = "Invalid credentials in Authorization header"


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())


def _git_sha1(content: bytes) -> str:
    """The git blob id of ``content``."""
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


def _truthy(value: str | None) -> bool:
    return (value or "").lower() in ("1", "true")


# -- repositories ---------------------------------------------------------------------------------
class _Blob:
    """A file's content; an LFS file's git blob is its pointer."""

    def __init__(self, content: bytes, lfs: bool) -> None:
        self.content = content
        self.lfs = lfs
        self.sha256 = hashlib.sha256(content).hexdigest()
        self.pointer = f"version https://git-lfs.github.com/spec/v1\noid sha256:{self.sha256}\nsize {len(content)}\n"
        self.oid = _git_sha1(self.pointer.encode() if lfs else content)

    def entry(self, path: str) -> dict[str, Any]:
        """The blob as listed by ``tree`` and ``paths-info``."""
        entry: dict[str, Any] = {"type": "file", "oid": self.oid, "size": len(self.content), "path": path}
        if self.lfs:
            entry["lfs"] = {"oid": self.sha256, "size": len(self.content), "pointerSize": len(self.pointer)}
        return entry


class _Commit(NamedTuple):
    oid: str
    title: str
    parent: str | None
    files: dict[str, _Blob]
    date: str


@dataclass
class _Repo:
    repo_type: str
    repo_id: str
    private: bool
    created_at: str = field(default_factory=_now)
    commits: dict[str, _Commit] = field(default_factory=dict)
    branches: dict[str, str] = field(default_factory=dict)  # name -> commit oid

    def commit(self, revision: str) -> _Commit | None:
        """The commit a branch name or a commit id designates."""
        return self.commits.get(self.branches.get(revision, revision))

    def url(self, endpoint: str) -> str:
        return f"{endpoint}/{_TYPE_PREFIXES[self.repo_type]}{self.repo_id}"


def _dir_entry(path: str, files: dict[str, _Blob]) -> dict[str, Any]:
    oids = "".join(blob.oid for name, blob in sorted(files.items()) if name.startswith(f"{path}/"))
    return {"type": "directory", "oid": hashlib.sha1(oids.encode()).hexdigest(), "size": 0, "path": path}


def _listing(files: dict[str, _Blob], path: str, recursive: bool) -> list[dict[str, Any]] | None:
    """Entries under folder ``path`` ("" for the root), folders first; ``None`` if there is no such folder."""
    prefix = f"{path}/" if path else ""
    below = {name[len(prefix) :]: blob for name, blob in files.items() if name.startswith(prefix)}
    if path and not below:
        return None
    folders: set[str] = set()
    entries = []
    for relative, blob in sorted(below.items()):
        parents = relative.split("/")[:-1]
        folders.update("/".join(parents[: depth + 1]) for depth in range(len(parents)))
        if recursive or not parents:
            entries.append(blob.entry(prefix + relative))
    shown = sorted(folder for folder in folders if recursive or "/" not in folder)
    return [_dir_entry(prefix + folder, files) for folder in shown] + entries


def _is_lfs(path: str, size: int, sample: bytes, gitattributes: _Blob | None) -> bool:
    """Whether the Hub would store this file with LFS: binary, large, or tracked by ``.gitattributes``."""
    if size >= _LFS_MIN_SIZE or b"\0" in sample:
        return True
    lines = gitattributes.content.decode(errors="replace").splitlines() if gitattributes else []
    patterns = [line.split()[0] for line in lines if "filter=lfs" in line.split()[1:]]
    return any(fnmatch.fnmatchcase(path if "/" in p else posixpath.basename(path), p) for p in patterns)


# -- HTTP -----------------------------------------------------------------------------------------
class _Request(NamedTuple):
    method: str
    parts: list[str]  # the path's segments, each unquoted
    query: dict[str, str]
    headers: Message
    body: bytes

    @property
    def authorization(self) -> str:
        return self.headers.get("Authorization", "")

    def json(self) -> Any:
        return json.loads(self.body or b"null")


class _Response(NamedTuple):
    status: int
    body: bytes = b""
    content_type: str = _JSON
    headers: tuple[tuple[str, str], ...] = ()


def _json(data: Any, status: int = 200, content_type: str = _JSON) -> _Response:
    return _Response(status, json.dumps(data).encode(), content_type)


def _error(status: int, message: str, code: str | None = None, *headers: tuple[str, str]) -> _Response:
    extra = (("X-Error-Message", message), *((("X-Error-Code", code),) if code else ()), *headers)
    return _Response(status, json.dumps({"error": message}).encode(), _JSON, extra)


class _Handler(BaseHTTPRequestHandler):
    """Reads a request (``Content-Length`` or chunked body), lets the hub answer it, writes the answer."""

    protocol_version = "HTTP/1.1"  # keep-alive: every answer has a Content-Length
    disable_nagle_algorithm = True  # headers and body go out in two writes: no delayed-ACK stall
    server: _Server

    def do_GET(self) -> None:
        try:
            body = self._read_body()
        except ValueError as exc:
            self.send_error(400, f"Bad request body: {exc}")  # and closes the connection
            return
        response = self.server.hub._dispatch(self.command, self.path, self.headers, body)
        self.send_response(response.status)
        for name, value in response.headers:
            self.send_header(name, value)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(response.body)))  # for HEAD, that of the GET answer
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)

    do_HEAD = do_POST = do_PUT = do_DELETE = do_GET

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while size := int(self.rfile.readline(1024).split(b";", 1)[0].strip() or b"x", 16):
                chunks.append(self._read_exactly(size))
                if self.rfile.readline(1024).strip():
                    raise ValueError("chunk without CRLF")
            while self.rfile.readline(8192).strip():  # trailers, up to the blank line
                pass
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        if length < 0:
            raise ValueError("negative Content-Length")
        return self._read_exactly(length)

    def _read_exactly(self, size: int) -> bytes:
        data = self.rfile.read(size)
        if len(data) != size:
            raise ValueError("body shorter than announced")
        return data

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("fake hub: " + format, *args)


class _Server(ThreadingHTTPServer):
    """Tracks its connections, so that ``FakeHub.stop`` can end idle keep-alive ones and join every thread."""

    daemon_threads = False  # server_close() joins the connection threads

    def __init__(self, hub: FakeHub) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.hub = hub
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def end_connections(self) -> None:
        with self._connections_lock:
            for connection in self._connections:
                with contextlib.suppress(OSError):  # already closed by the client
                    connection.shutdown(socket.SHUT_RDWR)


# -- the hub --------------------------------------------------------------------------------------
_RepoRoute = Callable[[_Request, _Repo, str, str], _Response]


class FakeHub:
    """A Hub-compatible server in a background thread; use as a context manager or ``start()`` / ``stop()``.

    Attributes:
        endpoint: ``http://127.0.0.1:PORT``, for ``HF_ENDPOINT`` (set by ``start()``).
        token: if set, the only token accepted (``Authorization: Bearer <token>``); else any bearer token.
        authorizations: the distinct ``Authorization`` headers received ("" for requests without one).
        requests: ``"METHOD /path"`` of every request, in order.
        unhandled: the requests no route answered (answered 404).
    """

    def __init__(self, token: str | None = None) -> None:
        self.token = token
        self.endpoint = ""
        self.authorizations: set[str] = set()
        self.requests: list[str] = []
        self.unhandled: list[str] = []
        self._repos: dict[tuple[str, str], _Repo] = {}
        self._lfs: dict[str, bytes] = {}  # uploaded LFS objects by sha256
        self._counter = itertools.count()
        self._lock = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self) -> FakeHub:
        """Listen on a free port of 127.0.0.1 (clients may connect at once) and serve from a thread."""
        self._server = _Server(self)
        self.endpoint = f"http://127.0.0.1:{self._server.server_address[1]}"
        serve = self._server.serve_forever
        self._thread = threading.Thread(target=serve, kwargs={"poll_interval": 0.05}, daemon=True, name="fake-hub")
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, end open connections and wait for the threads; the stored repos stay readable."""
        if self._server is None:
            return
        self._server.shutdown()  # no more accepts
        self._server.end_connections()  # idle keep-alive connections read EOF
        self._server.server_close()  # joins the connection threads
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._server = self._thread = None

    def __enter__(self) -> FakeHub:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def client_env(self) -> dict[str, str]:
        """Environment variables for a client process (also unset ``HF_HUB_OFFLINE`` in it)."""
        return {"HF_ENDPOINT": self.endpoint, "HF_HUB_DISABLE_XET": "1", "HF_HUB_DISABLE_TELEMETRY": "1"}

    # -- inspection -----------------------------------------------------------------------------
    def files(self, repo_id: str, repo_type: str = "dataset", revision: str = "main") -> dict[str, bytes]:
        """The files of a repo at a revision, path -> content (LFS files resolved); ``KeyError`` if none."""
        with self._lock:
            commit = self._repos[(repo_type, repo_id)].commit(revision)
            if commit is None:
                raise KeyError(f"{repo_type} {repo_id} has no revision {revision!r}")
            return {path: blob.content for path, blob in sorted(commit.files.items())}

    def repos(self, repo_type: str = "dataset") -> dict[str, bool]:
        """The repos of a type: repo id -> whether it was created private."""
        with self._lock:
            return {repo_id: repo.private for (kind, repo_id), repo in self._repos.items() if kind == repo_type}

    def commits(self, repo_id: str, repo_type: str = "dataset", revision: str = "main") -> list[str]:
        """The titles of the commits of a branch, oldest first."""
        with self._lock:
            repo = self._repos[(repo_type, repo_id)]
            titles, commit = [], repo.commit(revision)
            while commit is not None:
                titles.append(commit.title)
                commit = repo.commits.get(commit.parent or "")
            return titles[::-1]

    # -- dispatch -------------------------------------------------------------------------------
    def _dispatch(self, method: str, target: str, headers: Message, body: bytes) -> _Response:
        url = urlsplit(target)
        query = {name: values[-1] for name, values in parse_qs(url.query).items()}
        request = _Request(method, [unquote(part) for part in url.path.split("/")[1:]], query, headers, body)
        with self._lock:
            self.requests.append(f"{method} {url.path}")
            self.authorizations.add(request.authorization)
            try:
                response = self._route(request)
            except (ValueError, KeyError, TypeError, AttributeError) as exc:  # a malformed JSON or base64 payload
                logger.warning("fake hub: bad request %s %s: %r", method, url.path, exc)
                return _error(400, f"Bad request: {type(exc).__name__}: {exc}")
            except Exception as exc:  # as a web framework does: answer 500 and go on serving
                logger.exception("fake hub: %s %s failed", method, url.path)
                return _error(500, f"{type(exc).__name__}: {exc}")
            if response is None:
                logger.warning("fake hub: no route for %s %s", method, url.path)
                self.unhandled.append(f"{method} {url.path}")
                return _error(404, f"No route for {method} {url.path}")
            return response

    def _route(self, request: _Request) -> _Response | None:
        parts, method = request.parts, request.method
        if parts[:1] == ["api"]:
            if parts == ["api", "repos", "create"] and method == "POST":
                return self._create_repo(request)
            if parts == ["api", "validate-yaml"] and method == "POST":
                return _json({"errors": [], "warnings": []})
            if len(parts) >= 4 and parts[1] in _API_TYPES:
                action = parts[4] if len(parts) > 4 else "revision"
                route = self._api_routes().get((method, action))
                if route is None:
                    return None
                revision = parts[5] if len(parts) > 5 else "main"
                return self._with_repo(request, _API_TYPES[parts[1]], parts[2:4], route, revision, parts[6:])
            return None
        if parts[:1] == ["lfs-upload"] and len(parts) == 2 and method == "PUT":
            return self._lfs_upload(request, parts[1])
        repo_type = _URL_PREFIXES.get(parts[0], "model")
        parts = parts[1:] if parts[0] in _URL_PREFIXES else parts
        if len(parts) >= 5 and parts[2] == "resolve" and method in ("GET", "HEAD"):
            return self._with_repo(request, repo_type, parts[:2], self._resolve, parts[3], parts[4:])
        if parts[2:] == ["info", "lfs", "objects", "batch"] and parts[1].endswith(".git") and method == "POST":
            name = [parts[0], parts[1].removesuffix(".git")]
            return self._with_repo(request, repo_type, name, self._lfs_batch, "main", [])
        return None

    def _api_routes(self) -> dict[tuple[str, str], _RepoRoute]:
        return {
            ("GET", "revision"): self._info,
            ("GET", "refs"): self._refs,
            ("GET", "tree"): self._tree,
            ("POST", "paths-info"): self._paths_info,
            ("POST", "preupload"): self._preupload,
            ("POST", "commit"): self._commit,
            ("GET", "xet-write-token"): self._no_xet,
            ("GET", "xet-read-token"): self._no_xet,
        }

    def _authorized(self, request: _Request) -> bool:
        auth = request.authorization
        return auth == f"Bearer {self.token}" if self.token else auth.startswith("Bearer ") and len(auth) > 7

    def _with_repo(
        self, request: _Request, repo_type: str, name: list[str], route: _RepoRoute, revision: str, path: list[str]
    ) -> _Response:
        """Call ``route`` with the repo, or answer 404 (no such repo) / 401 (private repo, or a write, without token)."""
        repo = self._repos.get((repo_type, "/".join(name)))
        if repo is None or (repo.private and not self._authorized(request)):
            status = 404 if request.authorization else 401  # the Hub tells neither which repos exist
            return _error(status, "Repository not found", "RepoNotFound")
        if request.method not in ("GET", "HEAD") and not self._authorized(request):
            return _error(401, _INVALID_CREDENTIALS)
        return route(request, repo, revision, "/".join(path))

    # -- routes ---------------------------------------------------------------------------------
    def _create_repo(self, request: _Request) -> _Response:
        if not self._authorized(request):
            return _error(401, _INVALID_CREDENTIALS)
        payload = request.json()
        repo_type = payload.get("type") or "model"
        if not payload.get("organization") or repo_type not in _TYPE_PREFIXES:
            return _error(400, "This fake Hub needs a repo id 'namespace/name' and a model, dataset or space type")
        repo_id = f"{payload['organization']}/{payload['name']}"
        if (repo_type, repo_id) in self._repos:
            repo = self._repos[(repo_type, repo_id)]
            message = f"You already created this {repo_type} repo"
            return _Response(409, json.dumps({"error": message, "url": repo.url(self.endpoint)}).encode())
        private = payload.get("visibility") == "private" or payload.get("private") is True
        repo = self._repos[(repo_type, repo_id)] = _Repo(repo_type, repo_id, private)
        self._new_commit(repo, "main", "initial commit", {".gitattributes": _Blob(_GITATTRIBUTES, lfs=False)})
        return _json({"url": repo.url(self.endpoint), "name": repo_id, "id": repo_id})

    def _new_commit(self, repo: _Repo, branch: str, title: str, files: dict[str, _Blob]) -> _Commit:
        parent = repo.branches.get(branch)
        seed = f"{repo.repo_type}/{repo.repo_id}\n{parent}\n{title}\n{next(self._counter)}\n{time.time_ns()}"
        commit = _Commit(hashlib.sha1(seed.encode()).hexdigest(), title, parent, files, _now())
        repo.commits[commit.oid] = commit
        repo.branches[branch] = commit.oid
        return commit

    def _info(self, request: _Request, repo: _Repo, revision: str, path: str) -> _Response:
        commit = repo.commit(revision)
        if commit is None or path:
            return _error(404, f"Invalid rev id: {revision}", "RevisionNotFound")
        blobs = _truthy(request.query.get("blobs"))
        siblings = []
        for name, blob in sorted(commit.files.items()):
            sibling: dict[str, Any] = {"rfilename": name}
            if blobs:
                entry = blob.entry(name)
                sibling.update(size=entry["size"], blobId=entry["oid"])
                if blob.lfs:
                    sibling["lfs"] = {"sha256": blob.sha256, "size": entry["size"], "pointerSize": len(blob.pointer)}
            siblings.append(sibling)
        info = {
            "_id": hashlib.sha1(repo.repo_id.encode()).hexdigest()[:24],
            "id": repo.repo_id,
            "author": repo.repo_id.split("/")[0],
            "sha": commit.oid,
            "private": repo.private,
            "gated": False,
            "disabled": False,
            "createdAt": repo.created_at,
            "lastModified": commit.date,
            "tags": [],
            "downloads": 0,
            "likes": 0,
            "siblings": siblings,
        }
        return _json(info)

    def _refs(self, request: _Request, repo: _Repo, revision: str, path: str) -> _Response:
        branches = repo.branches.items()
        refs = [{"name": name, "ref": f"refs/heads/{name}", "targetCommit": oid} for name, oid in branches]
        return _json({"branches": refs, "converts": [], "tags": [], "pullRequests": []})

    def _tree(self, request: _Request, repo: _Repo, revision: str, path: str) -> _Response:
        commit = repo.commit(revision)
        if commit is None:
            return _error(404, f"Invalid rev id: {revision}", "RevisionNotFound")
        entries = _listing(commit.files, path.strip("/"), _truthy(request.query.get("recursive")))
        if entries is None:
            return _error(404, f"Entry not found: {path}", "EntryNotFound", ("X-Repo-Commit", commit.oid))
        return _json(entries)

    def _paths_info(self, request: _Request, repo: _Repo, revision: str, path: str) -> _Response:
        commit = repo.commit(revision)
        if commit is None:
            return _error(404, f"Invalid rev id: {revision}", "RevisionNotFound")
        if "json" in request.headers.get("Content-Type", ""):
            paths = request.json().get("paths") or []
        else:
            paths = parse_qs(request.body.decode()).get("paths", [])
        entries = []
        for wanted in (p.strip("/") for p in paths):
            if wanted in commit.files:
                entries.append(commit.files[wanted].entry(wanted))
            elif any(name.startswith(f"{wanted}/") for name in commit.files):
                entries.append(_dir_entry(wanted, commit.files))
        return _json(entries)

    def _preupload(self, request: _Request, repo: _Repo, revision: str, path: str) -> _Response:
        commit = repo.commit(revision)
        if commit is None or revision not in repo.branches:
            return _error(404, f"Invalid rev id: {revision}", "RevisionNotFound")
        answers = []
        for file in request.json()["files"]:
            sample = base64.b64decode(file.get("sample", ""))
            lfs = _is_lfs(file["path"], int(file["size"]), sample, commit.files.get(".gitattributes"))
            current = commit.files.get(file["path"])
            oid = None if current is None else (current.sha256 if current.lfs else current.oid)
            mode = "lfs" if lfs else "regular"
            answers.append({"path": file["path"], "uploadMode": mode, "shouldIgnore": False, "oid": oid})
        return _json({"files": answers, "commitOid": commit.oid})

    def _lfs_batch(self, request: _Request, repo: _Repo, revision: str, path: str) -> _Response:
        payload = request.json()
        if payload.get("operation") != "upload" or "basic" not in payload.get("transfers", ["basic"]):
            return _error(400, "This fake Hub only takes LFS uploads with the basic transfer")
        objects = []
        for obj in payload["objects"]:
            answer: dict[str, Any] = {"oid": obj["oid"], "size": obj["size"], "authenticated": True}
            if obj["oid"] not in self._lfs:  # else already stored: no action, the client skips the upload
                href = f"{self.endpoint}/lfs-upload/{obj['oid']}"
                answer["actions"] = {"upload": {"href": href, "expires_in": 3600}}
            objects.append(answer)
        return _json({"transfer": "basic", "objects": objects, "hash_algo": "sha256"}, content_type=_LFS_JSON)

    def _lfs_upload(self, request: _Request, oid: str) -> _Response:
        if hashlib.sha256(request.body).hexdigest() != oid:
            return _error(400, f"The uploaded content does not hash to {oid}")
        self._lfs[oid] = request.body
        return _Response(200, b"", "text/plain")

    def _commit(self, request: _Request, repo: _Repo, revision: str, path: str) -> _Response:
        if _truthy(request.query.get("create_pr")):
            return _error(400, "This fake Hub does not serve pull requests")
        if revision not in repo.branches:
            return _error(404, f"Invalid rev id: {revision}", "RevisionNotFound")
        lines = [json.loads(line) for line in request.body.splitlines() if line.strip()]
        if not lines or lines[0].get("key") != "header":
            return _error(400, "A commit starts with a header line")
        header = lines[0]["value"]
        head = repo.commit(revision)
        assert head is not None
        if header.get("parentCommit") not in (None, head.oid):
            return _error(412, f"A commit has happened since {header['parentCommit']}. Please refresh and try again.")
        files = dict(head.files)
        for line in lines[1:]:
            key, value = line["key"], line["value"]
            name = value["path"].strip("/")
            if key == "file":
                files[name] = _Blob(base64.b64decode(value["content"]), lfs=False)
            elif key == "lfsFile":
                if value["oid"] not in self._lfs:
                    return _error(400, f"LFS object {value['oid']} of {name} was not uploaded")
                files[name] = _Blob(self._lfs[value["oid"]], lfs=True)
            elif key == "deletedFile" and name in files:
                del files[name]
            elif key == "deletedFolder" and (below := [f for f in files if f.startswith(f"{name}/")]):
                for gone in below:
                    del files[gone]
            elif key in ("deletedFile", "deletedFolder"):
                return _error(404, f"A file with this name doesn't exist: {name}", "EntryNotFound")
            else:
                return _error(400, f"Unknown commit operation {key!r}")
        commit = self._new_commit(repo, revision, header.get("summary") or "commit", files)
        url = f"{repo.url(self.endpoint)}/commit/{commit.oid}"
        return _json({"success": True, "commitOid": commit.oid, "commitUrl": url, "pullRequestUrl": None})

    def _resolve(self, request: _Request, repo: _Repo, revision: str, path: str) -> _Response:
        commit = repo.commit(revision)
        if commit is None:
            return _error(404, f"Invalid rev id: {revision}", "RevisionNotFound")
        blob = commit.files.get(path)
        if blob is None:
            return _error(404, f"Entry not found: {path}", "EntryNotFound", ("X-Repo-Commit", commit.oid))
        size = len(blob.content)
        headers = [("X-Repo-Commit", commit.oid), ("ETag", f'"{blob.sha256 if blob.lfs else blob.oid}"')]
        headers.append(("Accept-Ranges", "bytes"))
        if blob.lfs:
            headers += [("X-Linked-Etag", f'"{blob.sha256}"'), ("X-Linked-Size", str(size))]
        content_type = "text/plain; charset=utf-8" if not blob.lfs else "application/octet-stream"
        wanted = request.headers.get("Range")
        if wanted is None:
            return _Response(200, blob.content, content_type, tuple(headers))
        match = _RANGE.fullmatch(wanted.strip())
        if match is None or match.groups() == ("", ""):
            return _error(416, f"Unsupported range {wanted!r}", None, ("Content-Range", f"bytes */{size}"))
        first, last = match.groups()
        start = int(first) if first else max(size - int(last), 0)
        end = min(int(last), size - 1) if first and last else size - 1
        if start >= size or start > end:
            return _error(416, "Range not satisfiable", None, ("Content-Range", f"bytes */{size}"))
        headers.append(("Content-Range", f"bytes {start}-{end}/{size}"))
        return _Response(206, blob.content[start : end + 1], content_type, tuple(headers))

    def _no_xet(self, request: _Request, repo: _Repo, revision: str, path: str) -> _Response:
        return _error(501, "This fake Hub does not serve Xet storage: run the client with HF_HUB_DISABLE_XET=1")
