"""Self-Issued ID Tokens and holder-signed access tokens (DCP 1.0 base protocol, section "Self-Issued ID Tokens").

An SI token proves "I am DID x, talking to you (aud)"; its optional ``token`` claim carries an access token
the *holder* signed, granting the audience (a verifier or issuer) some scopes on the holder's credential
service. Verification is strict and names every failure with its own code so callers can log and map it.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from identity.dcp.did_keys import DidResolver, resolve_document, select_key
from identity.dcp.errors import TokenError
from identity.dcp.jti_store import JtiStore
from identity.dcp.jws import parse_jws, sign_jws
from identity.dcp.scopes import Scope, ScopeError, parse_scopes
from identity.keys import KeyPair

DEFAULT_LIFETIME = 300  # seconds an SI token lives: one request/response round, plus margin
DEFAULT_LEEWAY = 30  # clock skew we tolerate between participants
MAX_AGE = 3600  # reject tokens issued longer ago than this, which bounds how long jtis must be kept
SI_RELATIONSHIP = "capabilityInvocation"  # the DCP spec's required verification relationship


@dataclass(frozen=True)
class SelfIssuedToken:
    """The verified content of an SI token."""

    did: str
    audience: str
    jti: str
    issued_at: int
    expires_at: int
    access_token: str | None
    kid: str | None
    claims: dict[str, Any] = field(repr=False)


@dataclass(frozen=True)
class AccessGrant:
    """The verified content of a holder-issued access token: who may do what, until when."""

    holder: str
    grantee: str
    scopes: tuple[Scope, ...]
    expires_at: int
    jti: str


def create_si_token(
    key: KeyPair,
    *,
    did: str,
    kid: str,
    audience: str,
    token: str | None = None,
    lifetime: int = DEFAULT_LIFETIME,
    now: float | None = None,
    extra_claims: dict[str, Any] | None = None,
) -> str:
    """Sign a fresh SI token (``iss`` = ``sub`` = ``did``, new ``jti``) for ``audience``."""
    issued = int(time.time() if now is None else now)
    claims: dict[str, Any] = dict(extra_claims or {})
    claims.update(
        {"iss": did, "sub": did, "aud": audience, "jti": f"urn:uuid:{uuid.uuid4()}",
         "iat": issued, "nbf": issued, "exp": issued + lifetime}
    )
    if token is not None:
        claims["token"] = token
    return sign_jws(claims, key, kid=kid)


def create_access_token(
    key: KeyPair,
    *,
    holder_did: str,
    kid: str,
    grantee_did: str,
    scopes: Iterable[str],
    lifetime: int = DEFAULT_LIFETIME,
    now: float | None = None,
) -> str:
    """Sign an access token by which the holder lets ``grantee_did`` use ``scopes`` on its credential service."""
    scope_list = list(scopes)
    parse_scopes(scope_list)  # refuse to mint a grant the credential service could not read
    issued = int(time.time() if now is None else now)
    claims = {
        "iss": holder_did, "sub": holder_did, "aud": grantee_did, "jti": f"urn:uuid:{uuid.uuid4()}",
        "iat": issued, "nbf": issued, "exp": issued + lifetime, "scope": " ".join(scope_list),
    }
    return sign_jws(claims, key, kid=kid, typ="at+jwt")


def _int_claim(claims: dict[str, Any], name: str, *, required: bool) -> int | None:
    value = claims.get(name)
    if value is None:
        if required:
            raise TokenError(f"token lacks the {name!r} claim", code="missing_claim")
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TokenError(f"claim {name!r} must be a number of seconds", code="malformed")
    return int(value)


def _check_times(claims: dict[str, Any], *, now: float, leeway: int, max_age: int | None) -> tuple[int, int]:
    exp = _int_claim(claims, "exp", required=True)
    iat = _int_claim(claims, "iat", required=True)
    nbf = _int_claim(claims, "nbf", required=False)
    assert exp is not None and iat is not None
    if now >= exp + leeway:
        raise TokenError("token has expired", code="expired")
    if nbf is not None and now + leeway < nbf:
        raise TokenError("token is not valid yet (nbf in the future)", code="not_yet_valid")
    if now + leeway < iat:
        raise TokenError("token was issued in the future (iat)", code="issued_in_future")
    if max_age is not None and now - iat > max_age + leeway:
        raise TokenError("token was issued too long ago", code="too_old")
    return iat, exp


def _audiences(claims: dict[str, Any]) -> list[str]:
    aud = claims.get("aud")
    if isinstance(aud, str):
        return [aud]
    if isinstance(aud, list) and all(isinstance(a, str) for a in aud):
        return aud
    raise TokenError("token lacks a valid 'aud' claim", code="missing_claim")


async def verify_si_token(
    token: str,
    *,
    audience: str,
    resolver: DidResolver,
    jti_store: JtiStore,
    leeway: int = DEFAULT_LEEWAY,
    max_age: int | None = MAX_AGE,
    now: float | None = None,
) -> SelfIssuedToken:
    """Verify an SI token for ``audience`` (my DID); burn its ``jti`` only once the signature has checked out."""
    now = time.time() if now is None else now
    jws = parse_jws(token)
    claims = jws.payload
    iss, sub = claims.get("iss"), claims.get("sub")
    if not isinstance(iss, str) or not iss.startswith("did:"):
        raise TokenError("'iss' must be a DID", code="missing_claim")
    if iss != sub:
        raise TokenError("'iss' and 'sub' differ", code="issuer_mismatch")
    if audience not in _audiences(claims):
        raise TokenError(f"token is meant for {claims.get('aud')}, not {audience}", code="audience_mismatch")
    jti = claims.get("jti")
    if not isinstance(jti, str) or not jti:
        raise TokenError("token lacks the 'jti' claim", code="missing_claim")
    iat, exp = _check_times(claims, now=now, leeway=leeway, max_age=max_age)
    kid = jws.header.get("kid")
    if kid is not None and not isinstance(kid, str):
        raise TokenError("'kid' header must be a string", code="malformed")
    key = await _signing_key(resolver, iss, kid)
    if not jws.verify_with(key):
        raise TokenError("token signature is invalid", code="signature_invalid")
    if not jti_store.claim(f"{iss}|{jti}", exp + leeway, now=now):
        raise TokenError("token was already used (replayed jti)", code="replayed")
    inner = claims.get("token")
    if inner is not None and not isinstance(inner, str):
        raise TokenError("'token' claim must be a string", code="malformed")
    return SelfIssuedToken(iss, audience, jti, iat, exp, inner, kid, claims)


def _pinned(resolver: DidResolver, did: str) -> bool:
    """True for documents pinned with ``Resolver.add_document`` (offline use): never drop those.

    Resolvers without ``is_pinned`` (any object with ``resolve``) are treated as having nothing pinned.
    """
    is_pinned = getattr(resolver, "is_pinned", None)
    return bool(is_pinned(did)) if callable(is_pinned) else False


async def _signing_key(resolver: DidResolver, did: str, kid: str | None) -> KeyPair:
    """The caller's key for ``kid``; an unknown kid triggers one fresh resolution (the caller may have rotated)."""
    for attempt in (1, 2):
        document = await resolve_document(resolver, did)
        if document.get("id") != did:
            raise TokenError(f"DID document id {document.get('id')} is not {did}", code="did_mismatch")
        try:
            return select_key(document, kid, SI_RELATIONSHIP)
        except TokenError as exc:
            invalidate = getattr(resolver, "invalidate", None)
            if attempt == 2 or exc.code != "kid_unknown" or not callable(invalidate) or _pinned(resolver, did):
                raise
            invalidate(did)
    raise AssertionError("unreachable")


