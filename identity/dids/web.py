"""did:web: map a DID to its HTTPS document URL (per the did:web method spec) and fetch it with httpx.

Plain http is refused unless the host is loopback AND explicitly allowed, so tests and local demos work
without ever weakening production resolution.
"""

from __future__ import annotations

import ipaddress
import json
import ssl
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import httpx

from identity.bounded_http import get_bounded
from identity.dids.errors import DidResolutionError, InvalidDid, InvalidDidDocument

LOOPBACK_NAMES = frozenset({"localhost"})
MAX_DOCUMENT_BYTES = 256 * 1024


def is_loopback_host(host: str) -> bool:
    """True for localhost and loopback IP literals (127.0.0.0/8, ::1)."""
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _split_did_web(did: str) -> tuple[str, list[str]]:
    base = did.split("#", 1)[0].split("?", 1)[0]
    if not base.startswith("did:web:"):
        raise InvalidDid(f"not a did:web: {did!r}")
    parts = base[len("did:web:"):].split(":")
    if not parts[0] or any(not p for p in parts):
        raise InvalidDid(f"malformed did:web {did!r}")
    host = unquote(parts[0])
    if any(c in host for c in "/?#@ ") or host.count(":") > 1:
        raise InvalidDid(f"malformed did:web host in {did!r}")
    return host, [unquote(p) for p in parts[1:]]


def did_web_url(did: str, allow_http_hosts: Iterable[str] | None = None) -> str:
    """The document URL: ``https://host[:port]/.well-known/did.json`` or ``https://host/path/did.json``.

    ``http`` is used only when the host is loopback and listed in ``allow_http_hosts``.
    """
    host, path = _split_did_web(did)
    hostname = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    scheme = "https"
    if allow_http_hosts and hostname in set(allow_http_hosts):
        if not is_loopback_host(hostname):
            raise InvalidDid(f"plain http is only allowed for loopback hosts, not {hostname!r}")
        scheme = "http"
    suffix = "/".join(quote(p, safe="") for p in path) + "/did.json" if path else ".well-known/did.json"
    return f"{scheme}://{host}/{suffix}"


def did_web_from_url(url: str) -> str:
    """The did:web for a base URL, e.g. ``http://127.0.0.1:8080/issuer`` -> ``did:web:127.0.0.1%3A8080:issuer``."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidDid(f"cannot derive a did:web from {url!r}")
    host = parts.hostname + (f"%3A{parts.port}" if parts.port else "")
    path = [quote(p, safe="") for p in parts.path.strip("/").split("/") if p]
    if path and path[-1] == "did.json":
        path = path[:-1]
    if path == [".well-known"]:
        path = []
    return ":".join(["did", "web", host, *path])


class DidWebMethod:
    """Resolver plug-in for did:web over httpx (injectable client, bounded size and time)."""

    name = "web"

    def __init__(
        self,
        allow_http_hosts: Iterable[str] | None = None,
        http_client: httpx.AsyncClient | None = None,
        *,
        timeout: float = 10.0,
        max_bytes: int = MAX_DOCUMENT_BYTES,
        verify: ssl.SSLContext | bool = True,
    ) -> None:
        """``verify`` applies only to the short-lived client used when no ``http_client`` is given (an injected
        client brings its own setting); see ``identity.tls.client_verify``."""
        self.allow_http_hosts = frozenset(allow_http_hosts or ())
        for host in self.allow_http_hosts:
            if not is_loopback_host(host):
                raise InvalidDid(f"plain http is only allowed for loopback hosts, not {host!r}")
        self.http_client = http_client
        self.timeout = timeout
        self.max_bytes = max_bytes
        self.verify = verify

    async def resolve(self, did: str) -> dict[str, Any]:
        url = did_web_url(did, self.allow_http_hosts)
        body = await get_bounded(self.http_client, url, accept="application/did+json, application/json",
                                 max_bytes=self.max_bytes, timeout=self.timeout, what="DID document",
                                 error=DidResolutionError, verify=self.verify)
        try:
            doc = json.loads(body)
        except ValueError as exc:
            raise InvalidDidDocument(f"DID document at {url} is not JSON: {exc}") from None
        if not isinstance(doc, dict):
            raise InvalidDidDocument(f"DID document at {url} is not a JSON object")
        return doc
