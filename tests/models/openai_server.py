"""A real OpenAI-compatible HTTP server on 127.0.0.1 for tests and benchmarks.

``FakeOpenAIServer`` serves ``POST /v1/chat/completions`` (and the legacy ``POST /v1/completions``,
whose answer echoes the prompt string), also under Azure OpenAI's deployment routes
(``/openai/deployments/<name>/chat/completions`` and ``.../completions``), on a free port with
plain asyncio streams (``asyncio.start_server``) in a thread running its own event loop. It speaks
just enough HTTP/1.1: keep-alive connections, request bodies with ``Content-Length`` or chunked,
answers with ``Content-Length``. A web framework would cost a few ms per request when many answers
are due at once, which would cap what a client can reach in ``benchmarks/llm_concurrency.py``.

Each answer echoes the last user message. Markers in that message choose a misbehaviour, so the
behaviour of a row does not depend on request order or concurrency:

- ``#status=500`` (or any code): always answer with that status.
- ``#flaky=429x2``: answer 429 to the first 2 requests carrying this message, then normally.
- ``#malformed``: answer 200 with a body that is not JSON.
- ``#stall``: never answer (until the server stops, then 503), to exercise client timeouts.
- ``#ignore-n``: answer one choice whatever ``n`` asks (as some servers do).
- ``#status=401``: the error message echoes the ``Authorization`` header (else Azure's ``api-key``),
  as careless servers do.

With ``response_format={"type": "json_schema", ...}`` the answer is a JSON object following the
schema. With ``logprobs`` (``top_logprobs`` candidates; on ``/completions``, ``logprobs`` is that
number) every word of an answer is a token: its own candidate has log probability -0.5, the k-th
other candidate ``<word>~k`` has -1-k. ``echo`` on ``/completions`` puts the prompt and a space before the answer. ``latency`` (seconds, ``asyncio.sleep``) delays every answer. The server counts requests,
attempts per message, the most requests in flight at once, and keeps the target (path and
query), headers and body of every request; ``GET /stats`` returns the counters
and the busy window (first request in to last answer out), ``POST /stats/reset`` clears them (for
a server in another process, as in ``benchmarks/llm_concurrency.py``). ``GET /v1/models`` lists one
model, ``served-model``. Other routes answer 404.
"""

from __future__ import annotations

import asyncio
import collections
import http
import json
import re
import socket
import threading
import time
from typing import Any, NamedTuple

__all__ = ["FakeOpenAIServer"]

_FLAKY = re.compile(r"#flaky=(\d{3})x(\d+)")
_AZURE_ROUTE = re.compile(r"/openai/deployments/[^/]+/(chat/)?completions")
_STATUS = re.compile(r"#status=(\d{3})")
_CHUNK_SIZE = re.compile(rb"[0-9a-fA-F]+")
_REASONS = {status.value: status.phrase for status in http.HTTPStatus}
_JSON = "application/json"
_TEXT = "text/plain; charset=utf-8"


def sample_for_schema(schema: dict[str, Any]) -> Any:
    """A value following a (simple) JSON schema."""
    kind = schema.get("type")
    if kind == "object":
        return {name: sample_for_schema(sub) for name, sub in (schema.get("properties") or {}).items()}
    if kind == "array":
        return [sample_for_schema(schema.get("items") or {"type": "string"})]
    return {"integer": 1, "number": 1.5, "boolean": True, "null": None}.get(str(kind), "text")


