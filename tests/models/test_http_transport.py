"""``LeanAsyncTransport`` against raw asyncio TCP servers on 127.0.0.1 that write scripted bytes.

Each test starts its own server (``RawServer``, port 0) and drives the transport through
``httpx2.AsyncClient`` (and, where the error mapping matters, the official ``openai`` client)
inside ``asyncio.run``. The server counts accepted connections, requests in flight and the
connections the client closed, so keep-alive, reuse and the pool limit are seen from the wire.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
import socket
import ssl
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2
import openai
import pytest

from distil_dagster.models.llms.http_transport import LeanAsyncTransport, lean_transport

pytestmark = pytest.mark.timeout(20)

PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")


@dataclass
class Seen:
    """One request as the server read it off the wire."""

    method: str
    target: str
    headers: dict[str, str]  # lower-case names
    body: bytes


@dataclass
class Answer:
    """Raw bytes the server writes; ``close``: the server closes the connection afterwards."""

    raw: bytes
    close: bool = False


Respond = Callable[[Seen], Awaitable[Answer]]


def always(raw: bytes, *, close: bool = False) -> Respond:
    """A server script answering every request with the same bytes."""

    async def respond(seen: Seen) -> Answer:
        return Answer(raw, close)

    return respond


def ok(body: bytes = b"ok", *extra: str) -> bytes:
    """A ``200 OK`` answer with a ``Content-Length`` body and extra header lines."""
    head = ["HTTP/1.1 200 OK", f"Content-Length: {len(body)}", *extra]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


async def read_request(reader: asyncio.StreamReader) -> Seen | None:
    """The next request on a connection, ``None`` when the client closed it."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None
    lines = head[:-4].decode("latin-1").split("\r\n")
    method, target, _ = lines[0].split(" ", 2)
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return Seen(method, target, headers, body)


class RawServer:
    """An HTTP/1.1 server on 127.0.0.1 whose answers are raw bytes from ``respond``."""

    def __init__(self, respond: Respond, tls: ssl.SSLContext | None = None) -> None:
        self.respond = respond
        self.tls = tls
        self.port = 0
        self.connections = 0  # accepted so far
        self.requests: list[Seen] = []
        self.in_flight = 0  # requests read whose answer ``respond`` has not produced yet
        self.max_in_flight = 0
        self.client_closes = 0  # connections on which the server read EOF between requests
        self.finished: asyncio.Queue[int] = asyncio.Queue()  # connection numbers whose handler ended
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def __aenter__(self) -> RawServer:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self.tls)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._server is not None
        self._server.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self.connections += 1
        number = self.connections
        try:
            while True:
                seen = await read_request(reader)
                if seen is None:
                    self.client_closes += 1
                    break
                self.requests.append(seen)
                self.in_flight += 1
                self.max_in_flight = max(self.max_in_flight, self.in_flight)
                try:
                    answer = await self.respond(seen)
                finally:
                    self.in_flight -= 1
                writer.write(answer.raw)
                await writer.drain()
                if answer.close:
                    break
        except ConnectionError:
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
            self.finished.put_nowait(number)


def run(scenario: Coroutine[Any, Any, None]) -> None:
    asyncio.run(scenario)


async def until(condition: Callable[[], bool], what: str, seconds: float = 5.0) -> None:
    """Let the loop run (no fixed sleep) until ``condition()`` holds; fail after ``seconds``."""
    deadline = asyncio.get_running_loop().time() + seconds
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0)


async def spin(iterations: int = 200) -> None:
    """Give other tasks many loop turns (to let a pool-limit violation happen if it can)."""
    for _ in range(iterations):
        await asyncio.sleep(0)


def lean_client(max_connections: int = 2, **kwargs: Any) -> tuple[httpx2.AsyncClient, LeanAsyncTransport]:
    transport = LeanAsyncTransport(max_connections)
    return httpx2.AsyncClient(transport=transport, **kwargs), transport


