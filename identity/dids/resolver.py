"""A caching DID resolver with a per-method plug-in registry.

Verification is hot: after the first resolution, ``resolve`` and ``verification_key`` are dictionary look-ups
(documents AND parsed public keys are cached for ``ttl`` seconds). Static documents added with
``add_document`` never expire, which lets verifiers work offline against known parties.
"""

from __future__ import annotations

import asyncio
import re
import ssl
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx

from identity.dids.document import (
    check_relationship,
    find_verification_method,
    key_from_verification_method,
    validate_did_document,
)
from identity.dids.errors import InvalidDid, UnsupportedDidMethod, VerificationMethodNotFound
from identity.dids.key import DidKeyMethod
from identity.dids.web import DidWebMethod
from identity.keys import KeyPair

_DID_RE = re.compile(r"^did:([a-z0-9]+):([A-Za-z0-9._%:-]+)$")


class DidMethod(Protocol):
    """A resolver plug-in: ``name`` is the DID method (``web``, ``key``...), ``resolve`` returns the raw doc."""

    name: str

    async def resolve(self, did: str) -> dict[str, Any]: ...


@dataclass
class _Entry:
    document: dict[str, Any]
    expires: float  # monotonic seconds; inf for static documents
    keys: dict[tuple[str, str], KeyPair] = field(default_factory=dict)
    fetched: float = field(default_factory=time.monotonic)


def parse_did(did_or_url: str) -> tuple[str, str]:
    """``(did, method)`` of a DID or DID URL; raises InvalidDid for anything else."""
    if not isinstance(did_or_url, str):
        raise InvalidDid("DID must be a string")
    did = did_or_url.split("#", 1)[0].split("?", 1)[0]
    m = _DID_RE.match(did)
    if not m:
        raise InvalidDid(f"not a valid DID: {did_or_url[:200]!r}")
    return did, m.group(1)


class Resolver:
    """Resolve DIDs through registered method plug-ins, validate the document, cache it for ``ttl`` seconds."""

    def __init__(
        self,
        ttl: float = 300,
        allow_http_hosts: Iterable[str] | None = None,
        http_client: httpx.AsyncClient | None = None,
        *,
        methods: Iterable[DidMethod] | None = None,
        max_entries: int = 10_000,
        refetch_after: float = 30.0,
        verify: ssl.SSLContext | bool = True,
    ) -> None:
        """``max_entries`` bounds the cache (oldest evicted first); a ``kid`` missing from a cached document
        triggers one re-fetch if the copy is older than ``refetch_after`` seconds (keys may have rotated).
        ``verify`` is the TLS setting of did:web fetches made without ``http_client``."""
        self.ttl = ttl
        self.max_entries = max_entries
        self.refetch_after = refetch_after
        self._methods: dict[str, DidMethod] = {}
        self._cache: dict[str, _Entry] = {}
        self._inflight: dict[str, asyncio.Future[dict[str, Any]]] = {}
        defaults: list[DidMethod] = [DidKeyMethod(), DidWebMethod(allow_http_hosts, http_client, verify=verify)]
        for plugin in methods if methods is not None else defaults:
            self.register(plugin)

    def register(self, plugin: DidMethod) -> None:
        """Add or replace the plug-in for ``plugin.name``."""
        self._methods[plugin.name] = plugin

    @property
    def methods(self) -> list[str]:
        return sorted(self._methods)

    def add_document(self, document: dict[str, Any]) -> None:
        """Pin a DID document (validated) so it resolves without I/O and never expires."""
        validate_did_document(document)
        self._cache[document["id"]] = _Entry(document, float("inf"))

    def invalidate(self, did: str | None = None) -> None:
        """Drop one cached document (or all non-static ones), e.g. after a key rotation was announced."""
        if did is None:
            self._cache = {k: v for k, v in self._cache.items() if v.expires == float("inf")}
        else:
            self._cache.pop(did, None)

    def is_pinned(self, did: str) -> bool:
        """True if ``did`` (or the DID of a DID URL) was pinned with ``add_document``: such documents never
        expire and re-resolution must not drop them (there may be no method plug-in to fetch them again)."""
        try:
            did = parse_did(did)[0]
        except InvalidDid:
            return False
        entry = self._cache.get(did)
        return entry is not None and entry.expires == float("inf")

    async def refresh(self, did: str) -> dict[str, Any]:
        """Resolve ``did`` afresh, bypassing the cache (a pinned document is returned as pinned).

        For callers that learnt the cached copy is stale, e.g. a token signed with a key it does not list.
        """
        did = parse_did(did)[0]
        if not self.is_pinned(did):
            self.invalidate(did)
        return await self.resolve(did)

    def _store(self, did: str, entry: _Entry) -> None:
        self._cache.pop(did, None)
        while len(self._cache) >= self.max_entries:
            victim = next((k for k, v in self._cache.items() if v.expires != float("inf")), None)
            if victim is None:
                break
            del self._cache[victim]
        self._cache[did] = entry

    async def resolve(self, did: str) -> dict[str, Any]:
        """The DID document for ``did`` (a DID URL is accepted; its fragment is ignored)."""
        return (await self._entry(did)).document

    async def _entry(self, did_or_url: str) -> _Entry:
        did, method = parse_did(did_or_url)
        entry = self._cache.get(did)
        if entry is not None and entry.expires > time.monotonic():
            return entry
        plugin = self._methods.get(method)
        if plugin is None:
            raise UnsupportedDidMethod(f"no resolver registered for did:{method}")
        pending = self._inflight.get(did)
        if pending is not None:
            await asyncio.shield(pending)
            return self._cache[did]
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._inflight[did] = fut
        try:
            doc = validate_did_document(await plugin.resolve(did), did)
            entry = _Entry(doc, time.monotonic() + self.ttl)
            self._store(did, entry)
            fut.set_result(doc)
            return entry
        except asyncio.CancelledError:
            fut.cancel()
            raise
        except BaseException as exc:
            fut.set_exception(exc)
            fut.exception()  # mark retrieved: waiters re-raise it themselves
            raise
        finally:
            self._inflight.pop(did, None)

    async def verification_key(self, kid: str, relationship: str | None = None,
                               controller: str | None = None) -> KeyPair:
        """The public key behind DID URL ``kid``, checked to be under ``relationship`` (if given).

        A relative ``kid`` (``#key-1``) is resolved against ``controller``. Raises VerificationMethodNotFound
        (code ``kid_unresolvable``) or KeyNotInRelationship (``key_not_in_relationship``).
        """
        if kid.startswith("#"):
            if not controller:
                raise InvalidDid(f"relative key id {kid!r} needs a controller DID")
            kid = controller + kid
        entry = await self._entry(kid)
        cache_key = (kid, relationship or "")
        key = entry.keys.get(cache_key)
        if key is None:
            if "#" not in kid:
                raise InvalidDid(f"key id {kid!r} must be a DID URL with a fragment")
            try:
                vm = find_verification_method(entry.document, kid)
            except VerificationMethodNotFound:
                if entry.expires == float("inf") or time.monotonic() - entry.fetched < self.refetch_after:
                    raise
                self.invalidate(entry.document["id"])  # maybe a freshly rotated key: fetch once more
                entry = await self._entry(kid)
                vm = find_verification_method(entry.document, kid)
            doc = entry.document
            if relationship:
                check_relationship(doc, kid, relationship)
            key = key_from_verification_method(vm)
            key.kid = kid
            entry.keys[cache_key] = key
        return key
