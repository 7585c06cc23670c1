"""One bounded HTTP GET for everything identity fetches from other parties (DID documents, status lists).

WHY: a counterparty controls those answers, so redirects are not followed and the body is read in chunks and
abandoned as soon as it exceeds ``max_bytes`` instead of being buffered whole; every failure becomes the
caller's own error class so each fetcher keeps its stable error code.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable

import httpx

from identity.errors import IdentityError


async def get_bounded(
    client: httpx.AsyncClient | None,
    url: str,
    *,
    accept: str,
    max_bytes: int,
    timeout: float,
    what: str,
    error: Callable[[str], IdentityError],
    verify: ssl.SSLContext | bool = True,
) -> bytes:
    """The body of ``GET url`` (HTTP 200 only, at most ``max_bytes``); ``error(message)`` is raised otherwise.

    ``what`` names the resource in the size message (``"DID document"``, ``"status list"``). Without a
    ``client`` a short-lived one is used, verifying certificates with ``verify`` (``identity.tls.client_verify``).
    """
    if client is None:
        async with httpx.AsyncClient(timeout=timeout, verify=verify) as own:
            return await get_bounded(own, url, accept=accept, max_bytes=max_bytes, timeout=timeout, what=what,
                                     error=error)
    try:
        async with client.stream("GET", url, headers={"Accept": accept}, follow_redirects=False,
                                 timeout=timeout) as resp:
            if resp.status_code != 200:
                raise error(f"GET {url} answered HTTP {resp.status_code}")
            chunks: list[bytes] = []
            size = 0
            async for chunk in resp.aiter_bytes():
                size += len(chunk)
                if size > max_bytes:
                    raise error(f"{what} at {url} exceeds {max_bytes} bytes")
                chunks.append(chunk)
            return b"".join(chunks)
    except httpx.HTTPError as exc:
        raise error(f"cannot fetch {url}: {type(exc).__name__}: {exc}") from None
