"""The default ``RevocationCheck``: are the counterparty's credentials revoked or suspended *now*?

Each verified credential kept with a transfer may carry ``credentialStatus`` entries (Bitstring Status List
or StatusList2021). The status list credential is fetched, its signature and issuer verified (it must come
from the credential's own issuer), and the bit looked up. Verified lists are cached for ``ttl`` seconds, so
the data path pays a dictionary lookup; a revocation takes effect within ``ttl`` - and at once for a
counterparty whose credentials were not checked here before (its first check always fetches afresh).

WHY fail closed: a status list that cannot be fetched or verified means we cannot say the credential is
still valid; the data request is refused with that reason rather than served on an assumption.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import Any

import httpx

from identity.credentials.status_list import HttpStatusFetcher, StatusList
from identity.credentials.verify import credential_issuer, verify_credential
from identity.dids.resolver import Resolver
from identity.errors import IdentityError

VALIDITY_PURPOSES = ("revocation", "suspension")
STATUS_CREDENTIAL_TYPES = {"BitstringStatusListCredential", "StatusList2021Credential"}


def _entries(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def _describe(credential: Mapping[str, Any]) -> str:
    types = [t for t in _entries(credential.get("type")) if t != "VerifiableCredential"]
    name = "/".join(str(t) for t in types) or "credential"
    ident = credential.get("id")
    return f"{name} {ident}" if ident else name


class StatusListRevocation:
    """``await check(did, credentials)`` -> None while all are valid, else the reason (see module docstring)."""

    def __init__(self, resolver: Resolver, http: httpx.AsyncClient, *, allow_http_hosts: Iterable[str] = (),
                 ttl: float = 10.0) -> None:
        self._resolver = resolver
        self._fetcher = HttpStatusFetcher(http, ttl=ttl, allow_http_hosts=allow_http_hosts)
        self._lists: dict[str, tuple[float, StatusList, str]] = {}
        self._seen: set[tuple[str, str]] = set()  # (counterparty DID, list URL) checked at least once
        self.ttl = ttl

    async def __call__(self, did: str, credentials: tuple[Mapping[str, Any], ...]) -> str | None:
        for credential in credentials:
            for entry in _entries(credential.get("credentialStatus")):
                if not isinstance(entry, Mapping):
                    return f"{_describe(credential)} has an unreadable credentialStatus"
                purpose = str(entry.get("statusPurpose", "revocation"))
                if purpose not in VALIDITY_PURPOSES:
                    continue  # e.g. "message" lists say nothing about validity
                url, raw_index = entry.get("statusListCredential"), entry.get("statusListIndex")
                try:
                    index = int(raw_index)  # type: ignore[arg-type]
                except (TypeError, ValueError):
                    return f"{_describe(credential)} has no usable statusListIndex"
                if not isinstance(url, str) or not url:
                    return f"{_describe(credential)} has no statusListCredential URL"
                try:
                    issuer = credential_issuer(dict(credential))
                    status_list = await self._load(url, issuer, fresh=(did, url) not in self._seen)
                    bit = status_list.get(index)
                    self._seen.add((did, url))
                except (IdentityError, ValueError) as exc:
                    return f"cannot check the status of {_describe(credential)}: {exc}"
                if bit:
                    verb = "revoked" if purpose == "revocation" else "suspended"
                    return f"{_describe(credential)} was {verb} by its issuer (bit {index} of {url})"
        return None

    def forget(self, url: str | None = None) -> None:
        """Drop a cached list (or all), e.g. when the authority announces a revocation."""
        for key in [url] if url is not None else list(self._lists):
            self._lists.pop(key, None)

    async def _load(self, url: str, issuer: str, *, fresh: bool = False) -> StatusList:
        cached = self._lists.get(url)
        if not fresh and cached is not None and cached[0] > time.monotonic() and cached[2] == issuer:
            return cached[1]
        self._fetcher.invalidate([url])  # our own cache decides freshness
        raw = await self._fetcher(url)
        listed = await verify_credential(raw, resolver=self._resolver, trust=None, check_status=False)
        if not listed.ok:
            raise ValueError(f"status list {url} failed verification ({listed.error_code})")
        if listed.issuer != issuer:
            raise ValueError(f"status list {url} is issued by {listed.issuer}, not by {issuer}")
        if not STATUS_CREDENTIAL_TYPES & set(listed.types):
            raise ValueError(f"{url} is not a status list credential")
        subject = (listed.credential or {}).get("credentialSubject")
        if not isinstance(subject, dict) or not isinstance(subject.get("encodedList"), str):
            raise ValueError(f"status list {url} has no encodedList")
        status_list = StatusList.decode(subject["encodedList"])
        self._lists[url] = (time.monotonic() + self.ttl, status_list, issuer)
        return status_list