class FakeOpenAIServer:
    """An OpenAI-compatible server in a background thread; use as a context manager.

    Attributes:
        latency: seconds every answer waits before being sent.
        requests: requests received.
        attempts: requests received per last user message.
        in_flight / max_in_flight: requests being served now / at most at once.
        authorizations: the distinct ``Authorization`` headers received.
        paths / headers / bodies: per request in arrival order, its target (path and query), its
            headers (names in lower case) and its body.
    """

    def __init__(self, latency: float = 0.0) -> None:
        self.latency = latency
        self.requests = 0
        self.attempts: collections.Counter[str] = collections.Counter()
        self.in_flight = 0
        self.max_in_flight = 0
        self.authorizations: set[str] = set()
        self.response_formats: list[Any] = []
        self.paths: list[str] = []
        self.headers: list[dict[str, str]] = []
        self.bodies: list[Any] = []
        self.first_start: float | None = None
        self.last_end: float | None = None
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping = asyncio.Event()  # set by stop(): releases stalled requests, ends connections
        self._idle: set[asyncio.StreamWriter] = set()  # connections waiting for a request

    @property
    def base_url(self) -> str:
        assert self._sock is not None, "start the server first"
        host, port = self._sock.getsockname()[:2]
        return f"http://{host}:{port}/v1"

    def reset_counters(self) -> None:
        self.requests, self.max_in_flight = 0, 0
        self.first_start = self.last_end = None
        self.attempts.clear()
        self.response_formats.clear()
        self.paths.clear()
        self.headers.clear()
        self.bodies.clear()

    def stats(self) -> dict[str, Any]:
        """Counters and the busy window in seconds (``None`` before any request)."""
        window = None if self.first_start is None or self.last_end is None else self.last_end - self.first_start
        return {"requests": self.requests, "max_in_flight": self.max_in_flight, "window": window}

    # -- lifecycle ----------------------------------------------------------------------------
    def start(self) -> FakeOpenAIServer:
        """Listen on a free port (clients may connect at once) and serve from a thread."""
        # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY on accepted sockets only when proto says TCP,
        # and without it every keep-alive answer waits ~40 ms for the client's delayed ACK.
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(1024)
        self._stopping = asyncio.Event()
        self._loop = asyncio.new_event_loop()
        serve = self._loop.run_until_complete
        self._thread = threading.Thread(target=serve, args=(self._serve(),), daemon=True, name="fake-openai")
        self._thread.start()
        return self

    async def _serve(self) -> None:
        assert self._sock is not None
        server = await asyncio.start_server(self._connection, sock=self._sock)
        await self._stopping.wait()
        server.close()
        for writer in self._idle:  # their handlers read the end of the stream and return
            writer.close()
        others = asyncio.all_tasks() - {asyncio.current_task()}
        if others:  # answers under way (stalled ones now answer 503) get a moment to go out
            await asyncio.wait(others, timeout=1)
        for task in others:
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)

    def stop(self) -> None:
        """Stop serving (stalled requests are released, connections closed) and wait for the thread."""
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._stopping.set)
        if self._thread is not None:
            self._thread.join(timeout=10)
            if self._thread.is_alive():
                raise RuntimeError("the fake OpenAI server did not stop within 10 s")
        if self._loop is not None:
            self._loop.close()
        if self._sock is not None:
            self._sock.close()

    def __enter__(self) -> FakeOpenAIServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- serving ------------------------------------------------------------------------------
    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Answer the requests of one keep-alive connection in turn."""
        keep_alive = True
        try:
            while keep_alive and not self._stopping.is_set():
                self._idle.add(writer)
                request = await _read_request(reader)
                self._idle.discard(writer)
                try:
                    response = await self._dispatch(request)
                except Exception as exc:  # as a web framework does: answer 500 and go on
                    response = _error(500, f"{type(exc).__name__}: {exc}")
                keep_alive = request.keep_alive and not self._stopping.is_set()
                writer.write(response.encode(keep_alive))
                await writer.drain()
        except (_BadRequest, asyncio.LimitOverrunError) as exc:
            writer.write(_error(400, f"bad request: {exc}").encode(keep_alive=False))
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass  # the client or stop() closed the connection (a cancelled handler would be logged)
        finally:
            self._idle.discard(writer)
            writer.close()  # after sending what is buffered

    async def _dispatch(self, request: _Request) -> _Response:
        route = (request.method, request.path.split("?", 1)[0])
        if route in (("POST", "/v1/chat/completions"), ("POST", "/v1/completions")) or (
            route[0] == "POST" and _AZURE_ROUTE.fullmatch(route[1])
        ):
            return await self._chat(request)
        if route == ("GET", "/v1/models"):  # what vLLM lists: the model it serves
            return _json({"object": "list", "data": [{"id": "served-model", "object": "model"}]})
        if route == ("GET", "/stats"):
            return _json(self.stats())
        if route == ("POST", "/stats/reset"):
            self.reset_counters()
            return _json({})
        return _error(404, f"no route for {request.method} {request.path}")

    async def _chat(self, request: _Request) -> _Response:
        self.requests += 1
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        if self.first_start is None:
            self.first_start = time.perf_counter()
        try:
            auth = request.headers.get("authorization", "")
            self.authorizations.add(auth)
            self.paths.append(request.path)
            try:
                body = json.loads(request.body)
            except ValueError:
                body = None
            self.headers.append(request.headers)
            self.bodies.append(body)
            if not isinstance(body, dict):
                return _error(400, "the request body is not a JSON object")
            self.response_formats.append(body.get("response_format"))
            legacy = not request.path.split("?", 1)[0].endswith("/chat/completions")
            return await self._answer(body, auth or request.headers.get("api-key", ""), legacy=legacy)
        finally:
            self.in_flight -= 1
            self.last_end = time.perf_counter()

    async def _answer(self, body: dict[str, Any], auth: str, legacy: bool = False) -> _Response:
        messages = body.get("messages") or []
        users = [m.get("content", "") for m in messages if m.get("role") == "user"]
        text = str(body.get("prompt", "")) if legacy else str(users[-1]) if users else ""
        self.attempts[text] += 1
        if "#stall" in text:
            await self._stopping.wait()
            return _Response(503, b"server stopping", _TEXT)
        if self.latency:
            await asyncio.sleep(self.latency)
        if (flaky := _FLAKY.search(text)) and self.attempts[text] <= int(flaky.group(2)):
            return _error(int(flaky.group(1)))
        if status := _STATUS.search(text):
            code = int(status.group(1))
            return _error(code, f"invalid credentials: {auth}" if code == 401 else None)
        if "#malformed" in text:
            return _Response(200, b'{"id": "broken", "choices": [')
        return _json(_legacy_completion(body, text) if legacy else _completion(body, text))


# -- HTTP/1.1 -----------------------------------------------------------------------------------
class _BadRequest(Exception):
    """A request that cannot be read: it is answered 400 and its connection closed."""


class _Request(NamedTuple):
    method: str
    path: str
    headers: dict[str, str]  # names in lower case
    body: bytes
    keep_alive: bool


class _Response(NamedTuple):
    status: int
    body: bytes
    content_type: str = _JSON

    def encode(self, keep_alive: bool) -> bytes:
        head = f"HTTP/1.1 {self.status} {_REASONS.get(self.status, '')}\r\ncontent-type: {self.content_type}\r\n"
        head += f"content-length: {len(self.body)}\r\n" + ("" if keep_alive else "connection: close\r\n")
        return f"{head}\r\n".encode("latin-1") + self.body


async def _read_request(reader: asyncio.StreamReader) -> _Request:
    """The next request on a connection (``IncompleteReadError`` once the client closes it)."""
    line, *fields = (await reader.readuntil(b"\r\n\r\n"))[:-4].decode("latin-1").split("\r\n")
    parts = line.split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise _BadRequest(f"request line {line!r}")
    headers = {}
    for field in fields:
        name, colon, value = field.partition(":")
        if not colon or not name.strip():
            raise _BadRequest(f"header line {field!r}")
        headers[name.strip().lower()] = value.strip()
    if "chunked" in headers.get("transfer-encoding", "").lower():
        body = await _read_chunked(reader)
    else:
        length = headers.get("content-length", "0")
        if not (length.isascii() and length.isdigit()):
            raise _BadRequest(f"content-length {length!r}")
        body = await reader.readexactly(int(length))
    connection = headers.get("connection", "").lower()
    keep_alive = "close" not in connection and (parts[2] != "HTTP/1.0" or "keep-alive" in connection)
    return _Request(parts[0], parts[1], headers, body, keep_alive)


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    """A chunked request body (trailers are read and dropped)."""
    chunks = []
    while True:
        size = (await reader.readuntil(b"\r\n")).split(b";", 1)[0].strip()
        if not _CHUNK_SIZE.fullmatch(size):
            raise _BadRequest(f"chunk size {size!r}")
        if not int(size, 16):
            break
        chunks.append(await reader.readexactly(int(size, 16)))
        if await reader.readexactly(2) != b"\r\n":
            raise _BadRequest("chunk without CRLF")
    while await reader.readuntil(b"\r\n") != b"\r\n":
        pass
    return b"".join(chunks)


def _json(data: Any, status: int = 200) -> _Response:
    return _Response(status, json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode())


def _error(status: int, message: str | None = None) -> _Response:
    error = {"message": message or f"fake error {status}", "type": "fake", "code": status}
    return _json({"error": error}, status)


def _contents(body: dict[str, Any], text: str) -> list[str]:
    n = 1 if "#ignore-n" in text else int(body.get("n") or 1)
    fmt = body.get("response_format") or {}
    if fmt.get("type") == "json_schema":
        return [json.dumps(sample_for_schema(fmt["json_schema"]["schema"]))] * n
    return [f"echo: {text}" + (f" ({i})" if n > 1 else "") for i in range(n)]


def _candidates(word: str, top: int) -> list[tuple[str, float]]:
    """The ``top`` most likely tokens at a word's position: the word itself, then ``<word>~k``."""
    return [(word, -0.5)] + [(f"{word}~{k}", -1.0 - k) for k in range(1, top)] if top else []


