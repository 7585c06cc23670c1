"""Multibase / multicodec / base64url helpers shared by did:key, Multikey and status lists.

Kept dependency-free because these encodings are tiny and sit on the hot verification path.
"""

from __future__ import annotations

import base64
import binascii

from identity.errors import IdentityError


class EncodingError(IdentityError):
    """A value is not valid base58btc / base64url / multibase / multicodec."""

    code = "malformed_encoding"


_URLSAFE_TO_STD = bytes.maketrans(b"-_", b"+/")  # bytes.translate: a C table look-up per byte
_B58_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_B58_INDEX = {c: i for i, c in enumerate(_B58_ALPHABET)}

# multicodec prefixes (unsigned varint encoded) for the public key types Pactum handles.
MULTICODEC_ED25519_PUB = b"\xed\x01"
MULTICODEC_P256_PUB = b"\x80\x24"
MULTICODEC_SECP256K1_PUB = b"\xe7\x01"
MULTICODEC_ED25519_PRIV = b"\x80\x26"
MULTICODEC_P256_PRIV = b"\x86\x26"
MULTICODEC_SECP256K1_PRIV = b"\x81\x26"


def b58encode(data: bytes) -> str:
    """Bitcoin base58 (what multibase 'z' uses); leading zero bytes become '1'."""
    num = int.from_bytes(data, "big")
    out = []
    while num:
        num, rem = divmod(num, 58)
        out.append(_B58_ALPHABET[rem])
    pad = len(data) - len(data.lstrip(b"\0"))
    return "1" * pad + "".join(reversed(out))


def b58decode(text: str) -> bytes:
    """Inverse of :func:`b58encode`; raises EncodingError on characters outside the alphabet."""
    num = 0
    for ch in text:
        try:
            num = num * 58 + _B58_INDEX[ch]
        except KeyError:
            raise EncodingError(f"invalid base58 character {ch!r}") from None
    body = num.to_bytes((num.bit_length() + 7) // 8, "big") if num else b""
    pad = len(text) - len(text.lstrip("1"))
    return b"\0" * pad + body


def b64url_encode(data: bytes) -> str:
    """base64url without padding, as JOSE and multibase 'u' require."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Lenient on padding, strict on alphabet: JOSE segments never carry '+' or '/'."""
    if not isinstance(text, str):
        raise EncodingError("base64url value must be a string")
    if "+" in text or "/" in text:
        raise EncodingError("invalid base64url: '+' or '/' found (standard base64 alphabet)")
    try:
        body = text.encode("ascii").rstrip(b"=")
        return binascii.a2b_base64(body.translate(_URLSAFE_TO_STD) + b"=" * (-len(body) % 4), strict_mode=True)
    except (binascii.Error, ValueError) as exc:
        raise EncodingError(f"invalid base64url: {exc}") from None


def multibase_encode(data: bytes, base: str = "z") -> str:
    """Encode with a multibase prefix: 'z' base58btc or 'u' base64url."""
    if base == "z":
        return "z" + b58encode(data)
    if base == "u":
        return "u" + b64url_encode(data)
    raise EncodingError(f"unsupported multibase prefix {base!r}")


def multibase_decode(text: str) -> bytes:
    """Decode a 'z' (base58btc) or 'u' (base64url) multibase string."""
    if not isinstance(text, str) or not text:
        raise EncodingError("multibase value must be a non-empty string")
    prefix, body = text[0], text[1:]
    if prefix == "z":
        return b58decode(body)
    if prefix == "u":
        return b64url_decode(body)
    raise EncodingError(f"unsupported multibase prefix {prefix!r}")


def split_multicodec(data: bytes) -> tuple[bytes, bytes]:
    """Split a multicodec-prefixed value into (prefix, payload) for the key codecs Pactum knows."""
    for prefix in (MULTICODEC_ED25519_PUB, MULTICODEC_P256_PUB, MULTICODEC_SECP256K1_PUB,
                   MULTICODEC_ED25519_PRIV, MULTICODEC_P256_PRIV, MULTICODEC_SECP256K1_PRIV):
        if data.startswith(prefix):
            return prefix, data[len(prefix):]
    raise EncodingError(f"unsupported multicodec prefix {data[:2].hex()}")
