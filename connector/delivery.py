"""How the outbox sends: POSTs over httpcore's HTTP/1.1 connections (httpx's own engine) on asyncio sockets.

WHY not ``httpx.AsyncClient``: per DSP delivery the client's request building, auth/redirect/cookie layers and
response wrapping cost more CPU than the HTTP exchange itself. A delivery needs none of them: it is one POST of
a body already serialised, with its own signed token, no redirect followed, no cookie kept. So the outbox
hands its requests to httpcore's ``AsyncHTTP11Connection`` (the HTTP/1.1 implementation under every httpx
client, h11 included), kept alive in a small pool per counterparty origin (:class:`OriginPool`).

WHY an asyncio network backend of our own: httpcore's default backend for asyncio goes through anyio, which
rebuilds a dict of stream attributes whenever the pool asks whether an idle connection was closed by the peer
(and then polls the socket). :class:`AsyncioNetworkBackend` implements httpcore's documented network-backend
interface over an asyncio protocol: received bytes wait in a buffer, so "was it closed?" is two attribute
reads, and a small request leaves in one socket write instead of two.

Measured CPU per POST (loopback uvicorn receivers in other processes, uvloop, loaded 2-core machine, same
runs): httpx.AsyncClient per origin 1.43-1.62 ms; httpcore's AsyncConnectionPool on anyio 1.05-1.47 ms; the
same pool on this backend 0.8-0.95 ms; with one write per request 0.64-0.85 ms; with :class:`OriginPool`
instead of httpcore's pool 0.57-0.61 ms sequential and 0.49-0.52 ms at 16 in parallel over 5 origins.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import ssl
import time
from collections.abc import AsyncGenerator, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import quote, urlsplit

import httpcore
import httpx

from connector.errors import ConfigError, ConnectorError
from identity.errors import IdentityError
from identity.tls import client_verify

if TYPE_CHECKING:
    from connector.context import ConnectorContext

# WHY a bound: every request in flight is a pooled connection httpcore walks on each request and response;
# dozens of simultaneous deliveries cost more CPU in that bookkeeping (and in new connections beyond the
# keep-alive pool) than they gain, while a few in parallel already keep both sides busy.
MAX_PARALLEL_DELIVERIES = 16
KEEPALIVE_EXPIRY = 5.0  # seconds an idle connection is kept (httpx's default)
MAX_ANSWER_BYTES = 1 << 20  # a counterparty's answer beyond this is cut (DSP answers are a few hundred bytes)
READ_BUFFER_LIMIT = 256 * 1024  # bytes received and not yet read before the socket stops reading
COALESCE_LIMIT = 64 * 1024  # a request up to this size leaves in one write (see AsyncioNetworkStream.write)
_DEFAULT_PORTS = {"http": 80, "https": 443}
_TARGET_SAFE = "/?:@!$&'()*+,;=%-._~"  # RFC 3986 path and query characters: left as they are
_PLAIN_TARGET = re.compile(r"[A-Za-z0-9/?:@!$&'()*+,;=%\-._~]*")  # nothing to percent-encode (the usual case)


class DeliveryError(ConnectorError):
    """A delivery attempt got no HTTP answer; ``str(exc)`` names the cause as ``<Kind>: <detail>``."""

    code = "delivery_failed"
    retryable = True


class DeliveryUnreachable(DeliveryError):
    """No answer this time (connection refused, reset or timed out, TLS refused, broken HTTP): try again."""

    code = "delivery_unreachable"


class DeliveryUnusableUrl(DeliveryError):
    """No request can ever be made to this URL (unparsable, no host, not http(s)): retrying cannot help."""

    code = "delivery_unusable_url"
    retryable = False


@dataclass(frozen=True, slots=True)
class PeerAnswer:
    """A counterparty's HTTP answer to a delivery: its status and body (read whole, at most ``MAX_ANSWER_BYTES``)."""

    status: int
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def json(self) -> Any:
        """The body as JSON; None when it is empty or not JSON (hooks only read what they recognise)."""
        if not self.body:
            return None
        try:
            return json.loads(self.body)
        except ValueError:
            return None