def refused_port() -> int:
    """A local port nothing listens on (bound, then closed)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- answers ---------------------------------------------------------------------------------


def test_a_content_length_json_answer_and_the_request_on_the_wire() -> None:
    payload = {"id": "x1", "choices": [1, 2, 3]}
    body = json.dumps(payload).encode()
    raw = b"HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nX-Custom: yes\r\nContent-Length: %d\r\n\r\n%s" % (
        len(body),
        body,
    )

    async def scenario() -> None:
        async with RawServer(always(raw)) as server:
            client, _ = lean_client()
            async with client:
                response = await client.post(
                    f"{server.url}/v1/items?a=1&b=two", content=b'{"q": 1}', headers={"X-Sent": "1"}
                )
            assert response.status_code == 201
            assert response.reason_phrase == "Created"
            assert response.http_version == "HTTP/1.1"
            assert response.headers["content-type"] == "application/json"
            assert response.headers["x-custom"] == "yes"
            assert response.headers["content-length"] == str(len(body))
            assert response.content == body
            assert response.json() == payload
            [seen] = server.requests
            assert seen.method == "POST"
            assert seen.target == "/v1/items?a=1&b=two"
            assert seen.headers["host"] == f"127.0.0.1:{server.port}"
            assert seen.headers["x-sent"] == "1"
            assert seen.headers["content-length"] == "8"
            assert seen.body == b'{"q": 1}'

    run(scenario())


def test_two_sequential_requests_share_one_keep_alive_connection() -> None:
    async def scenario() -> None:
        async with RawServer(always(ok(b"hello"))) as server:
            client, _ = lean_client()
            async with client:
                first = await client.get(f"{server.url}/one")
                second = await client.post(f"{server.url}/two", content=b"abc")
            assert (first.text, second.text) == ("hello", "hello")
            assert [s.target for s in server.requests] == ["/one", "/two"]
            assert server.requests[1].body == b"abc"
            assert server.connections == 1, "the second request should reuse the kept-alive connection"

    run(scenario())


@pytest.mark.parametrize(
    ("status_line", "header", "reused"),
    [
        ("HTTP/1.1 200 OK", "Connection: close", False),
        ("HTTP/1.1 200 OK", "Connection: Close", False),
        ("HTTP/1.0 200 OK", "X-Nothing: 1", False),
        ("HTTP/1.0 200 OK", "Connection: keep-alive", True),
    ],
)
def test_connection_close_and_http_1_0_answers_are_not_reused(status_line: str, header: str, reused: bool) -> None:
    raw = f"{status_line}\r\n{header}\r\nContent-Length: 2\r\n\r\nok".encode()

    async def scenario() -> None:
        # The server keeps its side open: whether to reuse is the client's decision alone.
        async with RawServer(always(raw)) as server:
            client, _ = lean_client()
            async with client:
                first = await client.get(f"{server.url}/a")
                second = await client.get(f"{server.url}/b")
            assert (first.text, second.text) == ("ok", "ok")
            assert server.connections == (1 if reused else 2), f"{status_line} / {header}"

    run(scenario())


def test_a_chunked_answer_with_extensions_and_trailers_is_joined_and_the_connection_reused() -> None:
    raw = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: text/plain\r\n\r\n"
        b"5;x=y\r\nhello\r\n"
        b"1\r\n \r\n"
        b"B\r\nworld-again\r\n"
        b"0\r\nX-Trailer: t\r\nX-Other: u\r\n\r\n"
    )

    async def scenario() -> None:
        async with RawServer(always(raw)) as server:
            client, _ = lean_client()
            async with client:
                first = await client.get(f"{server.url}/chunks")
                second = await client.get(f"{server.url}/chunks")
            assert first.status_code == 200
            assert first.content == b"hello world-again"
            assert second.content == b"hello world-again", "trailers must be consumed before reuse"
            assert server.connections == 1

    run(scenario())


def test_an_answer_without_length_is_read_to_eof_and_the_connection_not_reused() -> None:
    raw = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nall of this until the server closes"

    async def scenario() -> None:
        async with RawServer(always(raw, close=True)) as server:
            client, _ = lean_client()
            async with client:
                first = await client.get(f"{server.url}/eof")
                second = await client.get(f"{server.url}/eof")
            assert first.text == "all of this until the server closes"
            assert second.text == first.text
            assert server.connections == 2

    run(scenario())


def test_a_100_continue_interim_answer_is_skipped() -> None:
    raw = b"HTTP/1.1 100 Continue\r\n\r\n" + ok(b"final", "X-Final: 1")

    async def scenario() -> None:
        async with RawServer(always(raw)) as server:
            client, _ = lean_client()
            async with client:
                response = await client.post(f"{server.url}/upload", content=b"data")
                again = await client.get(f"{server.url}/again")
            assert response.status_code == 200
            assert response.text == "final"
            assert response.headers["x-final"] == "1"
            assert again.text == "final"
            assert server.connections == 1

    run(scenario())


def test_a_204_answer_has_no_body_and_keeps_the_connection() -> None:
    async def scenario() -> None:
        async with RawServer(always(b"HTTP/1.1 204 No Content\r\n\r\n")) as server:
            client, _ = lean_client()
            async with client:
                first = await client.delete(f"{server.url}/x")
                second = await client.delete(f"{server.url}/y")
            assert (first.status_code, first.content) == (204, b"")
            assert (second.status_code, second.content) == (204, b"")
            assert server.connections == 1

    run(scenario())


def test_a_head_answer_has_no_body_despite_its_content_length() -> None:
    async def scenario() -> None:
        async with RawServer(always(b"HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n")) as server:
            client, _ = lean_client()
            async with client:
                first = await client.head(f"{server.url}/h")
                second = await client.head(f"{server.url}/h")
            assert (first.status_code, first.headers["content-length"], first.content) == (200, "1234", b"")
            assert second.status_code == 200
            assert server.connections == 1

    run(scenario())


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_large_answer_arrives_whole(chunked: bool) -> None:
    body = bytes(range(256)) * 4096  # 1 MiB, far beyond the reader's 64 KiB head limit
    if chunked:
        chunks = [body[i : i + 300_000] for i in range(0, len(body), 300_000)]
        encoded = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks) + b"0\r\n\r\n"
        raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + encoded
    else:
        raw = ok(body)

    async def scenario() -> None:
        async with RawServer(always(raw)) as server:
            client, _ = lean_client()
            async with client:
                first = await client.get(f"{server.url}/big")
                second = await client.get(f"{server.url}/big")
            assert first.content == body
            assert second.content == body
            assert server.connections == 1

    run(scenario())


def test_an_answer_head_beyond_64_kib_is_a_protocol_error() -> None:
    raw = b"HTTP/1.1 200 OK\r\nX-Huge: " + b"a" * 70_000 + b"\r\nContent-Length: 2\r\n\r\nok"

    async def scenario() -> None:
        async with RawServer(always(raw)) as server:
            client, _ = lean_client()
            async with client:
                with pytest.raises(httpx2.RemoteProtocolError):
                    await client.get(f"{server.url}/huge")

    run(scenario())


def test_a_gzip_answer_is_decoded() -> None:
    payload = {"text": "squeezed " * 50}
    body = gzip.compress(json.dumps(payload).encode())

    async def scenario() -> None:
        async with RawServer(always(ok(body, "Content-Encoding: gzip", "Content-Type: application/json"))) as server:
            client, _ = lean_client()
            async with client:
                response = await client.get(f"{server.url}/gz")
            assert response.json() == payload

    run(scenario())


# --- connections going away ------------------------------------------------------------------


def test_a_kept_alive_connection_closed_by_the_server_while_idle_is_not_reused() -> None:
    async def scenario() -> None:
        # A keep-alive answer (no "Connection: close"), then the server closes its side.
        async with RawServer(always(ok(b"first"), close=True)) as server:
            client, transport = lean_client()
            async with client:
                first = await client.get(f"{server.url}/a")
                assert await asyncio.wait_for(server.finished.get(), 5) == 1
                [idle] = [connection for pool in transport._idle.values() for connection in pool]
                await until(idle.reader.at_eof, "the client to see the server's EOF")
                second = await client.get(f"{server.url}/b")
            assert (first.text, second.text) == ("first", "first")
            assert server.connections == 2

    run(scenario())


def test_a_server_closing_in_the_middle_of_an_answer_is_a_protocol_error() -> None:
    raw = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789"

    async def scenario() -> None:
        async with RawServer(always(raw, close=True)) as server:
            client, _ = lean_client()
            async with client:
                with pytest.raises(httpx2.RemoteProtocolError):
                    await client.get(f"{server.url}/cut")

    run(scenario())


@pytest.mark.parametrize(
    "raw",
    [b"hello\r\n\r\n", b"HTTP/1.1 abc OK\r\n\r\n", b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n"],
    ids=["not-http", "bad-status", "bad-header"],
)
def test_a_garbage_answer_is_a_protocol_error(raw: bytes) -> None:
    async def scenario() -> None:
        async with RawServer(always(raw)) as server:
            client, _ = lean_client()
            async with client:
                with pytest.raises(httpx2.RemoteProtocolError):
                    await client.get(f"{server.url}/garbage")

    run(scenario())


def test_aclose_closes_open_connections() -> None:
    async def scenario() -> None:
        async with RawServer(always(ok())) as server:
            client, transport = lean_client()
            assert (await client.get(f"{server.url}/a")).text == "ok"
            await client.aclose()
            assert await asyncio.wait_for(server.finished.get(), 5) == 1
            assert server.client_closes == 1, "the server should read EOF after the client's aclose()"
            assert transport._idle == {}

    run(scenario())


# --- timeouts and errors ---------------------------------------------------------------------


async def never_answer(seen: Seen) -> Answer:
    await asyncio.Event().wait()
    raise AssertionError("unreachable")


def test_a_server_that_never_answers_is_a_read_timeout() -> None:
    async def scenario() -> None:
        async with RawServer(never_answer) as server:
            client, _ = lean_client(timeout=httpx2.Timeout(5, read=0.2))
            async with client:
                with pytest.raises(httpx2.ReadTimeout):
                    await client.get(f"{server.url}/slow")
            assert len(server.requests) == 1

    run(scenario())


def test_a_read_timeout_through_openai_is_an_api_timeout_error() -> None:
    async def scenario() -> None:
        async with RawServer(never_answer) as server:
            http_client = httpx2.AsyncClient(transport=LeanAsyncTransport(2))
            async with openai.AsyncOpenAI(
                base_url=f"{server.url}/v1", api_key="k", max_retries=0, timeout=0.2, http_client=http_client
            ) as client:
                with pytest.raises(openai.APITimeoutError):
                    await client.post("/chat/completions", body={"model": "m", "messages": []}, cast_to=object)
            assert [s.target for s in server.requests] == ["/v1/chat/completions"]

    run(scenario())


def test_a_refused_connection_is_a_connect_error() -> None:
    port = refused_port()

    async def scenario() -> None:
        client, _ = lean_client()
        async with client:
            with pytest.raises(httpx2.ConnectError):
                await client.get(f"http://127.0.0.1:{port}/nobody")

    run(scenario())


def test_a_refused_connection_through_openai_is_an_api_connection_error() -> None:
    port = refused_port()

    async def scenario() -> None:
        http_client = httpx2.AsyncClient(transport=LeanAsyncTransport(2))
        async with openai.AsyncOpenAI(
            base_url=f"http://127.0.0.1:{port}/v1", api_key="k", max_retries=0, timeout=5, http_client=http_client
        ) as client:
            with pytest.raises(openai.APIConnectionError) as caught:
                await client.post("/chat/completions", body={"model": "m", "messages": []}, cast_to=object)
            assert not isinstance(caught.value, openai.APITimeoutError)

    run(scenario())


# --- the pool --------------------------------------------------------------------------------


def held_answers() -> tuple[Respond, asyncio.Event]:
    """A script holding every answer until the returned event is set."""
    release = asyncio.Event()

    async def respond(seen: Seen) -> Answer:
        await release.wait()
        return Answer(ok(seen.target.encode()))

    return respond, release


def test_no_more_than_max_connections_requests_are_in_flight() -> None:
    async def scenario() -> None:
        respond, release = held_answers()
        async with RawServer(respond) as server:
            client, _ = lean_client(2)
            async with client:
                requests = [asyncio.create_task(client.get(f"{server.url}/{i}")) for i in range(5)]
                await until(lambda: server.in_flight == 2, "two held requests at the server")
                await spin()  # a third connection or request would show up now
                assert server.in_flight == 2
                assert server.connections == 2
                release.set()
                responses = await asyncio.gather(*requests)
            assert [r.text for r in responses] == [f"/{i}" for i in range(5)]
            assert server.max_in_flight == 2
            assert server.connections == 2
            assert len(server.requests) == 5

    run(scenario())


def test_waiting_longer_than_the_pool_timeout_is_a_pool_timeout() -> None:
    async def scenario() -> None:
        respond, release = held_answers()
        async with RawServer(respond) as server:
            client, _ = lean_client(2, timeout=httpx2.Timeout(5, pool=0.2))
            async with client:
                held = [asyncio.create_task(client.get(f"{server.url}/{i}")) for i in range(2)]
                await until(lambda: server.in_flight == 2, "two held requests at the server")
                with pytest.raises(httpx2.PoolTimeout):
                    await client.get(f"{server.url}/third")
                release.set()
                responses = await asyncio.gather(*held)
                assert [r.text for r in responses] == ["/0", "/1"]
                after = await client.get(f"{server.url}/after")  # the slot of the timed-out wait is not lost
                assert after.text == "/after"
            assert [s.target for s in server.requests] == ["/0", "/1", "/after"]

    run(scenario())


async def hold_first(client: httpx2.AsyncClient, server: RawServer) -> asyncio.Task[httpx2.Response]:
    """Send ``/0`` and wait until ``server`` holds it (a one-connection client is then busy)."""
    first = asyncio.create_task(client.get(f"{server.url}/0"))
    await until(lambda: server.in_flight == 1, "the first request at the server")
    return first


def test_waiting_requests_go_out_in_order_on_the_connection_of_the_one_that_finished() -> None:
    async def scenario() -> None:
        respond, release = held_answers()
        async with RawServer(respond) as server:
            client, transport = lean_client(1)
            async with client:
                first = await hold_first(client, server)
                waiting = []
                for i in (1, 2, 3):
                    waiting.append(asyncio.create_task(client.get(f"{server.url}/{i}")))
                    await until(lambda: len(transport._waiting) == len(waiting), f"request {i} waiting")
                grants = [waiter.granted for waiter in transport._waiting]
                release.set()
                responses = await asyncio.gather(first, *waiting)
            # each was handed the connection with its bytes already written, not left to open or pick one
            assert all(grant.result() is not None for grant in grants)
            assert [r.text for r in responses] == ["/0", "/1", "/2", "/3"]
            assert [s.target for s in server.requests] == ["/0", "/1", "/2", "/3"]
            assert server.connections == 1
            assert transport._busy == 0

    run(scenario())


def test_a_waiter_for_another_origin_gets_the_slot_and_its_own_connection() -> None:
    async def scenario() -> None:
        respond, release = held_answers()
        async with RawServer(respond) as held, RawServer(always(ok(b"other"))) as other:
            client, transport = lean_client(1)
            async with client:
                first = await hold_first(client, held)
                second = asyncio.create_task(client.get(f"{other.url}/x"))
                await until(lambda: len(transport._waiting) == 1, "the other origin's request waiting")
                assert other.connections == 0
                release.set()
                assert (await first).text == "/0"
                assert (await second).text == "other"
                again = await client.get(f"{held.url}/again")  # the first connection was pooled
            assert again.text == "/again"
            assert (held.connections, other.connections) == (1, 1)
            assert transport._busy == 0

    run(scenario())


def test_a_waiter_cancelled_before_or_after_its_turn_leaks_no_slot() -> None:
    async def scenario() -> None:
        respond, release = held_answers()
        async with RawServer(respond) as server:
            client, transport = lean_client(1)
            async with client:
                first = await hold_first(client, server)
                early = asyncio.create_task(client.get(f"{server.url}/early"))
                late = asyncio.create_task(client.get(f"{server.url}/late"))
                await until(lambda: len(transport._waiting) == 2, "two requests waiting")
                early.cancel()  # gives up before its turn: never sent
                # ``late`` is cancelled in the loop turn its connection is handed over, after its
                # bytes went out on it and before it runs again
                transport._waiting[1].granted.add_done_callback(lambda _: late.cancel())
                release.set()
                assert (await first).text == "/0"
                for task in (early, late):
                    with pytest.raises(asyncio.CancelledError):
                        await task
                after = await client.get(f"{server.url}/after")
            assert after.text == "/after"
            assert [s.target for s in server.requests] == ["/0", "/late", "/after"]
            assert server.connections == 2  # the connection ``late`` was written on is closed, not reused
            assert transport._busy == 0

    run(scenario())


# --- lean_transport --------------------------------------------------------------------------


@pytest.mark.parametrize("variable", ["HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "ALL_PROXY"])
def test_lean_transport_is_none_under_a_proxy(monkeypatch: pytest.MonkeyPatch, variable: str) -> None:
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(variable, "http://proxy.invalid:3128")
    assert lean_transport(4) is None


def test_lean_transport_without_a_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "localhost")
    transport = lean_transport(4)
    assert isinstance(transport, LeanAsyncTransport)


#: A self-signed certificate for ``localhost`` and 127.0.0.1 (valid until 2126) and its key, made
#: for these tests only with ``openssl req -x509 -newkey rsa:2048 -nodes -days 36500 -subj /CN=localhost
#: -addext subjectAltName=DNS:localhost,IP:127.0.0.1``.
TLS_CERT = Path(__file__).parent / "tls" / "localhost.pem"
TLS_KEY = Path(__file__).parent / "tls" / "localhost.key"


def _server_tls() -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(TLS_CERT, TLS_KEY)
    return context


def test_https_with_a_trusted_certificate_keeps_its_connection() -> None:
    server_tls = _server_tls()

    async def scenario() -> None:
        async with RawServer(always(ok(b'{"tls": true}')), tls=server_tls) as server:
            transport = LeanAsyncTransport(2, ssl_context=ssl.create_default_context(cafile=str(TLS_CERT)))
            async with httpx2.AsyncClient(transport=transport) as client:
                for _ in range(2):
                    response = await client.get(f"https://localhost:{server.port}/v1/models")
                    assert response.json() == {"tls": True}
            assert server.connections == 1
            assert server.requests[0].headers["host"] == f"localhost:{server.port}"

    run(scenario())


def test_https_with_an_untrusted_certificate_is_a_connect_error() -> None:
    server_tls = _server_tls()

    async def scenario() -> None:
        async with RawServer(always(ok()), tls=server_tls) as server:
            async with httpx2.AsyncClient(transport=LeanAsyncTransport(2)) as client:  # system CAs only
                with pytest.raises(httpx2.ConnectError, match="certificate"):
                    await client.get(f"https://localhost:{server.port}/")
            assert server.requests == []

    run(scenario())
