"""Bitstring Status List (VC 2.0) and StatusList2021 (VC 1.1): encode, decode, build and fetch.

Bit order follows both specs: index 0 is the most significant bit of byte 0. ``encodedList`` is the GZIP'd
bitstring in base64url; Bitstring Status List adds the multibase ``u`` prefix, StatusList2021 has none.
Decoding accepts both (and padded/standard base64), and caps decompressed size against gzip bombs.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import json
import time
import zlib
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime
from typing import Any

import httpx

from identity.bounded_http import get_bounded
from identity.credentials.model import VC_V1_CONTEXT, VC_V2_CONTEXT, format_datetime
from identity.errors import IdentityError

MIN_BITS = 131072  # 16 KiB: the herd-privacy minimum both specs recommend
MAX_BITS = 2**27  # 16 MiB decompressed
STATUS_LIST_2021_CONTEXT = "https://w3id.org/vc/status-list/2021/v1"
PURPOSES = ("revocation", "suspension")

StatusFetcher = Callable[[str], Awaitable[str | dict[str, Any]]]


class StatusListError(IdentityError):
    """An encoded status list, index or status list credential is invalid."""

    code = "status_list_invalid"


class StatusList:
    """A mutable bitstring of credential statuses (True = revoked / suspended)."""

    def __init__(self, data: bytearray | bytes, size: int | None = None) -> None:
        self._bits = bytearray(data)
        self.size = size if size is not None else len(self._bits) * 8

    @classmethod
    def create(cls, size: int = MIN_BITS) -> StatusList:
        """An all-clear list of ``size`` entries (multiple of 8)."""
        if size <= 0 or size % 8 or size > MAX_BITS:
            raise StatusListError(f"status list size must be a positive multiple of 8 up to {MAX_BITS}")
        return cls(bytearray(size // 8), size)

    def _check(self, index: int) -> None:
        if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < self.size:
            raise StatusListError(f"status list index {index!r} is outside 0..{self.size - 1}")

    def get(self, index: int) -> bool:
        self._check(index)
        return bool(self._bits[index >> 3] & (0x80 >> (index & 7)))

    def set(self, index: int, revoked: bool = True) -> None:
        self._check(index)
        if revoked:
            self._bits[index >> 3] |= 0x80 >> (index & 7)
        else:
            self._bits[index >> 3] &= ~(0x80 >> (index & 7)) & 0xFF

    def set_indexes(self) -> list[int]:
        """Every index whose bit is set (for audits and tests)."""
        return [i for i in range(self.size) if self._bits[i >> 3] and self.get(i)]

    def encode(self, multibase: bool = True) -> str:
        """GZIP + base64url (no padding); with the multibase ``u`` prefix for Bitstring Status List."""
        compressed = gzip.compress(bytes(self._bits), mtime=0)
        text = base64.urlsafe_b64encode(compressed).rstrip(b"=").decode("ascii")
        return "u" + text if multibase else text

    @classmethod
    def decode(cls, encoded: str) -> StatusList:
        """Parse an ``encodedList`` in either spec's form."""
        if not isinstance(encoded, str) or not encoded:
            raise StatusListError("encodedList must be a non-empty string")
        body = encoded[1:] if encoded[0] == "u" else encoded
        body = body.replace("+", "-").replace("/", "_").rstrip("=")
        try:
            compressed = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        except (binascii.Error, ValueError):
            raise StatusListError("encodedList is not base64url") from None
        try:
            inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
            data = inflater.decompress(compressed, MAX_BITS // 8 + 1)
        except zlib.error as exc:
            raise StatusListError(f"encodedList is not GZIP data: {exc}") from None
        if len(data) > MAX_BITS // 8 or inflater.unconsumed_tail:
            raise StatusListError("decoded status list exceeds the size limit")
        if not data:
            raise StatusListError("decoded status list is empty")
        return cls(bytearray(data))


def build_status_list_credential(
    issuer: str,
    list_url: str,
    status_list: StatusList,
    *,
    purpose: str = "revocation",
    kind: str = "BitstringStatusList",
    valid_from: Any = None,
    valid_until: Any = None,
    ttl_ms: int | None = None,
) -> dict[str, Any]:
    """The unsigned status list credential an issuer publishes at ``list_url`` (sign it with issue_vc_jwt).

    ``kind`` ``BitstringStatusList`` gives a VCDM 2.0 credential (encodedList with ``u`` prefix);
    ``StatusList2021`` gives a VCDM 1.1 credential (plain base64url).
    """
    if purpose not in PURPOSES:
        raise StatusListError(f"status purpose must be one of {PURPOSES}")
    start = valid_from or datetime.now(UTC)
    start_s = start if isinstance(start, str) else format_datetime(start)
    if kind == "BitstringStatusList":
        cred: dict[str, Any] = {
            "@context": [VC_V2_CONTEXT],
            "id": list_url,
            "type": ["VerifiableCredential", "BitstringStatusListCredential"],
            "issuer": issuer,
            "validFrom": start_s,
            "credentialSubject": {
                "id": f"{list_url}#list",
                "type": "BitstringStatusList",
                "statusPurpose": purpose,
                "encodedList": status_list.encode(multibase=True),
            },
        }
        if ttl_ms is not None:
            cred["credentialSubject"]["ttl"] = ttl_ms
        if valid_until is not None:
            cred["validUntil"] = valid_until if isinstance(valid_until, str) else format_datetime(valid_until)
        return cred
    if kind == "StatusList2021":
        cred = {
            "@context": [VC_V1_CONTEXT, STATUS_LIST_2021_CONTEXT],
            "id": list_url,
            "type": ["VerifiableCredential", "StatusList2021Credential"],
            "issuer": issuer,
            "issuanceDate": start_s,
            "credentialSubject": {
                "id": f"{list_url}#list",
                "type": "StatusList2021",
                "statusPurpose": purpose,
                "encodedList": status_list.encode(multibase=False),
            },
        }
        if valid_until is not None:
            cred["expirationDate"] = valid_until if isinstance(valid_until, str) else format_datetime(valid_until)
        return cred
    raise StatusListError(f"unknown status list kind {kind!r}")


def status_entry(list_url: str, index: int, *, purpose: str = "revocation",
                 kind: str = "BitstringStatusList") -> dict[str, Any]:
    """The ``credentialStatus`` entry an issued credential carries to point at its bit."""
    if purpose not in PURPOSES:
        raise StatusListError(f"status purpose must be one of {PURPOSES}")
    entry_type = {"BitstringStatusList": "BitstringStatusListEntry", "StatusList2021": "StatusList2021Entry"}.get(kind)
    if entry_type is None:
        raise StatusListError(f"unknown status list kind {kind!r}")
    return {
        "id": f"{list_url}#{index}",
        "type": entry_type,
        "statusPurpose": purpose,
        "statusListIndex": str(index),
        "statusListCredential": list_url,
    }


class CachedStatusFetcher:
    """Wraps any ``async fetch(url)`` with a TTL cache of raw AND verified lists (verify.py fills ``verified``)."""

    def __init__(self, fetch: StatusFetcher, *, ttl: float = 300) -> None:
        self._fetch = fetch
        self.ttl = ttl
        self._raw: dict[str, tuple[float, str | dict[str, Any]]] = {}
        self.verified: dict[str, tuple[float, Any]] = {}

    async def __call__(self, url: str) -> str | dict[str, Any]:
        hit = self._raw.get(url)
        if hit and hit[0] > time.monotonic():
            return hit[1]
        value = await self._fetch(url)
        self._raw[url] = (time.monotonic() + self.ttl, value)
        return value

    def invalidate(self, urls: Iterable[str] | None = None) -> None:
        for url in list(urls) if urls is not None else list(self._raw):
            self._raw.pop(url, None)
            self.verified.pop(url, None)


class HttpStatusFetcher(CachedStatusFetcher):
    """Fetch status list credentials over HTTP(S) (JWT or JSON body), bounded in size, cached for ``ttl``."""

    def __init__(self, http_client: httpx.AsyncClient | None = None, *, ttl: float = 300,
                 allow_http_hosts: Iterable[str] | None = None, max_bytes: int = 4 * 1024 * 1024,
                 timeout: float = 10.0) -> None:
        super().__init__(self._get, ttl=ttl)
        self.http_client = http_client
        self.allow_http_hosts = frozenset(allow_http_hosts or ())
        self.max_bytes = max_bytes
        self.timeout = timeout

    async def _get(self, url: str) -> str | dict[str, Any]:
        parsed = httpx.URL(url)
        if parsed.scheme != "https" and not (parsed.scheme == "http" and parsed.host in self.allow_http_hosts):
            raise StatusListError(f"refusing to fetch status list over {parsed.scheme}: {url}")
        body = await get_bounded(self.http_client, url, accept="application/vc+jwt, application/json",
                                 max_bytes=self.max_bytes, timeout=self.timeout, what="status list",
                                 error=StatusListError)
        text = body.decode("utf-8", errors="replace").strip()
        if text.startswith("{"):
            try:
                value = json.loads(text)
            except ValueError as exc:
                raise StatusListError(f"status list at {url} is not JSON: {exc}") from None
            if not isinstance(value, dict):
                raise StatusListError(f"status list at {url} is not a JSON object")
            return value
        return text
