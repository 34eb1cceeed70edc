"""A lean HTTP/1.1 transport for the ``openai`` client's ``httpx`` layer, on asyncio streams.

The official client stays in charge of requests, auth, timeouts, error types and answers; only
the connection layer underneath is replaced. httpx's default one (httpcore on anyio) costs
about 0.4 ms of CPU per request here: it scans every pooled connection on every request and
release and reads each socket's peer address through anyio's attribute tables. Requests of an
LLM step are few, small and not streamed, so this transport keeps what they need: keep-alive
connections per origin (plain or TLS), ``Content-Length`` and chunked answers, the client's
connect / read / write / pool timeouts, and httpx's error types, which ``openai`` maps onto its
own (``APITimeoutError``, ``APIConnectionError``).

Not handled (``lean_transport`` returns ``None`` and the client keeps httpx's transport):
proxies from the environment. HTTP/2, upgrades and streamed request bodies are never used by
``OpenAILLM``.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import sys
import urllib.request
from collections import deque
from collections.abc import Awaitable
from typing import TypeVar

import httpx2

__all__ = ["LeanAsyncTransport", "lean_transport"]

_T = TypeVar("_T")
_MAX_HEAD = 64 * 1024
_HTTP_PORTS = {"http": 80, "https": 443}


def lean_transport(max_connections: int) -> LeanAsyncTransport | None:
    """The transport for ``OpenAILLM``'s client, or ``None`` where a proxy is configured."""
    proxies = {k: v for k, v in urllib.request.getproxies().items() if k in {"http", "https", "all"}}
    return None if proxies else LeanAsyncTransport(max_connections)


async def _within(awaitable: Awaitable[_T], seconds: float | None, error: type[Exception], what: str) -> _T:
    """``await awaitable``, raising ``error`` after ``seconds`` (``None``: no limit)."""
    if seconds is None:
        return await awaitable
    try:
        if sys.version_info >= (3, 11):
            async with asyncio.timeout(seconds):
                return await awaitable
        return await asyncio.wait_for(awaitable, seconds)
    except (TimeoutError, asyncio.TimeoutError) as exc:  # distinct classes before Python 3.11
        raise error(f"{what} timed out after {seconds} s") from exc


class _Connection:
    """One keep-alive connection to an origin."""

    __slots__ = ("reader", "writer")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    def reusable(self) -> bool:
        return not self.reader.at_eof() and not self.writer.is_closing() and self.reader.exception() is None

    def close(self) -> None:
        self.writer.close()


class _Waiter:
    """A request waiting for a connection slot, its bytes ready to go."""

    __slots__ = ("data", "granted", "origin")

    def __init__(self, origin: tuple[str, str, int], data: bytes, granted: asyncio.Future[_Connection | None]) -> None:
        self.origin = origin
        self.data = data
        self.granted = granted  # a connection its bytes were written on, or None: open one


