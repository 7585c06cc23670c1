"""Compact JWS for DCP tokens: the credential JWS code (:mod:`identity.credentials.jws`) with DCP's errors.

WHY a thin layer and not PyJWT: the keys already give JOSE raw signatures for all three curves, and DCP needs
the unverified header (``kid``) before it can pick the key. Parsing and its limits live in one place; here
failures become ``TokenError`` (401) with the codes DCP callers expect.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from identity.credentials import jws as compact
from identity.credentials.errors import CredentialError, CredentialTooLarge
from identity.dcp.errors import TokenError
from identity.keys import KeyPair


@dataclass(frozen=True)
class ParsedJws(compact.ParsedJws):
    """A compact JWS split into its parts; nothing is verified yet."""

    def verify_with(self, key: KeyPair) -> bool:
        """True when the signature is valid under ``key`` and the header ``alg`` matches the key's."""
        return self.header.get("alg") == key.alg and key.verify(self.signature, self.signing_input)


def sign_jws(payload: dict[str, Any], key: KeyPair, *, kid: str, typ: str = "JWT") -> str:
    """Serialize ``payload`` as a compact JWS signed with ``key``; ``kid`` is the full DID URL."""
    return compact.sign_compact({"alg": key.alg, "typ": typ, "kid": kid}, payload, key)


MAX_TOKEN_BYTES = 64 * 1024  # SI and access tokens are a few hundred bytes; refuse absurd ones before decoding


def parse_jws(token: str, *, max_bytes: int = MAX_TOKEN_BYTES) -> ParsedJws:
    """Split and decode a compact JWS; raise TokenError (``too_large`` or ``malformed``) on anything else."""
    if isinstance(token, str) and len(token) > max_bytes:
        raise TokenError(f"token exceeds {max_bytes} bytes", code="too_large")
    if not isinstance(token, str) or token.count(".") != 2:
        raise TokenError("not a compact JWS (expected three dot-separated parts)", code="malformed")
    try:
        parsed = compact.parse_compact(token, max_bytes=max_bytes)
    except CredentialTooLarge as exc:
        raise TokenError(str(exc), code="too_large") from None
    except CredentialError as exc:
        raise TokenError(f"malformed JWS: {exc}", code="malformed") from None
    return ParsedJws(parsed.header, parsed.payload, parsed.signing_input, parsed.signature)
