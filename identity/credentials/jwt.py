"""Issue credentials and presentations as JWTs in the two DCP 1.0 profiles.

* ``vc20`` (``vc20-bssl/jwt``): VC-JOSE-COSE. Header ``typ: vc+jwt`` / ``vp+jwt``; the payload IS the
  credential / presentation; presentations carry credentials as ``EnvelopedVerifiableCredential`` with a
  ``data:application/vc+jwt,<jwt>`` id.
* ``vc11`` (``vc11-sl2021/jwt``): VC-JWT 1.1. Header ``typ: JWT``; the credential sits in the ``vc`` claim
  (``vp`` for presentations) and iss/sub/jti/nbf/exp mirror its members.
"""

from __future__ import annotations

import time
import uuid
from datetime import datetime
from typing import Any

from identity.credentials.errors import CredentialError
from identity.credentials.jws import UnverifiedJwt, sign_compact
from identity.credentials.jws import decode_unverified as _decode_unverified
from identity.credentials.model import (
    ENVELOPED_VC_PREFIX,
    VC_V1_CONTEXT,
    VC_V2_CONTEXT,
    normalise_credential,
)
from identity.keys import KeyPair

PROFILES = ("vc20", "vc11")


def _check_profile(profile: str) -> None:
    if profile not in PROFILES:
        raise CredentialError(f"unknown credential profile {profile!r}; use 'vc20' or 'vc11'")


def _check_kid(kid: str, issuer: str) -> None:
    if not isinstance(kid, str) or "#" not in kid:
        raise CredentialError(f"kid must be a full DID URL such as '{issuer}#key-1', got {kid!r}")
    if kid.split("#", 1)[0] != issuer:
        raise CredentialError(f"kid {kid!r} does not belong to {issuer!r}")


def issue_vc_jwt(credential: dict[str, Any], key: KeyPair, kid: str, profile: str = "vc20") -> str:
    """Sign ``credential`` as a JWT in ``profile``; ``kid`` must be a DID URL of the credential's issuer."""
    _check_profile(profile)
    norm = normalise_credential(credential, profile=profile)
    _check_kid(kid, norm.issuer)
    contexts = credential.get("@context")
    first = contexts[0] if isinstance(contexts, list) and contexts else contexts
    if profile == "vc20":
        if first != VC_V2_CONTEXT:
            raise CredentialError(f"vc20 credentials must start @context with {VC_V2_CONTEXT}")
        header = {"typ": "vc+jwt", "cty": "vc", "kid": kid}
        return sign_compact(header, credential, key)
    if first != VC_V1_CONTEXT:
        raise CredentialError(f"vc11 credentials must start @context with {VC_V1_CONTEXT}")
    claims: dict[str, Any] = {"iss": norm.issuer, "iat": int(time.time())}
    if norm.subject_id:
        claims["sub"] = norm.subject_id
    if isinstance(credential.get("id"), str):
        claims["jti"] = credential["id"]
    if norm.valid_from is not None:
        claims["nbf"] = int(norm.valid_from.timestamp())
    if norm.valid_until is not None:
        claims["exp"] = int(norm.valid_until.timestamp())
    claims["vc"] = credential
    return sign_compact({"typ": "JWT", "kid": kid}, claims, key)


def envelope_vc(jwt: str) -> dict[str, Any]:
    """Wrap a vc+jwt as the VCDM 2.0 ``EnvelopedVerifiableCredential`` a vp+jwt carries."""
    return {"@context": [VC_V2_CONTEXT], "id": ENVELOPED_VC_PREFIX + jwt, "type": "EnvelopedVerifiableCredential"}


def issue_vp_jwt(
    holder_did: str,
    credentials: list[str],
    key: KeyPair,
    kid: str,
    audience: str | None,
    nonce: str | None = None,
    profile: str = "vc20",
    *,
    expires_in: int = 300,
    issued_at: datetime | None = None,
) -> str:
    """Sign a presentation of already-issued credential JWTs by ``holder_did`` for ``audience``.

    ``kid`` must be a DID URL of the holder (verifiers require it under ``authentication``).
    """
    _check_profile(profile)
    _check_kid(kid, holder_did)
    if not all(isinstance(c, str) and c.count(".") == 2 for c in credentials):
        raise CredentialError("credentials must be compact JWT strings")
    if expires_in <= 0:
        raise CredentialError("expires_in must be positive")
    now = int(issued_at.timestamp()) if issued_at is not None else int(time.time())
    claims: dict[str, Any] = {"iss": holder_did, "sub": holder_did, "jti": f"urn:uuid:{uuid.uuid4()}",
                              "iat": now, "nbf": now, "exp": now + expires_in}
    if audience is not None:
        claims["aud"] = audience
    if nonce is not None:
        claims["nonce"] = nonce
    if profile == "vc20":
        presentation = {
            "@context": [VC_V2_CONTEXT],
            "type": ["VerifiablePresentation"],
            "holder": holder_did,
            "verifiableCredential": [envelope_vc(c) for c in credentials],
        }
        return sign_compact({"typ": "vp+jwt", "cty": "vp", "kid": kid}, {**presentation, **claims}, key)
    claims["vp"] = {
        "@context": [VC_V1_CONTEXT],
        "type": ["VerifiablePresentation"],
        "holder": holder_did,
        "verifiableCredential": list(credentials),
    }
    return sign_compact({"typ": "JWT", "kid": kid}, claims, key)


def decode_unverified(token: str) -> UnverifiedJwt:
    """``(header, payload)`` of a JWT WITHOUT checking its signature: only for routing and diagnostics."""
    return _decode_unverified(token)
