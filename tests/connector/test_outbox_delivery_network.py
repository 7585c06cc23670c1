"""DeliveryClients over httpcore and the asyncio network backend, against real servers on loopback.

What the outbox relies on: keep-alive, a bounded pool, a peer's closed idle connection noticed, timeouts,
every transport failure as a retryable error, unusable URLs as permanent ones, the request as sent (headers,
body, percent-encoded target) and the answer read whole but bounded.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
import uvloop
from fastapi import FastAPI, Request, Response
from fastapi.responses import StreamingResponse

from connector.delivery import (
    COALESCE_LIMIT,
    MAX_ANSWER_BYTES,
    MAX_PARALLEL_DELIVERIES,
    AsyncioNetworkBackend,
    DeliveryClients,
    DeliveryError,
    DeliveryUnreachable,
    DeliveryUnusableUrl,
)
from tests.connector.test_protocol_support import free_port, serve

TIMEOUT = httpx.Timeout(5.0)


class Peer:
    """A real endpoint that records what arrives (client port, headers, body) and answers per path."""

    def __init__(self) -> None:
        self.seen: list[dict[str, Any]] = []
        self.active = 0
        self.most_active = 0
        self.app = FastAPI()

        @self.app.post("/slow")
        async def slow(request: Request) -> Response:
            self.active += 1
            self.most_active = max(self.most_active, self.active)
            self._record(request, await request.body())
            await asyncio.sleep(0.2)
            self.active -= 1
            return Response(b"{}", status_code=200)

        @self.app.post("/huge")
        async def huge(request: Request) -> Response:
            self._record(request, await request.body())
            return Response(b"x" * (MAX_ANSWER_BYTES * 2), status_code=200)

        @self.app.post("/chunked")
        async def chunked(request: Request) -> StreamingResponse:
            self._record(request, await request.body())

            async def parts() -> AsyncIterator[bytes]:
                for part in (b'{"providerPid":', b' "urn:uuid:1",', b' "n": 3}'):
                    yield part
                    await asyncio.sleep(0.01)

            return StreamingResponse(parts(), status_code=201, media_type="application/json")

        @self.app.post("/close")
        async def close(request: Request) -> Response:
            self._record(request, await request.body())
            return Response(b"{}", status_code=200, headers={"connection": "close"})

        @self.app.post("/hang")
        async def hang(request: Request) -> Response:
            self._record(request, await request.body())
            await asyncio.sleep(2)
            return Response(b"{}", status_code=200)

        @self.app.post("/{path:path}")
        async def echo(path: str, request: Request) -> Response:
            self._record(request, await request.body())
            return Response(b'{"ok": true}', status_code=201, headers={"set-cookie": "s=1; Path=/"})

    def _record(self, request: Request, body: bytes) -> None:
        client = request.client
        self.seen.append({"port": client.port if client else None, "path": request.url.path,
                          "query": request.url.query, "headers": dict(request.headers), "body": body})


@contextmanager
def raw_server(answer: bytes | None) -> Iterator[str]:
    """A TCP server that reads a request, then sends ``answer`` and closes, or (None) never answers."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.1)
    port = listener.getsockname()[1]
    stop = threading.Event()
    held: list[socket.socket] = []

    def run() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            conn.recv(65536)
            if answer is None:
                held.append(conn)
            else:
                conn.sendall(answer)
                conn.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        stop.set()
        thread.join(timeout=5)
        for conn in held:
            conn.close()
        listener.close()


def run(scenario: Any) -> Any:
    """On uvloop, as the connector runs."""
    return uvloop.run(scenario)


def test_the_request_arrives_as_sent_and_the_answer_as_answered() -> None:
    peer = Peer()
    with serve(peer.app) as base:
        async def scenario() -> list[Any]:
            clients = DeliveryClients(True, TIMEOUT)
            body = '{"@type": "ContractRequestMessage", "é": 1}'
            headers = {"Content-Type": "application/json", "Authorization": "Bearer a.b.c",
                       "X-Correlation-Id": "corr-7"}
            first = await clients.post(f"{base}/dsp/negotiations/request", content=body, headers=headers)
            odd = await clients.post(f"{base}/dsp/with space/ü?x=1&y=a b", content=b"raw", headers={})
            await clients.aclose()
            return [first, odd]

        first, odd = run(scenario())
    assert (first.status, first.json(), first.text) == (201, {"ok": True}, '{"ok": true}')
    sent = peer.seen[0]
    assert sent["path"] == "/dsp/negotiations/request"
    assert sent["body"] == '{"@type": "ContractRequestMessage", "é": 1}'.encode()
    assert sent["headers"]["host"] == base.removeprefix("http://")
    assert sent["headers"]["content-length"] == str(len(sent["body"]))
    assert (sent["headers"]["authorization"], sent["headers"]["x-correlation-id"]) == ("Bearer a.b.c", "corr-7")
    assert sent["headers"]["content-type"] == "application/json"
    assert odd.status == 201 and peer.seen[1]["path"] == "/dsp/with space/ü" and peer.seen[1]["body"] == b"raw"
    assert peer.seen[1]["query"] == "x=1&y=a%20b"
    assert all("cookie" not in s["headers"] for s in peer.seen)  # the cookie set by the first answer stays away


