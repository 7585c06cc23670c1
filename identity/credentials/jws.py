"""Compact JWS (RFC 7515) signing and parsing for EdDSA, ES256 and ES256K, with hard input limits.

Done by hand over :class:`identity.keys.KeyPair` instead of pyjwt because ES256K must be supported,
``alg`` must be checked against an allow-list before any key work, and verification sits on the hot path.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, NamedTuple

from identity.credentials.errors import AlgorithmNotAllowed, CredentialError, CredentialTooDeep, CredentialTooLarge
from identity.keys import KeyPair
from identity.multibase import EncodingError, b64url_decode, b64url_encode

DEFAULT_ALGS = frozenset({"EdDSA", "ES256", "ES256K"})
MAX_JWT_BYTES = 512 * 1024
MAX_JSON_DEPTH = 32


class UnverifiedJwt(NamedTuple):
    """Header and payload of a JWT whose signature has NOT been checked (unpacks as ``header, payload``)."""

    header: dict[str, Any]
    payload: dict[str, Any]


@dataclass(frozen=True)
class ParsedJws:
    """A split compact JWS: decoded header/payload plus the exact bytes the signature covers."""

    header: dict[str, Any]
    payload: dict[str, Any]
    signing_input: bytes
    signature: bytes


def depth_ok(value: Any, limit: int) -> bool:
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return False
        if isinstance(node, dict):
            stack.extend((v, depth + 1) for v in node.values())
        elif isinstance(node, list):
            stack.extend((v, depth + 1) for v in node)
    return True


def load_json_bounded(raw: bytes | str, *, max_bytes: int = MAX_JWT_BYTES, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """``json.loads`` that rejects oversized or too deeply nested input with specific codes, never crashing."""
    if len(raw) > max_bytes:
        raise CredentialTooLarge(f"JSON of {len(raw)} bytes exceeds the {max_bytes}-byte limit")
    try:
        value = json.loads(raw.decode("utf-8") if isinstance(raw, bytes) else raw)
    except RecursionError:
        raise CredentialTooDeep("JSON nesting is too deep") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise CredentialError(f"invalid JSON: {exc}") from None
    # cheap pre-check: a document with few brackets cannot be deep
    openers = raw.count(b"{") + raw.count(b"[") if isinstance(raw, bytes) else raw.count("{") + raw.count("[")
    if openers > max_depth and not depth_ok(value, max_depth):
        raise CredentialTooDeep(f"JSON nesting exceeds depth {max_depth}")
    return value


_HEADER_MEMO_MAX = 1024
_headers: dict[str, dict[str, Any]] = {}


def _decode_header(segment: str) -> Any:
    """The decoded JOSE header. An issuer signs every token with the same header (alg, typ, kid), so flat
    headers are memoised by their exact base64url text and handed out as fresh copies."""
    cached = _headers.get(segment)
    if cached is not None:
        return dict(cached)
    header = load_json_bounded(b64url_decode(segment), max_bytes=8192, max_depth=4)
    if isinstance(header, dict) and len(segment) <= 1024 and all(
            v is None or isinstance(v, str | int | float | bool) for v in header.values()):
        if len(_headers) >= _HEADER_MEMO_MAX:
            _headers.clear()
        _headers[segment] = dict(header)
    return header


def sign_compact(header: dict[str, Any], payload: dict[str, Any], key: KeyPair) -> str:
    """Serialise and sign; ``header['alg']`` is forced to the key's algorithm."""
    header = {**header, "alg": key.alg}
    h = b64url_encode(json.dumps(header, separators=(",", ":")).encode())
    p = b64url_encode(json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode())
    signing_input = f"{h}.{p}".encode("ascii")
    return f"{h}.{p}.{b64url_encode(key.sign(signing_input))}"


def parse_compact(token: str, *, max_bytes: int = MAX_JWT_BYTES, max_depth: int = MAX_JSON_DEPTH) -> ParsedJws:
    """Split and decode a compact JWS without verifying it; raises CredentialError subclasses."""
    if not isinstance(token, str):
        raise CredentialError("JWT must be a string")
    if len(token) > max_bytes:
        raise CredentialTooLarge(f"JWT of {len(token)} bytes exceeds the {max_bytes}-byte limit")
    parts = token.split(".")
    if len(parts) != 3:
        raise CredentialError("JWT must have three dot-separated parts (compact JWS)")
    h, p, s = parts
    try:
        header = _decode_header(h)
        payload = load_json_bounded(b64url_decode(p), max_bytes=max_bytes, max_depth=max_depth)
        signature = b64url_decode(s)
    except EncodingError as exc:
        raise CredentialError(f"JWT is not base64url: {exc}") from None
    if not isinstance(header, dict) or not isinstance(payload, dict):
        raise CredentialError("JWT header and payload must be JSON objects")
    if "crit" in header:
        raise CredentialError("JWT header 'crit' extensions are not supported")
    if header.get("b64") is False:
        raise CredentialError("unencoded JWS payloads (b64=false) are not supported")
    return ParsedJws(header, payload, token[: len(h) + 1 + len(p)].encode("ascii"), signature)


def check_alg(header: dict[str, Any], allowed: frozenset[str] | set[str] = DEFAULT_ALGS) -> str:
    """The header ``alg`` if allowed; ``none`` and HMAC algorithms are refused whatever the allow-list says."""
    alg = header.get("alg")
    if not isinstance(alg, str) or alg.lower() == "none" or alg.upper().startswith("HS") or alg not in allowed:
        raise AlgorithmNotAllowed(f"JWT alg {alg!r} is not allowed")
    return alg


def decode_unverified(token: str) -> UnverifiedJwt:
    """Header and payload WITHOUT signature verification (routing, diagnostics); limits still apply."""
    parsed = parse_compact(token)
    return UnverifiedJwt(parsed.header, parsed.payload)


def verify_compact(token: str, key: KeyPair, allowed: frozenset[str] | set[str] = DEFAULT_ALGS) -> ParsedJws:
    """Parse and check a compact JWS against a known key (no DID resolution); raises on any failure."""
    from identity.credentials.errors import SignatureInvalid

    parsed = parse_compact(token)
    alg = check_alg(parsed.header, allowed)
    if alg != key.alg:
        raise AlgorithmNotAllowed(f"JWT alg {alg} does not match the {key.alg} key")
    if not key.verify(parsed.signature, parsed.signing_input):
        raise SignatureInvalid("JWS signature does not verify")
    return parsed
