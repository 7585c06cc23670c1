"""EDR tokens: short-lived access tokens (and refresh tokens) for one transfer, signed with the connector's key.

WHY signed tokens *and* a table: the signature and expiry are checked without a database hit, but a token
must also die at once when the transfer is suspended, terminated or completed; the ``dp_tokens`` row is the
revocation list (kept after revocation, so a replayed token is recognised and refused with a clear reason).
"""

from __future__ import annotations

import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from connector.dataplane.errors import TokenInvalid
from identity.credentials.errors import CredentialError
from identity.credentials.jws import parse_compact, sign_compact
from identity.keys import KeyPair

TOKEN_TYP = "pactum-edr+jwt"
ACCESS_LIFETIME = 600
REFRESH_LIFETIME = 24 * 3600
VERIFIED_CACHE = 10_000


@dataclass(frozen=True)
class IssuedTokens:
    """An access token, its refresh token and when the access token expires (epoch seconds)."""

    access: str
    refresh: str
    expires_at: int
    jti: str


@dataclass(frozen=True)
class TokenClaims:
    """What a verified token says."""

    jti: str
    transfer_id: str
    agreement_id: str
    subject: str
    kind: str
    expires_at: int


class TokenService:
    """Issue, verify, refresh and revoke EDR tokens for the provider's data plane."""

    def __init__(self, sessions: sessionmaker[Session], key: KeyPair, *, kid: str, issuer: str,
                 access_lifetime: int = ACCESS_LIFETIME, refresh_lifetime: int = REFRESH_LIFETIME) -> None:
        self._sessions = sessions
        self._key = key
        self._public = key.public_only()
        self._kid = kid
        self._issuer = issuer
        self.access_lifetime = access_lifetime
        self.refresh_lifetime = refresh_lifetime
        # WHY caches: signature checks and revocation lookups sit on every data request. A token's claims
        # never change once verified; revocations are written through this object (one data-plane process
        # per database), so the in-memory set is exact once a transfer's past revocations are loaded.
        self._verified: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._revoked: dict[str, str] = {}
        self._loaded: set[str] = set()

    def _sign(self, kind: str, transfer_id: str, agreement_id: str, subject: str, lifetime: int,
              now: int) -> tuple[str, str, int]:
        jti = secrets.token_hex(16)
        exp = now + lifetime
        claims = {"iss": self._issuer, "sub": subject, "jti": jti, "iat": now, "exp": exp, "kind": kind,
                  "tid": transfer_id, "agr": agreement_id}
        return sign_compact({"typ": TOKEN_TYP, "kid": self._kid}, claims, self._key), jti, exp

    def issue(self, transfer_id: str, agreement_id: str, subject: str, *, now: float | None = None) -> IssuedTokens:
        """A fresh access + refresh token pair for a transfer, recorded so it can be revoked."""
        from connector.storage.tables_dataplane import DpTokenRow

        t = int(now if now is not None else time.time())
        access, jti, exp = self._sign("access", transfer_id, agreement_id, subject, self.access_lifetime, t)
        refresh, rjti, rexp = self._sign("refresh", transfer_id, agreement_id, subject, self.refresh_lifetime, t)
        with self._sessions.begin() as session:
            session.add(DpTokenRow(jti=jti, transfer_id=transfer_id, kind="access",
                                   expires_at=datetime.fromtimestamp(exp, UTC)))
            session.add(DpTokenRow(jti=rjti, transfer_id=transfer_id, kind="refresh",
                                   expires_at=datetime.fromtimestamp(rexp, UTC)))
        return IssuedTokens(access, refresh, exp, jti)

    def verify(self, token: str, *, kind: str = "access", transfer_id: str | None = None,
               now: float | None = None, allow_revoked: bool = False) -> TokenClaims:
        """Check signature, expiry, kind, transfer and revocation; raise TokenInvalid with the reason."""
        claims = self._verify_signature(token)
        t = now if now is not None else time.time()
        if claims.get("kind") != kind:
            raise TokenInvalid(f"expected an {kind} token, got a {claims.get('kind')!r} token")
        exp = claims.get("exp")
        if not isinstance(exp, int) or exp <= t:
            raise TokenInvalid("token expired; refresh it or start the transfer again", code="token_expired")
        tid = claims.get("tid")
        if not isinstance(tid, str) or (transfer_id is not None and tid != transfer_id):
            raise TokenInvalid("token was issued for another transfer", code="token_wrong_transfer")
        jti = str(claims.get("jti", ""))
        if not allow_revoked:
            reason = self.revocation_reason(jti, tid)
            if reason is not None:
                raise TokenInvalid(f"token revoked: {reason}", code="token_revoked")
        return TokenClaims(jti, tid, str(claims.get("agr", "")), str(claims.get("sub", "")), kind, exp)

    def revocation_reason(self, jti: str, transfer_id: str) -> str | None:
        """Why the token was revoked, or None while it is live."""
        if transfer_id not in self._loaded:
            from connector.storage.tables_dataplane import DpTokenRow

            with self._sessions() as session:
                rows = session.execute(select(DpTokenRow.jti, DpTokenRow.revoked_reason).where(
                    DpTokenRow.transfer_id == transfer_id, DpTokenRow.revoked_at.is_not(None))).all()
            for row_jti, reason in rows:
                self._revoked[row_jti] = reason or "transfer ended"
            self._loaded.add(transfer_id)
        return self._revoked.get(jti)

    def _verify_signature(self, token: str) -> dict[str, Any]:
        cached = self._verified.get(token)
        if cached is not None:
            return cached
        claims = self._check_signature(token)
        self._verified[token] = claims
        if len(self._verified) > VERIFIED_CACHE:
            self._verified.popitem(last=False)
        return claims

    def _check_signature(self, token: str) -> dict[str, Any]:
        try:
            parsed = parse_compact(token, max_bytes=8192)
        except CredentialError as exc:
            raise TokenInvalid(f"malformed token: {exc}") from None
        if parsed.header.get("typ") != TOKEN_TYP or parsed.header.get("kid") != self._kid:
            raise TokenInvalid("token was not issued by this data plane")
        if parsed.header.get("alg") != self._public.alg or not self._public.verify(parsed.signature,
                                                                                  parsed.signing_input):
            raise TokenInvalid("token signature does not verify")
        return parsed.payload

    def refresh(self, refresh_token: str, *, now: float | None = None) -> IssuedTokens:
        """Trade a valid refresh token for a new pair; the old pair is revoked (refresh tokens are single-use)."""
        claims = self.verify(refresh_token, kind="refresh", now=now)
        self.revoke_transfer(claims.transfer_id, "refreshed", kinds=("access", "refresh"))
        return self.issue(claims.transfer_id, claims.agreement_id, claims.subject, now=now)

    def revoke_transfer(self, transfer_id: str, reason: str, *, kinds: tuple[str, ...] = ("access", "refresh")
                        ) -> int:
        """Revoke every live token of a transfer at once; returns how many were revoked."""
        from connector.storage.tables_dataplane import DpTokenRow

        with self._sessions.begin() as session:
            jtis = session.execute(
                update(DpTokenRow)
                .where(DpTokenRow.transfer_id == transfer_id, DpTokenRow.revoked_at.is_(None),
                       DpTokenRow.kind.in_(kinds))
                .values(revoked_at=datetime.now(UTC), revoked_reason=reason)
                .returning(DpTokenRow.jti)).scalars().all()
        for jti in jtis:
            self._revoked[jti] = reason
        return len(jtis)