def test_sequential_deliveries_reuse_one_kept_alive_connection() -> None:
    peer = Peer()
    with serve(peer.app) as base:
        async def scenario() -> None:
            clients = DeliveryClients(True, TIMEOUT)
            for n in range(20):
                assert (await clients.post(f"{base}/m{n}", content="{}", headers={})).status == 201
            await clients.aclose()

        run(scenario())
    assert len({s["port"] for s in peer.seen}) == 1 and len(peer.seen) == 20


def test_parallel_deliveries_are_bounded_by_the_pool() -> None:
    peer = Peer()
    with serve(peer.app) as base:
        async def scenario() -> list[int]:
            clients = DeliveryClients(True, TIMEOUT)
            answers = await asyncio.gather(*(clients.post(f"{base}/slow", content="{}", headers={})
                                             for _ in range(MAX_PARALLEL_DELIVERIES * 2 + 5)))
            await clients.aclose()
            return [a.status for a in answers]

        statuses = run(scenario())
    assert statuses == [200] * (MAX_PARALLEL_DELIVERIES * 2 + 5)
    assert 1 < peer.most_active <= MAX_PARALLEL_DELIVERIES
    assert len({s["port"] for s in peer.seen}) <= MAX_PARALLEL_DELIVERIES


def test_a_connection_the_peer_closed_while_idle_is_replaced_not_failed() -> None:
    peer = Peer()
    with serve(peer.app, timeout_keep_alive=1) as base:
        async def scenario() -> list[int]:
            clients = DeliveryClients(True, TIMEOUT)
            first = await clients.post(f"{base}/a", content="{}", headers={})
            await asyncio.sleep(1.6)  # the server closes the kept-alive connection meanwhile
            second = await clients.post(f"{base}/b", content="{}", headers={})
            await clients.aclose()
            return [first.status, second.status]

        assert run(scenario()) == [201, 201]
    assert peer.seen[0]["port"] != peer.seen[1]["port"]


def test_a_connection_the_peer_announces_to_close_is_not_reused() -> None:
    peer = Peer()
    with serve(peer.app) as base:
        async def scenario() -> list[Any]:
            clients = DeliveryClients(True, TIMEOUT)
            first = await clients.post(f"{base}/close", content="{}", headers={})
            idle = clients.pool_for(base).idle
            second = await clients.post(f"{base}/after", content="{}", headers={})
            await clients.aclose()
            return [first.status, idle, second.status]

        assert run(scenario()) == [200, 0, 201]
    assert peer.seen[0]["port"] != peer.seen[1]["port"]


def test_a_cancelled_delivery_closes_its_connection_and_the_next_one_works() -> None:
    peer = Peer()
    with serve(peer.app) as base:
        async def scenario() -> list[Any]:
            clients = DeliveryClients(True, TIMEOUT)
            hanging = asyncio.create_task(clients.post(f"{base}/hang", content="{}", headers={}))
            await until_seen(peer, 1)
            hanging.cancel()
            with pytest.raises(asyncio.CancelledError):
                await hanging
            idle = clients.pool_for(base).idle
            after = await clients.post(f"{base}/after", content="{}", headers={})
            await clients.aclose()
            return [idle, after.status]

        assert run(scenario()) == [0, 201]  # the half-used connection was closed, not pooled
    assert peer.seen[0]["port"] != peer.seen[1]["port"]


async def until_seen(peer: Peer, count: int) -> None:
    deadline = time.monotonic() + 5
    while len(peer.seen) < count:
        assert time.monotonic() < deadline, "the request did not arrive"
        await asyncio.sleep(0.01)


def test_a_chunked_answer_is_read_whole() -> None:
    peer = Peer()
    with serve(peer.app) as base:
        async def scenario() -> Any:
            clients = DeliveryClients(True, TIMEOUT)
            answer = await clients.post(f"{base}/chunked", content="{}", headers={})
            await clients.aclose()
            return answer

        answer = run(scenario())
    assert answer.status == 201 and answer.json() == {"providerPid": "urn:uuid:1", "n": 3}


def test_an_oversized_answer_is_cut_and_the_next_delivery_still_works() -> None:
    peer = Peer()
    with serve(peer.app) as base:
        async def scenario() -> list[Any]:
            clients = DeliveryClients(True, TIMEOUT)
            huge = await clients.post(f"{base}/huge", content="{}", headers={})
            after = await clients.post(f"{base}/after", content="{}", headers={})
            await clients.aclose()
            return [huge, after]

        huge, after = run(scenario())
    assert huge.status == 200 and len(huge.body) == MAX_ANSWER_BYTES and huge.json() is None
    assert after.status == 201 and after.json() == {"ok": True}