class LeanAsyncTransport(httpx2.AsyncBaseTransport):
    """HTTP/1.1 over asyncio streams with at most ``max_connections`` requests on the wire at once.

    A request over the limit waits with its bytes ready. When an answer has been read, the
    connection goes straight to the first waiter for the same origin and its bytes are written
    there before the finished request's answer is handed up: the next request is on the wire
    while the client is still parsing the previous answer, so the client's own time per request
    overlaps the server's instead of adding to every round trip.

    Args:
        max_connections: requests on the wire at once (a request waits for a slot up to the pool timeout).
        ssl_context: for ``https`` origins (default: httpx's, which verifies certificates).
    """

    def __init__(self, max_connections: int, ssl_context: ssl.SSLContext | None = None) -> None:
        self._max = max_connections
        self._busy = 0  # slots held by requests
        self._waiting: deque[_Waiter] = deque()
        self._ssl = ssl_context
        self._idle: dict[tuple[str, str, int], deque[_Connection]] = {}
        self._open: set[_Connection] = set()

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        timeouts: dict[str, float | None] = request.extensions.get("timeout") or {}
        url = request.url
        origin = (url.scheme, url.host, url.port or _HTTP_PORTS.get(url.scheme, 80))
        body = await request.aread()
        head = [b"%s %s HTTP/1.1\r\n" % (request.method.encode(), url.raw_path)]
        head += [b"%s: %s\r\n" % (name, value) for name, value in request.headers.raw]
        data = b"".join(head) + b"\r\n" + body
        connection = await self._slot(origin, data, timeouts.get("pool"))
        keep = False
        try:
            if connection is None:
                connection = await self._connection(origin, timeouts.get("connect"))
                connection.writer.write(data)
            await _within(connection.writer.drain(), timeouts.get("write"), httpx2.WriteTimeout, "sending the request")
            status, reason, headers, content, keep = await _within(
                _read_response(connection.reader, request.method),
                timeouts.get("read"),
                httpx2.ReadTimeout,
                "reading the answer",
            )
        except OSError as exc:  # ConnectionError included
            raise httpx2.ReadError(f"{type(exc).__name__}: {exc}") from exc
        finally:
            self._release(origin, connection if keep else None)
            if connection is not None and not keep:
                self._drop(connection)
        extensions = {"http_version": b"HTTP/1.1", "reason_phrase": reason}
        return httpx2.Response(status, headers=headers, stream=httpx2.ByteStream(content), extensions=extensions)

    async def _slot(self, origin: tuple[str, str, int], data: bytes, timeout: float | None) -> _Connection | None:
        """Take a slot; the connection ``data`` was already written on when one was handed over."""
        while self._waiting and self._waiting[0].granted.done():  # given up
            self._waiting.popleft()
        if self._busy < self._max and not self._waiting:
            self._busy += 1
            return None
        waiter = _Waiter(origin, data, asyncio.get_running_loop().create_future())
        self._waiting.append(waiter)
        try:
            return await _within(
                asyncio.shield(waiter.granted), timeout, httpx2.PoolTimeout, "waiting for a connection"
            )
        except BaseException:
            if waiter.granted.done():  # granted while this request was given up: pass the slot on
                granted = waiter.granted.result()
                if granted is not None:
                    self._drop(granted)  # our bytes are on it, its answer would be read by nobody
                self._release(origin, None)
            else:
                waiter.granted.cancel()
            raise

    def _release(self, origin: tuple[str, str, int], connection: _Connection | None) -> None:
        """Pass a finished request's slot to the next waiter (with ``connection``, kept alive, if
        the waiter goes to the same origin), or give it back and pool the connection."""
        while self._waiting:
            waiter = self._waiting.popleft()
            if waiter.granted.done():  # timed out or cancelled
                continue
            if connection is not None and waiter.origin == origin and connection.reusable():
                connection.writer.write(waiter.data)
                waiter.granted.set_result(connection)
                return
            waiter.granted.set_result(None)
            break
        else:
            self._busy -= 1
        if connection is not None and connection.reusable():
            self._idle.setdefault(origin, deque()).append(connection)
        elif connection is not None:
            self._drop(connection)

    async def _connection(self, origin: tuple[str, str, int], timeout: float | None) -> _Connection:
        idle = self._idle.get(origin)
        while idle:
            connection = idle.pop()
            if connection.reusable():
                return connection
            self._drop(connection)
        scheme, host, port = origin
        context: ssl.SSLContext | None = None
        if scheme == "https":
            context = self._ssl = self._ssl or httpx2.create_ssl_context()
        try:
            reader, writer = await _within(
                asyncio.open_connection(
                    host, port, ssl=context, server_hostname=host if context else None, limit=_MAX_HEAD
                ),
                timeout,
                httpx2.ConnectTimeout,
                f"connecting to {host}:{port}",
            )
        except OSError as exc:  # ssl.SSLError included
            raise httpx2.ConnectError(f"cannot connect to {host}:{port}: {exc}") from exc
        connection = _Connection(reader, writer)
        self._open.add(connection)
        return connection

    def _drop(self, connection: _Connection) -> None:
        self._open.discard(connection)
        connection.close()

    async def aclose(self) -> None:
        """Close every connection."""
        connections, self._open = list(self._open), set()
        self._idle.clear()
        for connection in connections:
            connection.close()
        for connection in connections:
            with contextlib.suppress(OSError):  # ConnectionError, ssl.SSLError
                await connection.writer.wait_closed()


async def _read_response(
    reader: asyncio.StreamReader, method: str
) -> tuple[int, bytes, list[tuple[bytes, bytes]], bytes, bool]:
    """Status, reason, headers, body and whether the connection can be reused."""
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head[:-4].split(b"\r\n")
            version, _, rest = lines[0].partition(b" ")
            code, _, reason = rest.partition(b" ")
            if not version.startswith(b"HTTP/1.") or not code.isdigit():
                raise httpx2.RemoteProtocolError(f"not an HTTP/1.x answer: {lines[0][:80]!r}")
            status = int(code)
            if not 100 <= status < 200 or status == 101:
                break
        headers: list[tuple[bytes, bytes]] = []
        length: int | None = None
        chunked = False
        connection = b""
        for line in lines[1:]:
            name, colon, value = line.partition(b":")
            if not colon:
                raise httpx2.RemoteProtocolError(f"malformed header line {line[:80]!r}")
            name, value = name.strip(), value.strip()
            headers.append((name, value))
            lower = name.lower()
            if lower == b"content-length":
                length = int(value)
            elif lower == b"transfer-encoding":
                chunked = value.lower().endswith(b"chunked")
            elif lower == b"connection":
                connection = value.lower()
        close = b"close" in connection or (version == b"HTTP/1.0" and b"keep-alive" not in connection)
        if method == "HEAD" or status in (204, 304):
            return status, reason, headers, b"", not close
        if chunked:
            body = await _read_chunked(reader)
        elif length is not None:
            body = await reader.readexactly(length)
        else:
            return status, reason, headers, await reader.read(), False
        return status, reason, headers, body, not close
    except asyncio.IncompleteReadError as exc:
        raise httpx2.RemoteProtocolError("the server closed the connection in the middle of an answer") from exc
    except asyncio.LimitOverrunError as exc:
        raise httpx2.RemoteProtocolError(f"answer headers longer than {_MAX_HEAD} bytes") from exc
    except ValueError as exc:
        raise httpx2.RemoteProtocolError(f"malformed answer: {exc}") from exc


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    parts: list[bytes] = []
    while True:
        size_line = await reader.readuntil(b"\r\n")
        size = int(size_line.split(b";", 1)[0].strip(), 16)
        if size == 0:
            while await reader.readuntil(b"\r\n") != b"\r\n":  # trailers
                pass
            return b"".join(parts)
        parts.append((await reader.readexactly(size + 2))[:-2])