# ---- httpcore's network backend on asyncio --------------------------------------------------------------
class _Connection(asyncio.Protocol):
    """One TCP (or TLS) connection's receive buffer and flow control, fed by the event loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.closed = False  # the peer ended the stream or the connection is lost
        self.error: Exception | None = None
        self.reader: asyncio.Future[None] | None = None  # a read waiting for bytes
        self.writable: asyncio.Future[None] | None = None  # set while the transport's send buffer is full
        self.reading_paused = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if len(self.buffer) > READ_BUFFER_LIMIT and not self.reading_paused and self.transport is not None:
            self.reading_paused = True
            self.transport.pause_reading()
        self._wake_reader()

    def eof_received(self) -> bool:
        self.closed = True
        self._wake_reader()
        return False  # let the transport close itself

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.error = exc
        self._wake_reader()
        self.resume_writing()

    def pause_writing(self) -> None:
        if self.writable is None:
            self.writable = self.loop.create_future()

    def resume_writing(self) -> None:
        waiter, self.writable = self.writable, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def take(self, max_bytes: int) -> bytes:
        """Up to ``max_bytes`` of what was received; reading resumes once the buffer has drained."""
        if len(self.buffer) <= max_bytes:
            data = bytes(self.buffer)
            self.buffer.clear()
        else:
            data = bytes(self.buffer[:max_bytes])
            del self.buffer[:max_bytes]
        if self.reading_paused and len(self.buffer) <= READ_BUFFER_LIMIT // 4 and self.transport is not None:
            self.reading_paused = False
            self.transport.resume_reading()
        return data

    def _wake_reader(self) -> None:
        waiter, self.reader = self.reader, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


def _expire(waiter: asyncio.Future[None], error: type[Exception], timeout: float) -> None:
    if not waiter.done():
        waiter.set_exception(error(f"timed out after {timeout:g} s"))


async def _wait(loop: asyncio.AbstractEventLoop, waiter: asyncio.Future[None], timeout: float | None,
                error: type[Exception]) -> None:
    """Await ``waiter``; after ``timeout`` seconds it fails with ``error`` (one timer, no extra task)."""
    if timeout is None:
        await waiter
        return
    timer = loop.call_later(timeout, _expire, waiter, error, timeout)
    try:
        await waiter
    finally:
        timer.cancel()


class AsyncioNetworkStream(httpcore.AsyncNetworkStream):
    """httpcore's view of one connection (see the module docstring for why not anyio's)."""

    def __init__(self, transport: asyncio.Transport, connection: _Connection) -> None:
        self._transport = transport
        self._connection = connection
        self._unsent = bytearray()  # what httpcore wrote and the socket has not been given yet

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        connection = self._connection
        if self._unsent:  # the request is complete once its answer is read: send it now
            unsent = bytes(self._unsent)
            self._unsent.clear()
            await self._send(unsent, timeout)
        if not connection.buffer and not connection.closed:
            connection.reader = connection.loop.create_future()
            await _wait(connection.loop, connection.reader, timeout, httpcore.ReadTimeout)
        if connection.buffer:
            return connection.take(max_bytes)
        if connection.error is not None:
            raise httpcore.ReadError(f"{connection.error.__class__.__name__}: {connection.error}")
        return b""  # the peer closed the connection: httpcore decides what that means

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        """Keep a small request's parts until its answer is read, then send them in one write.

        WHY: httpcore writes the head and the body of a request separately; on loopback every socket write
        runs the receiver's TCP path too, and the receiver then parses two segments. A request is complete
        when httpcore starts reading its answer, so that is when it leaves (then bounded by the read's
        timeout). Larger requests go out at once.
        """
        if not buffer:
            return
        if self._connection.closed or self._transport.is_closing():
            raise httpcore.WriteError("the connection is closed")
        if len(self._unsent) + len(buffer) <= COALESCE_LIMIT:
            self._unsent += buffer
            return
        if self._unsent:
            buffer = bytes(self._unsent) + buffer
            self._unsent.clear()
        await self._send(buffer, timeout)

    async def _send(self, buffer: bytes, timeout: float | None) -> None:
        connection = self._connection
        if connection.closed or self._transport.is_closing():
            raise httpcore.WriteError("the connection is closed")
        self._transport.write(buffer)
        if connection.writable is not None:
            await _wait(connection.loop, connection.writable, timeout, httpcore.WriteTimeout)
            if connection.error is not None:
                raise httpcore.WriteError(f"{connection.error.__class__.__name__}: {connection.error}")

    async def aclose(self) -> None:
        self._transport.close()

    async def start_tls(self, ssl_context: ssl.SSLContext, server_hostname: str | None = None,
                        timeout: float | None = None) -> AsyncioNetworkStream:
        connection = self._connection
        try:
            transport = await connection.loop.start_tls(self._transport, connection, ssl_context,
                                                         server_hostname=server_hostname,
                                                         ssl_handshake_timeout=timeout)
        except TimeoutError as exc:
            self._transport.close()
            raise httpcore.ConnectTimeout(f"TLS handshake: {exc}") from exc
        except (OSError, ssl.SSLError) as exc:
            self._transport.close()
            raise httpcore.ConnectError(str(exc) or exc.__class__.__name__) from exc
        if transport is None:
            self._transport.close()
            raise httpcore.ConnectError("the connection closed during the TLS handshake")
        connection.transport = transport
        return AsyncioNetworkStream(transport, connection)

    def get_extra_info(self, info: str) -> Any:
        if info == "is_readable":  # asked for every idle pooled connection, twice per request
            connection = self._connection
            return connection.closed or bool(connection.buffer)
        if info == "ssl_object":
            return self._transport.get_extra_info("ssl_object")
        if info == "client_addr":
            return self._transport.get_extra_info("sockname")
        if info == "server_addr":
            return self._transport.get_extra_info("peername")
        if info == "socket":
            return self._transport.get_extra_info("socket")
        return None


class AsyncioNetworkBackend(httpcore.AsyncNetworkBackend):
    """httpcore's ``network_backend`` on the running asyncio (or uvloop) event loop."""

    async def connect_tcp(self, host: str, port: int, timeout: float | None = None,
                          local_address: str | None = None,
                          socket_options: Iterable[Any] | None = None) -> AsyncioNetworkStream:
        loop = asyncio.get_running_loop()
        connection = _Connection(loop)
        try:
            async with asyncio.timeout(timeout):
                transport, _ = await loop.create_connection(
                    lambda: connection, host, port, local_addr=(local_address, 0) if local_address else None)
        except TimeoutError as exc:  # before OSError: TimeoutError is one
            raise httpcore.ConnectTimeout(f"connecting to {host}:{port}: {exc or 'timed out'}") from exc
        except OSError as exc:
            raise httpcore.ConnectError(str(exc) or exc.__class__.__name__) from exc
        raw = transport.get_extra_info("socket")
        for option in socket_options or ():
            if raw is not None:
                raw.setsockopt(*option)
        return AsyncioNetworkStream(cast(asyncio.Transport, transport), connection)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


