"""A real HTTP server on 127.0.0.1 (uvicorn in a thread) serving files from a dict, counting requests.

Used by did:web and status-list tests so resolution goes over real sockets, not mocks.
"""

from __future__ import annotations

import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn


class StaticSite:
    """ASGI app: ``routes[path] = (status, body bytes, content type)``; ``hits[path]`` counts GETs."""

    def __init__(self) -> None:
        self.routes: dict[str, tuple[int, bytes, str]] = {}
        self.hits: Counter[str] = Counter()

    def put(self, path: str, body: bytes | str, status: int = 200, content_type: str = "application/json") -> None:
        self.routes[path] = (status, body.encode() if isinstance(body, str) else body, content_type)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        path = scope["path"]
        self.hits[path] += 1
        status, body, ctype = self.routes.get(path, (404, b"not found", "text/plain"))
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", ctype.encode()), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serve(site: StaticSite, *, ssl_certfile: str | None = None, ssl_keyfile: str | None = None) -> Iterator[int]:
    """Run ``site`` on a free loopback port for the duration of the block (https with a certificate); yields
    the port."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(site, host="127.0.0.1", port=port, log_level="warning", lifespan="off",
                                           ssl_certfile=ssl_certfile, ssl_keyfile=ssl_keyfile))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("loopback server did not start")
        time.sleep(0.01)
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(timeout=10)