def _usage(prompt_tokens: int, contents: list[str]) -> dict[str, int]:
    completion_tokens = sum(len(c.split()) for c in contents)
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def _completion(body: dict[str, Any], text: str) -> dict[str, Any]:
    contents = _contents(body, text)
    top = int(body.get("top_logprobs") or 0)

    def logprobs(content: str) -> dict[str, Any] | None:
        if not body.get("logprobs"):
            return None
        positions = [(word, _candidates(word, top)) for word in content.split()]
        return {
            "content": [
                {"token": w, "logprob": -0.5, "top_logprobs": [{"token": t, "logprob": p} for t, p in c]}
                for w, c in positions
            ]
        }

    prompt_tokens = sum(len(str(m.get("content", "")).split()) for m in body.get("messages") or [])
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": 0,
        "model": body.get("model", "fake"),
        "choices": [
            {
                "index": i,
                "message": {"role": "assistant", "content": c},
                "finish_reason": "stop",
                "logprobs": logprobs(c),
            }
            for i, c in enumerate(contents)
        ],
        "usage": _usage(prompt_tokens, contents),
    }


def _legacy_completion(body: dict[str, Any], text: str) -> dict[str, Any]:
    """A ``/v1/completions`` answer; with ``echo`` the text starts with the prompt (whose first token
    has no candidates, as OpenAI answers)."""
    contents = _contents(body, text)
    top = body.get("logprobs")

    def logprobs(content: str) -> dict[str, Any] | None:
        if top is None:
            return None
        words = content.split()
        top_logprobs: list[dict[str, float] | None] = [dict(_candidates(w, int(top))) for w in words]
        if body.get("echo"):
            prompt = text.split()
            words = prompt + words
            top_logprobs = [None] + [dict(_candidates(w, int(top))) for w in prompt[1:]] + top_logprobs
        return {"tokens": words, "token_logprobs": [-0.5] * len(words), "top_logprobs": top_logprobs}

    prompt_tokens = len(text.split())
    return {
        "id": "cmpl-fake",
        "object": "text_completion",
        "created": 0,
        "model": body.get("model", "fake"),
        "choices": [
            {
                "index": i,
                "text": f"{text} {c}" if body.get("echo") else c,
                "finish_reason": "stop",
                "logprobs": logprobs(c),
            }
            for i, c in enumerate(contents)
        ],
        "usage": _usage(prompt_tokens, contents),
    }
