"""The one bounded GET behind DID and status list fetching, over a real loopback server."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from identity.bounded_http import get_bounded
from identity.dids.errors import DidResolutionError
from tests.identity.loopback_server import StaticSite, free_port, serve


def _get(url: str, client: httpx.AsyncClient | None = None, max_bytes: int = 1000) -> bytes:
    return asyncio.run(get_bounded(client, url, accept="application/json", max_bytes=max_bytes, timeout=5,
                                   what="test document", error=DidResolutionError))


def test_bodies_statuses_sizes_and_redirects() -> None:
    site = StaticSite()
    site.put("/ok", b'{"a": 1}')
    site.put("/exact", b"x" * 1000)
    site.put("/big", b"x" * 1001)
    site.put("/moved", b"", status=302)
    with serve(site) as port:
        base = f"http://127.0.0.1:{port}"
        assert _get(base + "/ok") == b'{"a": 1}'
        assert _get(base + "/exact") == b"x" * 1000

        async def with_client() -> bytes:
            async with httpx.AsyncClient() as client:
                return await get_bounded(client, base + "/ok", accept="application/json", max_bytes=10,
                                         timeout=5, what="test document", error=DidResolutionError)

        assert asyncio.run(with_client()) == b'{"a": 1}'
        with pytest.raises(DidResolutionError, match="test document at .* exceeds 1000 bytes"):
            _get(base + "/big")
        with pytest.raises(DidResolutionError, match="answered HTTP 404"):
            _get(base + "/missing")
        with pytest.raises(DidResolutionError, match="answered HTTP 302"):  # redirects are not followed
            _get(base + "/moved")
        assert site.hits["/moved"] == 1


def test_unreachable_host_is_the_callers_error() -> None:
    with pytest.raises(DidResolutionError, match="cannot fetch .*ConnectError"):
        _get(f"http://127.0.0.1:{free_port()}/nothing")
