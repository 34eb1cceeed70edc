"""A real OpenAI-compatible HTTP server on 127.0.0.1 for tests and benchmarks.

``FakeOpenAIServer`` serves ``POST /v1/chat/completions`` with uvicorn in a thread on a free port.
Each answer echoes the last user message. Markers in that message choose a misbehaviour, so the
behaviour of a row does not depend on request order or concurrency:

- ``#status=500`` (or any code): always answer with that status.
- ``#flaky=429x2``: answer 429 to the first 2 requests carrying this message, then normally.
- ``#malformed``: answer 200 with a body that is not JSON.
- ``#stall``: never answer (until the server stops), to exercise client timeouts.
- ``#ignore-n``: answer one choice whatever ``n`` asks (as some servers do).
- ``#status=401``: the error message echoes the ``Authorization`` header, as careless servers do.

With ``response_format={"type": "json_schema", ...}`` the answer is a JSON object following the
schema. ``latency`` (seconds, ``asyncio.sleep``) delays every answer. The server counts requests,
attempts per message and the most requests in flight at once; ``GET /stats`` returns the counters
and the busy window (first request in to last answer out), ``POST /stats/reset`` clears them (for
a server in another process, as in ``benchmarks/llm_concurrency.py``).
"""

from __future__ import annotations

import asyncio
import collections
import json
import re
import socket
import threading
import time
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

__all__ = ["FakeOpenAIServer"]

_FLAKY = re.compile(r"#flaky=(\d{3})x(\d+)")
_STATUS = re.compile(r"#status=(\d{3})")


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
    """

    def __init__(self, latency: float = 0.0) -> None:
        self.latency = latency
        self.requests = 0
        self.attempts: collections.Counter[str] = collections.Counter()
        self.in_flight = 0
        self.max_in_flight = 0
        self.authorizations: set[str] = set()
        self.response_formats: list[Any] = []
        self.first_start: float | None = None
        self.last_end: float | None = None
        self._sock: socket.socket | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._release = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None

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
        routes = [
            Route("/v1/chat/completions", self._chat, methods=["POST"]),
            Route("/stats", self._stats, methods=["GET"]),
            Route("/stats/reset", self._reset, methods=["POST"]),
        ]
        app = Starlette(routes=routes)
        config = uvicorn.Config(
            app, log_level="warning", lifespan="off", access_log=False, timeout_graceful_shutdown=1, backlog=1024
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=asyncio.run, args=(self._serve(),), daemon=True, name="fake-openai")
        self._thread.start()
        return self

    async def _serve(self) -> None:
        assert self._server is not None and self._sock is not None
        self._loop = asyncio.get_running_loop()
        await self._server.serve(sockets=[self._sock])

    def stop(self) -> None:
        """Stop serving (stalled requests are released) and wait for the thread."""
        if self._server is not None:
            self._server.should_exit = True
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._release.set)
        if self._thread is not None:
            self._thread.join(timeout=10)
            if self._thread.is_alive():
                raise RuntimeError("the fake OpenAI server did not stop within 10 s")
        if self._sock is not None:
            self._sock.close()

    def __enter__(self) -> FakeOpenAIServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- serving ------------------------------------------------------------------------------
    async def _stats(self, request: Request) -> Response:
        return JSONResponse(self.stats())

    async def _reset(self, request: Request) -> Response:
        self.reset_counters()
        return JSONResponse({})

    async def _chat(self, request: Request) -> Response:
        self.requests += 1
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        if self.first_start is None:
            self.first_start = time.perf_counter()
        try:
            auth = request.headers.get("authorization", "")
            self.authorizations.add(auth)
            body = await request.json()
            self.response_formats.append(body.get("response_format"))
            return await self._answer(body, auth)
        finally:
            self.in_flight -= 1
            self.last_end = time.perf_counter()

    async def _answer(self, body: dict[str, Any], auth: str) -> Response:
        messages = body.get("messages") or []
        users = [m.get("content", "") for m in messages if m.get("role") == "user"]
        text = str(users[-1]) if users else ""
        self.attempts[text] += 1
        if "#stall" in text:
            await self._release.wait()
            return PlainTextResponse("server stopping", status_code=503)
        if self.latency:
            await asyncio.sleep(self.latency)
        if (flaky := _FLAKY.search(text)) and self.attempts[text] <= int(flaky.group(2)):
            return _error(int(flaky.group(1)))
        if status := _STATUS.search(text):
            code = int(status.group(1))
            return _error(code, f"invalid credentials: {auth}" if code == 401 else None)
        if "#malformed" in text:
            return PlainTextResponse('{"id": "broken", "choices": [', media_type="application/json")
        return JSONResponse(_completion(body, text))


def _error(status: int, message: str | None = None) -> Response:
    error = {"message": message or f"fake error {status}", "type": "fake", "code": status}
    return JSONResponse({"error": error}, status)


def _completion(body: dict[str, Any], text: str) -> dict[str, Any]:
    n = 1 if "#ignore-n" in text else int(body.get("n") or 1)
    fmt = body.get("response_format") or {}
    if fmt.get("type") == "json_schema":
        contents = [json.dumps(sample_for_schema(fmt["json_schema"]["schema"]))] * n
    else:
        contents = [f"echo: {text}" + (f" ({i})" if n > 1 else "") for i in range(n)]
    prompt_tokens = sum(len(str(m.get("content", "")).split()) for m in body.get("messages") or [])
    completion_tokens = sum(len(c.split()) for c in contents)
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": 0,
        "model": body.get("model", "fake"),
        "choices": [
            {"index": i, "message": {"role": "assistant", "content": c}, "finish_reason": "stop"}
            for i, c in enumerate(contents)
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }
