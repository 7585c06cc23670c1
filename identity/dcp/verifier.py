"""The whole DCP verifier flow in one call: who is calling me, and which verified credentials do they hold?

:meth:`DcpVerifier.fetch_verified_claims` checks the caller's SI token (audience = my DID, replay guard),
resolves the caller's DID, finds its ``CredentialService``, queries it with my own SI token wrapping the
caller's access token, verifies every presentation and credential (signature, trusted issuer per type,
validity, revocation, holder = caller) and returns the credentials as plain JSON. Verified results are
cached per (caller, scopes) until the earliest credential expiry, capped by ``cache_ttl`` so revocations
still show up within that bound.

A caller whose verified SI token carries no access token grants nothing to read: it is the DID it proved,
with no credentials (a participant that holds none yet can still see what needs none). Whatever a caller
does present is verified in full; one bad presentation or credential still refuses the caller.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx

from identity.credentials.status_list import HttpStatusFetcher, StatusFetcher
from identity.credentials.trust import TrustList
from identity.credentials.verify import PresentationResult, verify_presentation
from identity.dcp.did_keys import resolve_document
from identity.dcp.errors import DcpError, RemoteError
from identity.dcp.jti_store import JtiStore
from identity.dcp.presentation_client import CREDENTIAL_SERVICE_TYPE, query_presentations
from identity.dcp.scopes import Scope, parse_scopes
from identity.dcp.tokens import DEFAULT_LEEWAY, SelfIssuedToken, verify_si_token
from identity.dids.document import find_service
from identity.dids.resolver import Resolver
from identity.keys import KeyPair


class PresentationRejected(DcpError):
    """A presentation or one of its credentials failed verification; ``code`` is the first failed check."""

    code = "presentation_invalid"
    status = 401


@dataclass(frozen=True)
class VerifiedParty:
    """A caller whose identity and credentials were verified; ``credentials`` are plain VC JSON objects."""

    did: str
    credentials: list[dict[str, Any]]
    presentations: list[PresentationResult] = field(repr=False)
    expires_at: float  # epoch seconds until which this result may be reused
    from_cache: bool = False

    def credentials_of_type(self, credential_type: str) -> list[dict[str, Any]]:
        """Credentials whose ``type`` contains ``credential_type``."""
        return [c for c in self.credentials if credential_type in _types(c)]


def _types(credential: dict[str, Any]) -> list[str]:
    value = credential.get("type")
    return [value] if isinstance(value, str) else [t for t in value or [] if isinstance(t, str)]


def _matches(credential: dict[str, Any], scopes: Sequence[Scope]) -> bool:
    for scope in scopes:
        if scope.kind == "type" and scope.value in _types(credential):
            return True
        if scope.kind == "id" and scope.value == credential.get("id"):
            return True
    return False


class DcpVerifier:
    """My side of DCP as a verifier: my DID and key, whom I trust for what, and where I keep used jtis."""

    def __init__(
        self,
        *,
        did: str,
        key: KeyPair,
        kid: str,
        resolver: Resolver,
        jti_store: JtiStore,
        trust: TrustList,
        http_client: httpx.AsyncClient,
        status_fetcher: StatusFetcher | None = None,
        allow_http_hosts: Iterable[str] = (),
        cache_ttl: float = 300,
        leeway: int = DEFAULT_LEEWAY,
    ) -> None:
        self.did, self.key, self.kid = did, key, kid
        self.resolver = resolver
        self.jti_store = jti_store
        self.trust = trust
        self.http_client = http_client
        self.allow_http_hosts = frozenset(allow_http_hosts)
        self.status_fetcher = status_fetcher or HttpStatusFetcher(http_client, allow_http_hosts=self.allow_http_hosts)
        self.cache_ttl = cache_ttl
        self.leeway = leeway
        self._cache: dict[tuple[str, tuple[str, ...]], VerifiedParty] = {}

    @classmethod
    def for_wallet(cls, wallet: Any, **kwargs: Any) -> DcpVerifier:
        """A verifier acting as ``wallet`` (anything with ``did``, ``key`` and ``kid``)."""
        return cls(did=wallet.did, key=wallet.key, kid=wallet.kid, **kwargs)

    def forget(self, did: str | None = None) -> None:
        """Drop cached results (of one caller, or all)."""
        self._cache = {k: v for k, v in self._cache.items() if did is not None and k[0] != did}

    def _credential_service(self, document: dict[str, Any]) -> str:
        service = find_service(document, CREDENTIAL_SERVICE_TYPE)
        endpoint = service.get("serviceEndpoint") if service else None
        if not isinstance(endpoint, str):
            raise DcpError(f"{document.get('id')} publishes no CredentialService endpoint",
                           code="no_credential_service", status=401)
        parts = urlsplit(endpoint)
        if parts.scheme != "https" and not (parts.scheme == "http" and parts.hostname in self.allow_http_hosts):
            raise DcpError(f"refusing credential service at {endpoint}: https required",
                           code="insecure_credential_service", status=401)
        return endpoint

    async def verify_caller(self, si_token: str) -> SelfIssuedToken:
        """Only the SI token check (audience = my DID, signature, times, replay)."""
        return await verify_si_token(si_token, audience=self.did, resolver=self.resolver, jti_store=self.jti_store,
                                     leeway=self.leeway)

    async def fetch_verified_claims(self, si_token_of_caller: str, scopes: Iterable[str]) -> VerifiedParty:
        """Verify the caller and return its verified credentials for ``scopes`` (DCP verifier flow)."""
        caller = await self.verify_caller(si_token_of_caller)
        scope_list = sorted(set(scopes))
        requested = parse_scopes(scope_list)
        if not caller.access_token:  # nothing granted, so nothing to read: authenticated, without claims
            return VerifiedParty(caller.did, [], [], min(caller.expires_at, time.time() + self.cache_ttl))
        cache_key = (caller.did, tuple(scope_list))
        cached = self._cache.get(cache_key)
        if cached is not None and cached.expires_at > time.time():
            return VerifiedParty(cached.did, cached.credentials, cached.presentations, cached.expires_at, True)
        document = await resolve_document(self.resolver, caller.did)
        endpoint = self._credential_service(document)
        presentations = await query_presentations(
            endpoint, verifier_key=self.key, verifier_did=self.did, verifier_kid=self.kid, holder_did=caller.did,
            holder_access_token=caller.access_token, scopes=scope_list, http_client=self.http_client,
        )
        results: list[PresentationResult] = []
        credentials: list[dict[str, Any]] = []
        expiry = time.time() + self.cache_ttl
        for presentation in presentations:
            result = await verify_presentation(
                presentation, resolver=self.resolver, trust=self.trust, audience=self.did,
                expected_holder=caller.did, status_fetcher=self.status_fetcher,
            )
            if not result.ok:
                detail = next((c.detail for c in result.checks if not c.ok), None) or next(
                    (c.error_detail for c in result.credentials if not c.ok), "")
                raise PresentationRejected(f"presentation from {caller.did} rejected: {result.error_code} {detail}",
                                           code=result.error_code or "presentation_invalid")
            results.append(result)
            for cred in result.credentials:
                assert cred.credential is not None
                if not _matches(cred.credential, requested):
                    raise PresentationRejected(
                        f"{caller.did} presented a credential no requested scope selects ({_types(cred.credential)})",
                        code="presentation_out_of_scope")
                credentials.append(cred.credential)
                if cred.valid_until is not None:
                    expiry = min(expiry, cred.valid_until.timestamp())
        party = VerifiedParty(caller.did, credentials, results, expiry)
        self._cache[cache_key] = party
        return party


async def fetch_verified_claims(si_token_of_caller: str, *, verifier: DcpVerifier,
                                scopes: Iterable[str]) -> VerifiedParty:
    """Module-level form of :meth:`DcpVerifier.fetch_verified_claims`."""
    return await verifier.fetch_verified_claims(si_token_of_caller, scopes)


__all__ = ["DcpVerifier", "PresentationRejected", "RemoteError", "VerifiedParty", "fetch_verified_claims"]