def test_a_large_request_body_arrives_whole() -> None:
    peer = Peer()
    body = b"0123456789abcdef" * (512 * 1024)  # 8 MiB: more than the socket takes at once, so writes wait
    with serve(peer.app) as base:
        async def scenario() -> int:
            clients = DeliveryClients(True, TIMEOUT)
            answer = await clients.post(f"{base}/big", content=body, headers={})
            await clients.aclose()
            return answer.status

        assert run(scenario()) == 201
    assert peer.seen[0]["body"] == body


@pytest.mark.parametrize(("answer", "kind"), [(None, "ReadTimeout"), (b"", "RemoteProtocolError"),
                                              (b"NOT HTTP AT ALL\r\n\r\n", "RemoteProtocolError")])
def test_no_answer_is_a_retryable_error_naming_the_cause(answer: bytes | None, kind: str) -> None:
    with raw_server(answer) as base:
        async def scenario() -> DeliveryError:
            clients = DeliveryClients(True, httpx.Timeout(0.5))
            with pytest.raises(DeliveryUnreachable) as caught:
                await clients.post(f"{base}/dsp", content="{}", headers={})
            await clients.aclose()
            return caught.value

        error = run(scenario())
    assert error.retryable and str(error).startswith(f"{kind}: ") and error.code == "delivery_unreachable"


def test_a_refused_connection_is_a_retryable_connect_error() -> None:
    async def scenario() -> DeliveryError:
        clients = DeliveryClients(True, TIMEOUT)
        with pytest.raises(DeliveryUnreachable) as caught:
            await clients.post(f"http://127.0.0.1:{free_port()}/dsp", content="{}", headers={})
        await clients.aclose()
        return caught.value

    error = run(scenario())
    assert error.retryable and str(error).startswith("ConnectError: ")


@pytest.mark.parametrize("url", ["ftp://127.0.0.1/dsp", "http:///no-host", "http://[::1/dsp",
                                 "http://127.0.0.1:port/dsp", "mailto:someone@example.com", "relative/path"])
def test_a_url_no_request_can_be_made_to_is_a_permanent_error(url: str) -> None:
    async def scenario() -> DeliveryError:
        clients = DeliveryClients(True, TIMEOUT)
        with pytest.raises(DeliveryUnusableUrl) as caught:
            await clients.post(url, content="{}", headers={})
        assert clients.origins == []  # nothing was opened for it
        return caught.value

    error = run(scenario())
    assert not error.retryable and error.code == "delivery_unusable_url" and url in str(error)


def test_the_clients_work_on_the_plain_asyncio_loop_too() -> None:
    peer = Peer()
    with serve(peer.app) as base:
        async def scenario() -> int:
            clients = DeliveryClients(True, TIMEOUT)
            answer = await clients.post(f"{base}/plain", content="{}", headers={})
            await clients.aclose()
            return answer.status

        assert asyncio.run(scenario()) == 201


class Recording:
    """A TCP server that records each chunk it receives and answers once a whole request has arrived."""

    ANSWER = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}"

    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        conn, _ = self.listener.accept()
        with conn:
            received = b""
            while True:
                chunk = conn.recv(1 << 20)
                if not chunk:
                    return
                self.chunks.append(chunk)
                received += chunk
                head, _, body = received.partition(b"\r\n\r\n")
                length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
                if len(body) >= length:
                    conn.sendall(self.ANSWER)
                    return

    def close(self) -> None:
        self.thread.join(timeout=5)
        self.listener.close()


def test_a_small_request_leaves_in_one_write_when_its_answer_is_read() -> None:
    server = Recording()
    head = b"POST /dsp HTTP/1.1\r\nHost: peer\r\nContent-Length: 4\r\n\r\n"

    async def scenario() -> tuple[list[bytes], bytes]:
        stream = await AsyncioNetworkBackend().connect_tcp("127.0.0.1", server.port, timeout=5)
        await stream.write(head, timeout=5)
        await stream.write(b"body", timeout=5)
        await asyncio.sleep(0.3)
        before = list(server.chunks)  # nothing has left yet
        answer = await stream.read(65536, timeout=5)
        await stream.aclose()
        return before, answer

    before, answer = run(scenario())
    server.close()
    assert before == [] and server.chunks[0] == head + b"body" and answer == Recording.ANSWER


def test_a_request_beyond_the_coalescing_limit_leaves_at_once() -> None:
    server = Recording()
    body = b"x" * (COALESCE_LIMIT + 1)
    head = b"POST /dsp HTTP/1.1\r\nHost: peer\r\nContent-Length: %d\r\n\r\n" % len(body)

    async def scenario() -> bytes:
        stream = await AsyncioNetworkBackend().connect_tcp("127.0.0.1", server.port, timeout=5)
        await stream.write(head, timeout=5)
        await stream.write(body, timeout=5)
        deadline = time.monotonic() + 5
        while sum(map(len, server.chunks)) < len(head) + len(body):  # all of it arrives before any read
            assert time.monotonic() < deadline, "the request did not leave"
            await asyncio.sleep(0.01)
        answer = await stream.read(65536, timeout=5)
        await stream.aclose()
        return answer

    assert run(scenario()) == Recording.ANSWER
    server.close()
    assert b"".join(server.chunks) == head + body
