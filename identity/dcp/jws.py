"""Compact JWS sign/parse over :class:`identity.keys.KeyPair` (EdDSA, ES256, ES256K).

WHY here and not PyJWT: the keys already give JOSE raw signatures for all three curves, and DCP needs the
unverified header (``kid``) before it can pick the key; a 40-line helper keeps that explicit.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from identity.dcp.errors import TokenError
from identity.keys import KeyPair
from identity.multibase import EncodingError, b64url_decode, b64url_encode


@dataclass(frozen=True)
class ParsedJws:
    """A compact JWS split into its parts; nothing is verified yet."""

    header: dict[str, Any]
    payload: dict[str, Any]
    signing_input: bytes
    signature: bytes

    def verify_with(self, key: KeyPair) -> bool:
        """True when the signature is valid under ``key`` and the header ``alg`` matches the key's."""
        return self.header.get("alg") == key.alg and key.verify(self.signature, self.signing_input)


def sign_jws(payload: dict[str, Any], key: KeyPair, *, kid: str, typ: str = "JWT") -> str:
    """Serialize ``payload`` as a compact JWS signed with ``key``; ``kid`` is the full DID URL."""
    header = {"alg": key.alg, "typ": typ, "kid": kid}
    head = b64url_encode(json.dumps(header, separators=(",", ":")).encode())
    body = b64url_encode(json.dumps(payload, separators=(",", ":")).encode())
    signing_input = f"{head}.{body}".encode("ascii")
    return f"{head}.{body}.{b64url_encode(key.sign(signing_input))}"


MAX_TOKEN_BYTES = 64 * 1024  # SI and access tokens are a few hundred bytes; refuse absurd ones before decoding


def parse_jws(token: str, *, max_bytes: int = MAX_TOKEN_BYTES) -> ParsedJws:
    """Split and decode a compact JWS; raise TokenError(code=malformed) on anything that is not one."""
    if isinstance(token, str) and len(token) > max_bytes:
        raise TokenError(f"token exceeds {max_bytes} bytes", code="too_large")
    if not isinstance(token, str) or token.count(".") != 2:
        raise TokenError("not a compact JWS (expected three dot-separated parts)", code="malformed")
    head, body, sig = token.split(".")
    try:
        header = json.loads(b64url_decode(head))
        payload = json.loads(b64url_decode(body))
        signature = b64url_decode(sig)
    except (EncodingError, ValueError, UnicodeDecodeError) as exc:
        raise TokenError(f"malformed JWS: {exc}", code="malformed") from None
    if not isinstance(header, dict) or not isinstance(payload, dict):
        raise TokenError("JWS header and payload must be JSON objects", code="malformed")
    return ParsedJws(header, payload, f"{head}.{body}".encode("ascii"), signature)