# ---- connections to one origin -------------------------------------------------------------------------
class OriginPool:
    """Kept-alive HTTP/1.1 connections (httpcore's ``AsyncHTTP11Connection``) to one origin, at most ``limit``.

    WHY not httpcore's ``AsyncConnectionPool``: it serves any origin, so on every request and response it walks
    all its connections under a lock, wakes waiters through events and shields cancellations (a sixth of a
    delivery's CPU). Here every connection belongs to the one origin: a request takes the most recently used
    idle connection (one the peer closed or that outlived its keep-alive is dropped on the way), or opens one
    when none is idle, and puts it back when its answer has been read. A semaphore bounds the requests in
    flight, and with them the connections (one is only opened when none is idle).
    """

    def __init__(self, origin: httpcore.Origin, ssl_context: ssl.SSLContext, backend: httpcore.AsyncNetworkBackend,
                 timeout: httpx.Timeout, limit: int) -> None:
        self.origin = origin
        self.limit = limit
        self._ssl_context = ssl_context
        self._backend = backend
        self._connect_timeout = timeout.connect
        self._slots = asyncio.Semaphore(limit)
        self._idle: list[httpcore.AsyncHTTP11Connection] = []
        self._closed = False

    @property
    def idle(self) -> int:
        """How many connections wait for the next request (for inspection and tests)."""
        return len(self._idle)

    async def exchange(self, request: httpcore.Request) -> PeerAnswer:
        """Send ``request`` on a connection of this origin and read its answer (bounded)."""
        async with self._slots:
            connection = await self._take_idle() or await self._connect()
            try:
                response = await connection.handle_async_request(request)
                try:
                    answer = PeerAnswer(response.status, await _read_bounded(response))
                finally:
                    await response.aclose()
            except BaseException:
                await connection.aclose()
                raise
            if connection.is_available() and not self._closed:
                self._idle.append(connection)
            else:
                await connection.aclose()
            return answer

    async def _take_idle(self) -> httpcore.AsyncHTTP11Connection | None:
        while self._idle:
            connection = self._idle.pop()
            if connection.is_available() and not connection.has_expired():
                return connection
            await connection.aclose()
        return None

    async def _connect(self) -> httpcore.AsyncHTTP11Connection:
        host = self.origin.host.decode("ascii")
        stream = await self._backend.connect_tcp(host, self.origin.port, timeout=self._connect_timeout)
        if self.origin.scheme == b"https":
            try:
                stream = await stream.start_tls(self._ssl_context, server_hostname=host,
                                                timeout=self._connect_timeout)
            except BaseException:
                await stream.aclose()
                raise
        return httpcore.AsyncHTTP11Connection(origin=self.origin, stream=stream, keepalive_expiry=KEEPALIVE_EXPIRY)

    async def aclose(self) -> None:
        """Close the idle connections; those in use are closed when their answer has been read."""
        self._closed = True
        idle, self._idle = self._idle, []
        for connection in idle:
            await connection.aclose()


