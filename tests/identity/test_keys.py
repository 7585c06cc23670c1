"""Keys: every algorithm signs and verifies in JOSE raw form, round-trips through JWK and Multikey."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from identity.keys import InvalidKey, KeyPair, MissingPrivateKey, UnsupportedAlgorithm, generate_key
from identity.multibase import b58decode, b58encode, multibase_decode, multibase_encode

ALGS = ["EdDSA", "ES256", "ES256K"]
VECTORS = Path(__file__).parents[1] / "data" / "vectors"


@pytest.mark.parametrize("alg", ALGS)
def test_sign_verify_round_trip(alg: str) -> None:
    key = generate_key(alg)
    sig = key.sign(b"payload")
    assert len(sig) == 64
    assert key.verify(sig, b"payload")
    assert not key.verify(sig, b"payload!")
    tampered = bytes([sig[0] ^ 1]) + sig[1:]
    assert not key.verify(tampered, b"payload")
    assert not key.verify(sig[:63], b"payload")


@pytest.mark.parametrize("alg", ALGS)
def test_jwk_and_multikey_round_trip(alg: str) -> None:
    key = generate_key(alg)
    again = KeyPair.from_jwk(key.private_jwk())
    assert again.alg == alg and again.has_private
    assert again.verify(key.sign(b"x"), b"x")
    public = KeyPair.from_jwk(key.public_jwk())
    assert not public.has_private
    assert public.verify(key.sign(b"y"), b"y")
    assert "d" not in key.public_jwk()
    assert KeyPair.from_multikey(key.public_multibase()).same_public_key(key)
    with pytest.raises(MissingPrivateKey):
        public.sign(b"z")
    with pytest.raises(MissingPrivateKey):
        public.private_jwk()


def test_multikey_prefixes_match_did_key_conventions() -> None:
    assert generate_key("EdDSA").public_multibase().startswith("z6Mk")
    assert generate_key("ES256").public_multibase().startswith("zDna")
    assert generate_key("ES256K").public_multibase().startswith("zQ3s")


def test_ecdsa_signature_is_raw_r_s_not_der() -> None:
    key = generate_key("ES256")
    sig = key.sign(b"data")
    r, s = int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big")
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

    assert isinstance(key.public_key, ec.EllipticCurvePublicKey)
    key.public_key.verify(encode_dss_signature(r, s), b"data", ec.ECDSA(hashes.SHA256()))
    assert decode_dss_signature(encode_dss_signature(r, s)) == (r, s)


def test_thumbprint_rfc7638_example() -> None:
    # RFC 7638 section 3.1 example is RSA; use RFC 8037 appendix A.3 (Ed25519 thumbprint) instead.
    jwk = {"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}
    assert KeyPair.from_jwk(jwk).thumbprint() == "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"


def test_rfc8037_ed25519_signature_vector() -> None:
    jwk = {"kty": "OKP", "crv": "Ed25519", "d": "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A",
           "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}
    key = KeyPair.from_jwk(jwk)
    signing_input = b"eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc"
    from identity.multibase import b64url_encode

    assert b64url_encode(key.sign(signing_input)) == (
        "hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg"
    )


@pytest.mark.parametrize("jwk", [
    {"kty": "RSA", "n": "x", "e": "AQAB"},
    {"kty": "OKP", "crv": "X25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"},
    {"kty": "OKP", "crv": "Ed25519", "x": "short"},
    {"kty": "EC", "crv": "P-256", "x": "AAAA", "y": "AAAA"},
    {"kty": "EC", "crv": "P-256", "x": "A" * 43, "y": "A" * 43},  # not on the curve
    {"kty": "EC", "crv": "P-384", "x": "A" * 64, "y": "A" * 64},
    {"kty": "OKP", "crv": "Ed25519", "x": "!!!"},
    "not a dict",
])
def test_bad_jwks_raise_invalid_key(jwk: object) -> None:
    with pytest.raises(InvalidKey):
        KeyPair.from_jwk(jwk)  # type: ignore[arg-type]


def test_bad_multikeys_and_algs() -> None:
    with pytest.raises(InvalidKey):
        KeyPair.from_multikey("z" + b58encode(b"\x12\x00" + b"\x01" * 32))
    with pytest.raises(InvalidKey):
        KeyPair.from_multikey("xnotmultibase")
    with pytest.raises(UnsupportedAlgorithm):
        generate_key("HS256")


def test_catena_x_secp256k1_jwk_verifies_its_jwt() -> None:
    base = VECTORS / "tractusx-profiles/cx/credentials/tests/credentials"
    jwk = json.loads((base / "bpdm-secp256k1-pubkey.json").read_text())
    token = (base / "bpdm-secp256k1.jwt").read_text().strip()
    key = KeyPair.from_jwk(jwk)
    assert key.alg == "ES256K"
    head, payload, sig = token.split(".")
    from identity.multibase import b64url_decode

    assert key.verify(b64url_decode(sig), f"{head}.{payload}".encode())
    assert not key.verify(b64url_decode(sig), f"{head}.{payload}x".encode())


def test_private_multibase_from_w3c_vectors() -> None:
    kp = json.loads((VECTORS / "w3c-vc-di-eddsa/TestVectors/keyPair.json").read_text())
    assert KeyPair.from_private_multibase(kp["privateKeyMultibase"]).public_multibase() == kp["publicKeyMultibase"]
    p256 = json.loads((VECTORS / "w3c-vc-di-ecdsa/TestVectors/p256KeyPair.json").read_text())
    key = KeyPair.from_private_multibase(p256["secretKeyMultibase"])
    assert key.alg == "ES256" and key.public_multibase() == p256["publicKeyMultibase"]
    with pytest.raises(InvalidKey):
        KeyPair.from_private_multibase(kp["publicKeyMultibase"])


def test_base58_and_multibase_helpers() -> None:
    for data in (b"", b"\0\0abc", bytes(range(256))):
        assert b58decode(b58encode(data)) == data
        assert multibase_decode(multibase_encode(data, "z")) == data
        assert multibase_decode(multibase_encode(data, "u")) == data
    assert b58encode(b"hello world") == "StV1DL6CwTryKyV"
