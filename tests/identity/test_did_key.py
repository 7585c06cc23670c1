"""did:key against the did:key spec examples and the did-method-key test vectors."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from identity.dids import InvalidDid, Resolver, did_key_document, did_key_from_key, key_from_did_key
from identity.keys import KeyPair, generate_key
from identity.multibase import b58decode

VECTORS = Path(__file__).parents[1] / "data" / "vectors"


def test_spec_example_document_is_reproduced() -> None:
    expected = json.loads((VECTORS / "w3c-ccg-did-key-spec/example-ed25519-did-document.json").read_text())
    doc = did_key_document(expected["id"])
    assert doc["verificationMethod"] == expected["verificationMethod"]
    for rel in ("authentication", "assertionMethod", "capabilityInvocation", "capabilityDelegation"):
        assert doc[rel] == expected[rel]


def test_spec_example_identifiers() -> None:
    examples = json.loads((VECTORS / "w3c-ccg-did-key-spec/example-identifiers.json").read_text())
    supported = {"Ed25519": "EdDSA", "P-256": "ES256", "secp256k1": "ES256K"}
    seen = 0
    for item in examples:
        alg = next((v for k, v in supported.items() if item["keyType"].startswith(k)), None)
        if alg is None:
            with pytest.raises(InvalidDid):
                key_from_did_key(item["did"])
            continue
        key = key_from_did_key(item["did"])
        assert key.alg == alg
        assert did_key_from_key(key) == item["did"]
        seen += 1
    assert seen == 6


def _vector_public_matches(key: KeyPair, vm: dict) -> bool:
    if "publicKeyJwk" in vm:
        jwk = vm["publicKeyJwk"]
        return key.public_jwk() == {k: jwk[k] for k in ("kty", "crv", "x", "y") if k in jwk}
    return key.public_raw() == b58decode(vm["publicKeyBase58"])


def _private_from_vector(vec: dict, vm: dict, alg: str) -> KeyPair:
    if "privateKeyJwk" in vm:
        return KeyPair.from_jwk(vm["privateKeyJwk"])
    raw = b58decode(vm["privateKeyBase58"]) if "privateKeyBase58" in vm else bytes.fromhex(vec["seed"])
    if alg == "EdDSA":
        from cryptography.hazmat.primitives.asymmetric import ed25519

        edkey = ed25519.Ed25519PrivateKey.from_private_bytes(raw[:32])
        return KeyPair("EdDSA", edkey.public_key(), edkey)
    from cryptography.hazmat.primitives.asymmetric import ec

    curve = ec.SECP256R1() if alg == "ES256" else ec.SECP256K1()
    priv = ec.derive_private_key(int.from_bytes(raw, "big"), curve)
    return KeyPair(alg, priv.public_key(), priv)


@pytest.mark.parametrize(("file", "prefix", "section"), [
    ("nist-curves.json", "did:key:zDna", "verificationMethod"),
    ("secp256k1.json", "did:key:zQ3s", "verificationKeyPair"),
    ("ed25519-x25519.json", "did:key:z6Mk", "verificationKeyPair"),
])
def test_did_method_key_vectors(file: str, prefix: str, section: str) -> None:
    vectors = json.loads((VECTORS / "w3c-ccg-did-method-key/test-vectors" / file).read_text())
    checked = 0
    for did, vec in vectors.items():
        if not did.startswith(prefix):
            continue
        vm = vec[section]
        key = key_from_did_key(did)
        assert _vector_public_matches(key, vm), did
        assert did_key_from_key(key) == did
        doc = did_key_document(did, vm_type="JsonWebKey2020")
        assert doc["verificationMethod"][0]["publicKeyJwk"] == key.public_jwk()
        assert doc["verificationMethod"][0]["id"] == vec["didDocument"]["verificationMethod"][0]["id"]
        assert doc["assertionMethod"] == vec["didDocument"]["assertionMethod"]
        priv = _private_from_vector(vec, vm, key.alg)
        assert key.verify(priv.sign(b"m"), b"m")
        checked += 1
    assert checked >= 3


@pytest.mark.parametrize("alg", ["EdDSA", "ES256", "ES256K"])
def test_resolver_serves_did_key_with_relationships(alg: str) -> None:
    key = generate_key(alg)
    did = did_key_from_key(key)
    kid = f"{did}#{did.removeprefix('did:key:')}"

    async def go() -> None:
        resolver = Resolver()
        doc = await resolver.resolve(kid)
        assert doc["id"] == did
        for rel in ("assertionMethod", "authentication"):
            found = await resolver.verification_key(kid, rel)
            assert found.same_public_key(key)

    asyncio.run(go())


@pytest.mark.parametrize("bad", [
    "did:key:", "did:key:abc", "did:key:z", "did:key:z0OIl", "did:web:example.com", "did:key:1:z6Mkabc",
    "did:key:zUC7EK3ZakmukHhuncwkbySmomv3FmrkmS36E4Ks5rsb6VQSRpoCrx6Hb8e2Nk6UvJFSdyw9NK1scFXJp21gNNYFjVWNgaqyGnkyhtagagCpQb5B7tagJu3HDbjQ8h5ypoHjwBb",
])
def test_invalid_did_keys_raise(bad: str) -> None:
    with pytest.raises(InvalidDid):
        key_from_did_key(bad)
