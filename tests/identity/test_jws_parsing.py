"""Compact JWS parsing: the header memo hands out independent copies; base64url stays strict."""

from __future__ import annotations

import pytest

from identity.credentials.errors import CredentialError
from identity.credentials.jws import parse_compact, sign_compact
from identity.keys import generate_key
from identity.multibase import EncodingError, b64url_decode, b64url_encode


def test_memoised_header_is_a_fresh_copy_each_time() -> None:
    key = generate_key()
    token = sign_compact({"typ": "vc+jwt", "kid": "did:web:i.example#k"}, {"n": 1}, key)
    first = parse_compact(token)
    first.header["kid"] = "tampered"
    first.header["extra"] = True
    second = parse_compact(token)
    assert second.header == {"typ": "vc+jwt", "kid": "did:web:i.example#k", "alg": "EdDSA"}
    assert second.signing_input == token.rsplit(".", 1)[0].encode()
    assert key.verify(second.signature, second.signing_input)


def test_nested_headers_are_parsed_every_time_and_not_shared() -> None:
    key = generate_key()
    token = sign_compact({"jwk": key.public_jwk()}, {"n": 1}, key)
    first = parse_compact(token)
    first.header["jwk"]["x"] = "changed"
    assert parse_compact(token).header["jwk"] == key.public_jwk()


def test_a_bad_header_is_refused_every_time() -> None:
    token = f"{b64url_encode(b'{bad')}.{b64url_encode(b'{}')}.AA"
    for _ in range(2):
        with pytest.raises(CredentialError):
            parse_compact(token)


@pytest.mark.parametrize("text", ["ab+c", "ab/c", "a=bc", "abcde", "é", "ab c"])
def test_b64url_rejects_what_is_not_base64url(text: str) -> None:
    with pytest.raises(EncodingError):
        b64url_decode(text)


@pytest.mark.parametrize("data", [b"", b"\x00", b"\xfb\xff", b"any carnal pleas", bytes(range(256))])
def test_b64url_round_trip_with_and_without_padding(data: bytes) -> None:
    text = b64url_encode(data)
    assert "=" not in text and "+" not in text and "/" not in text
    assert b64url_decode(text) == data
    assert b64url_decode(text + "=" * (-len(text) % 4)) == data
