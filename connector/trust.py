"""DCP trust for DSP: sign every outgoing request, verify every incoming one down to its credentials.

Outgoing: ``Authorization: Bearer <SI token>`` with ``aud`` = the counterparty's DID and, in ``token``, an
access token that lets the counterparty read our credentials of the types we hold.
Incoming: the SI token is checked (signature, ``aud`` = our DID, ``exp``, ``jti`` replay), the caller's
credential service is queried with the scopes our trust configuration names, every presentation and
credential is verified, and the result is a :class:`VerifiedParty` whose credentials feed the policy engine.

WHY scopes from the trust configuration: a connector only believes credential types it has trusted issuers
for, so those are exactly the types any of its policies can use; asking for more would leak nothing useful.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx

from connector.errors import ConnectorError
from identity.dcp.scopes import type_scope
from identity.errors import IdentityError
from identity.wallet import CREDENTIALS_FILE

if TYPE_CHECKING:
    from connector.context import ConnectorContext

log = logging.getLogger("pactum.connector.trust")

DSP_VERSION = "2025-1"
HELD_SCOPES_SECONDS = 5.0


class TrustError(ConnectorError):
    """The caller could not be authenticated or its credentials could not be verified."""

    code = "unauthorized"
    status = 401


@dataclass(frozen=True)
class Party:
    """A counterparty whose DID and credentials were verified (or, for our own calls, ourselves)."""

    did: str
    credentials: tuple[dict[str, Any], ...] = ()
    facts: dict[str, Any] = field(default_factory=dict)

    def credential_types(self) -> set[str]:
        out: set[str] = set()
        for cred in self.credentials:
            value = cred.get("type")
            out.update([value] if isinstance(value, str) else [str(t) for t in value or []])
        return out


def _facts_from(credentials: tuple[dict[str, Any], ...]) -> dict[str, Any]:
    """Claims policies commonly refer to (BPN, jurisdiction), lifted from verified credential subjects."""
    facts: dict[str, Any] = {}
    for cred in credentials:
        subject = cred.get("credentialSubject")
        for sub in subject if isinstance(subject, list) else [subject]:
            if not isinstance(sub, dict):
                continue
            for key in ("bpn", "holderIdentifier", "jurisdiction", "country"):
                if isinstance(sub.get(key), str):
                    facts.setdefault(key, sub[key])
    return facts


class DcpTrust:
    """Both directions of DCP for one connector (see module docstring)."""

    def __init__(self, ctx: ConnectorContext) -> None:
        self.ctx = ctx
        self._peer_dids: dict[str, tuple[str, float]] = {}
        self._held: tuple[tuple[int, int], float, list[str]] | None = None  # (wallet file stamp, until, scopes)
        self._credentials_file: tuple[object, str] = (None, "")  # (wallet, path of its credential file)

    # ---- outgoing ---------------------------------------------------------------------------------------
    def held_scopes(self) -> list[str]:
        """Scopes for every credential type we hold: what the counterparty may read about us.

        WHY remembered: every outgoing DSP message needs them, and reading and parsing the wallet each time
        was a visible share of a busy connector. They are read again as soon as the wallet's credential
        file changes (a credential stored or removed), and at least every ``HELD_SCOPES_SECONDS``.
        """
        stamp = self._wallet_stamp()
        held = self._held
        if held is not None and held[0] == stamp and held[1] > time.monotonic():
            return list(held[2])
        types = {t for c in self.ctx.wallet.credentials() for t in c.types if t != "VerifiableCredential"}
        form = self.ctx.settings.trust.scope_format
        scopes = sorted(type_scope(t, "read", form) for t in types)
        self._held = (stamp, time.monotonic() + HELD_SCOPES_SECONDS, scopes)
        return list(scopes)

    def _wallet_stamp(self) -> tuple[int, int]:
        """(mtime, size) of the wallet's credential file: one stat, its path joined once per wallet."""
        wallet = self.ctx.wallet
        if self._credentials_file[0] is not wallet:
            self._credentials_file = (wallet, os.fspath(wallet.folder / CREDENTIALS_FILE))
        try:
            info = os.stat(self._credentials_file[1])
        except OSError:
            return (0, 0)
        return (info.st_mtime_ns, info.st_size)

    def authorization(self, audience_did: str) -> str:
        """The ``Authorization`` header value for one request to ``audience_did`` (fresh ``jti`` each time)."""
        wallet = self.ctx.wallet
        scopes = self.held_scopes()
        access = wallet.issue_access_token(audience_did, scopes) if scopes else None
        return "Bearer " + wallet.sign_si_token(audience_did, access)

    async def discover_did(self, protocol_address: str) -> str:
        """The counterparty's DID from its DSP version metadata (``serviceId`` is a DID URL of its DataService)."""
        base = protocol_address.rstrip("/")
        cached = self._peer_dids.get(base)
        if cached is not None and cached[1] > time.monotonic():
            return cached[0]
        parts = urlsplit(base)
        root = f"{parts.scheme}://{parts.netloc}"
        candidates = [base + "/.well-known/dspace-version"]
        if root != base:
            candidates.append(root + "/.well-known/dspace-version")
        for url in candidates:
            try:
                response = await self.ctx.http.get(url)
            except httpx.HTTPError as exc:
                raise TrustError(f"cannot reach {url} to learn the counterparty's DID: {exc.__class__.__name__}",
                                 code="counterparty_unreachable", status=502) from exc
            if response.status_code != 200:
                continue
            try:
                versions = response.json().get("protocolVersions", [])
            except (ValueError, AttributeError):
                continue
            for entry in versions:
                service = entry.get("serviceId") if isinstance(entry, dict) else None
                if entry.get("version") == DSP_VERSION and isinstance(service, str) and service.startswith("did:"):
                    did = service.split("#", 1)[0]
                    self._peer_dids[base] = (did, time.monotonic() + 300)
                    return did
        raise TrustError(f"{base} advertises no DSP {DSP_VERSION} service with a DID; give counterPartyId",
                         code="counterparty_did_unknown", status=400)

    # ---- incoming ---------------------------------------------------------------------------------------
    def required_scopes(self) -> list[str]:
        """Scopes we ask every caller for: the credential types we have trusted issuers for."""
        form = self.ctx.settings.trust.scope_format
        types = sorted(t for t in self.ctx.settings.trust.issuers if t != "*")
        return [type_scope(t, "read", form) for t in types]

    async def verify_request(self, authorization: str | None) -> Party:
        """Authenticate a DSP request; TrustError (401) with the precise reason otherwise."""
        if not authorization or not authorization.lower().startswith("bearer "):
            raise TrustError("missing 'Authorization: Bearer <self-issued ID token>' header", code="token_missing")
        token = authorization[7:].strip()
        scopes = self.required_scopes()
        try:
            if scopes:
                verified = await self.ctx.verifier.fetch_verified_claims(token, scopes)
                credentials = tuple(verified.credentials)
                did = verified.did
            else:
                did = (await self.ctx.verifier.verify_caller(token)).did
                credentials = ()
        except IdentityError as exc:
            code = str(getattr(exc, "code", "unauthorized"))
            log.warning("rejected DSP caller: %s (%s)", exc, code)
            raise TrustError(f"authentication failed: {exc}", code=code) from exc
        return Party(did, credentials, _facts_from(credentials))

    def self_party(self) -> Party:
        """Ourselves as a party (for operations the operator starts locally)."""
        held = tuple(c.payload for c in self.ctx.wallet.credentials() if isinstance(c.payload, dict))
        return Party(self.ctx.did, held)