# ---- delivery clients -----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class _Target:
    """Where a delivery goes: the pool's origin key, httpcore's URL and the ``Host`` header."""

    origin: str
    url: httpcore.URL
    host: bytes

    @classmethod
    def parse(cls, url: str) -> _Target:
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as exc:  # e.g. an unclosed IPv6 bracket, a port that is no number
            raise DeliveryUnusableUrl(f"InvalidURL: {url!r}: {exc}") from None
        scheme = parts.scheme.lower()
        if scheme not in _DEFAULT_PORTS:
            raise DeliveryUnusableUrl(f"UnsupportedProtocol: {url!r}: only http and https URLs can be delivered to")
        if not parts.hostname:
            raise DeliveryUnusableUrl(f"InvalidURL: {url!r} names no host")
        netloc = parts.netloc.rpartition("@")[2].lower()  # credentials in a URL are never sent
        target = parts.path or "/"
        if parts.query:
            target += "?" + parts.query
        if not _PLAIN_TARGET.fullmatch(target):
            target = quote(target, safe=_TARGET_SAFE)
        core_url = httpcore.URL(scheme=scheme.encode(), host=_host_bytes(parts.hostname),
                                port=port or _DEFAULT_PORTS[scheme], target=target.encode("ascii"))
        return cls(f"{scheme}://{netloc}", core_url, _host_bytes(netloc))


def _host_bytes(host: str) -> bytes:
    """A host as it goes on the wire: ASCII as it is, an internationalised name in its IDNA form."""
    return host.encode("ascii") if host.isascii() else host.encode("idna")