def verify_access_token(
    token: str,
    *,
    holder_document: dict[str, Any],
    grantee: str,
    leeway: int = DEFAULT_LEEWAY,
    now: float | None = None,
) -> AccessGrant:
    """Verify an access token the holder (owner of ``holder_document``) issued to ``grantee``."""
    now = time.time() if now is None else now
    jws = parse_jws(token)
    claims = jws.payload
    holder = holder_document.get("id")
    if claims.get("iss") != holder or claims.get("sub") != holder:
        raise TokenError("access token was not issued by this holder", code="access_token_foreign")
    if grantee not in _audiences(claims):
        raise TokenError(f"access token was granted to {claims.get('aud')}, not {grantee}",
                         code="audience_mismatch")
    _, exp = _check_times(claims, now=now, leeway=leeway, max_age=None)
    kid = jws.header.get("kid")
    key = select_key(holder_document, kid if isinstance(kid, str) else None, SI_RELATIONSHIP)
    if not jws.verify_with(key):
        raise TokenError("access token signature is invalid", code="signature_invalid")
    scope_text = claims.get("scope", "")
    if not isinstance(scope_text, str):
        raise TokenError("access token 'scope' must be a space-separated string", code="malformed")
    try:
        scopes = tuple(parse_scopes(scope_text.split()))
    except ScopeError as exc:
        raise TokenError(f"access token carries a bad scope: {exc}", code="malformed") from None
    return AccessGrant(str(holder), grantee, scopes, exp, str(claims.get("jti", "")))