class DeliveryClients:
    """The outbox's HTTP clients: one :class:`OriginPool` per counterparty origin (scheme://host:port).

    WHY per origin and not ``ctx.http``: httpcore's pool walks every connection it holds twice per request,
    so each delivery paid for every DID, status-list and credential-service connection too, and for the
    connections to every other counterparty; here a request only looks at its own peer's idle connections (at
    most :data:`MAX_PARALLEL_DELIVERIES`, the bound on deliveries in flight).
    Lifetime: a pool unused for ``idle_after`` seconds with nothing in flight is closed by :meth:`close_idle`
    (the worker calls it with each safety scan); a later delivery opens a new one.
    TLS trust is ``identity.tls.client_verify`` of the configured CA, exactly as for ``ctx.http``; timeouts
    are ``ctx.http``'s. No cookies are kept or sent: a DSP request is authorised by its own signed token.
    """

    def __init__(self, verify: ssl.SSLContext | bool, timeout: httpx.Timeout) -> None:
        # one SSL context for every origin (httpx's trust: certifi or SSL_CERT_FILE, plus the data space's CA)
        self._ssl = verify if isinstance(verify, ssl.SSLContext) else httpx.create_ssl_context(verify)
        self._ssl.set_alpn_protocols(["http/1.1"])  # as httpx's own connections to the same peers do
        self.timeout = timeout
        self._extensions = {"timeout": timeout.as_dict()}
        self._backend = AsyncioNetworkBackend()
        self._pools: dict[str, OriginPool] = {}
        self._in_flight: dict[str, int] = {}
        self._last_used: dict[str, float] = {}

    @classmethod
    def for_context(cls, ctx: ConnectorContext) -> DeliveryClients:
        """Clients with the same timeout and TLS trust as ``ctx.http``."""
        try:
            verify = client_verify(ctx.settings.tls.ca_file)
        except IdentityError as exc:
            raise ConfigError(f"outbox: {exc}") from exc
        return cls(verify, ctx.http.timeout)

    @property
    def origins(self) -> list[str]:
        """The origins with an open pool (for inspection and tests)."""
        return list(self._pools)

    def pool_for(self, url: str) -> OriginPool:
        """The pool of ``url``'s origin (opened on first use)."""
        return self._pool(_Target.parse(url))

    def _pool(self, target: _Target) -> OriginPool:
        pool = self._pools.get(target.origin)
        if pool is None:
            pool = OriginPool(target.url.origin, self._ssl, self._backend, self.timeout, MAX_PARALLEL_DELIVERIES)
            self._pools[target.origin] = pool
        return pool

    async def post(self, url: str, *, content: str | bytes, headers: Mapping[str, str]) -> PeerAnswer:
        """POST ``content`` to ``url``; the answer is read whole (bounded) and the connection returned to its pool.

        Raises :class:`DeliveryUnusableUrl` for a URL no request can be made to, :class:`DeliveryUnreachable`
        when no HTTP answer came (both before anything is known to have reached the peer's application).
        """
        target = _Target.parse(url)
        body = content.encode() if isinstance(content, str) else content
        request_headers = [(b"Host", target.host), (b"Content-Length", str(len(body)).encode()),
                           *((name.encode(), value.encode()) for name, value in headers.items())]
        request = httpcore.Request(b"POST", target.url, headers=request_headers, content=body,
                                   extensions=self._extensions)
        origin = target.origin
        pool = self._pool(target)
        self._in_flight[origin] = self._in_flight.get(origin, 0) + 1
        try:
            answer = await pool.exchange(request)
        except (httpcore.NetworkError, httpcore.TimeoutException, httpcore.ProtocolError,
                httpcore.ConnectionNotAvailable) as exc:
            raise DeliveryUnreachable(f"{exc.__class__.__name__}: {exc}") from None
        finally:
            self._in_flight[origin] -= 1
            self._last_used[origin] = time.monotonic()
        return answer

    async def close_idle(self, idle_after: float) -> None:
        """Close the pools of origins with nothing in flight and no use for ``idle_after`` seconds."""
        stale_before = time.monotonic() - idle_after
        for origin in [o for o in self._pools if not self._in_flight.get(o)
                       and self._last_used.get(o, 0.0) <= stale_before]:
            pool = self._pools.pop(origin)
            self._in_flight.pop(origin, None)
            self._last_used.pop(origin, None)
            await pool.aclose()

    async def aclose(self) -> None:
        pools, self._pools = list(self._pools.values()), {}
        for pool in pools:
            await pool.aclose()


async def _read_bounded(response: httpcore.Response) -> bytes:
    """The answer's body, cut at :data:`MAX_ANSWER_BYTES` (the connection is then closed, not reused)."""
    chunks: list[bytes] = []
    size = 0
    async with contextlib.aclosing(cast(AsyncGenerator[bytes, None], response.aiter_stream())) as stream:
        async for chunk in stream:
            size += len(chunk)
            if size > MAX_ANSWER_BYTES:
                chunks.append(chunk[:len(chunk) - (size - MAX_ANSWER_BYTES)])
                break
            chunks.append(chunk)
    return b"".join(chunks)
