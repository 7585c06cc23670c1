"""Data Integrity against the W3C vc-di-eddsa / vc-di-ecdsa vectors and @digitalbazaar/vc outputs.

Ed25519 is deterministic, so the eddsa suites must reproduce every intermediate value AND the proofValue
byte for byte. ECDSA signatures are randomized: there we reproduce the canonical forms and hashes and
verify the published proof.
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from identity.credentials.data_integrity import (
    DataIntegrityError,
    canonicalize_jcs,
    canonicalize_rdfc,
    hash_data,
    proof_config,
    sign_data_integrity,
    verify_data_integrity,
)
from identity.credentials.verify import verify_credential
from identity.dids import Resolver, build_did_document, did_key_from_key
from identity.jsonld import ContextNotPinned, document_loader
from identity.keys import KeyPair, generate_key
from identity.multibase import multibase_decode

VECTORS = Path(__file__).parents[1] / "data" / "vectors"
EDDSA = VECTORS / "w3c-vc-di-eddsa/TestVectors"
ECDSA = VECTORS / "w3c-vc-di-ecdsa/TestVectors"
GEN = VECTORS / "generated-here"


def _text(path: Path) -> str:
    return path.read_text()


def _json(path: Path) -> Any:
    return json.loads(path.read_text())


def _canon(kind: str, doc: dict[str, Any]) -> str:
    return canonicalize_rdfc(doc) if kind == "rdfc" else canonicalize_jcs(doc).decode()


EDDSA_CASES = [("eddsa-rdfc-2022", "rdfc", "DataInt"), ("eddsa-jcs-2022", "jcs", "JCS")]


@pytest.mark.parametrize(("suite", "kind", "suffix"), EDDSA_CASES)
def test_eddsa_vectors_byte_identical(suite: str, kind: str, suffix: str) -> None:
    folder = EDDSA / suite
    unsigned = _json(EDDSA / "unsigned.json")
    keys = _json(EDDSA / "keyPair.json")
    key = KeyPair.from_private_multibase(keys["privateKeyMultibase"])
    signed = _json(folder / f"signed{suffix}.json")
    config = _json(folder / f"proofConfig{suffix}.json")

    canon_doc = _canon(kind, unsigned)
    assert canon_doc == _text(folder / f"canonDoc{suffix}.txt")
    assert hashlib.sha256(canon_doc.encode()).hexdigest() == _text(folder / f"docHash{suffix}.txt").strip()
    assert proof_config(unsigned, {k: v for k, v in signed["proof"].items() if k != "@context"}) == config
    canon_proof = _canon(kind, config)
    assert canon_proof == _text(folder / f"proofCanon{suffix}.txt")
    assert hashlib.sha256(canon_proof.encode()).hexdigest() == _text(folder / f"proofHash{suffix}.txt").strip()
    combined = hash_data(unsigned, signed["proof"])
    assert combined.hex() == _text(folder / f"combinedHash{suffix}.txt").strip()
    assert key.sign(combined).hex() == _text(folder / f"sigHex{suffix}.txt").strip()

    ours = sign_data_integrity(unsigned, key, signed["proof"]["verificationMethod"], cryptosuite=suite,
                               created=signed["proof"]["created"])
    assert ours == signed
    assert ours["proof"]["proofValue"] == _text(folder / f"sigBTC58{suffix}.txt").strip()
    info = asyncio.run(verify_data_integrity(signed, resolver=Resolver()))
    assert info.cryptosuite == suite and info.verification_method.startswith("did:key:z6MkrJVn")


@pytest.mark.parametrize(("name", "suite"), [("out-eddsa-rdfc-2022.json", "eddsa-rdfc-2022"),
                                              ("out-eddsa-jcs-2022.json", "eddsa-jcs-2022")])
def test_digitalbazaar_outputs_verify_and_match(name: str, suite: str) -> None:
    produced = _json(GEN / name)
    assert produced["proof"]["cryptosuite"] == suite
    asyncio.run(verify_data_integrity(produced, resolver=Resolver()))
    key = KeyPair.from_private_multibase(_json(EDDSA / "keyPair.json")["privateKeyMultibase"])
    unsigned = {k: v for k, v in produced.items() if k != "proof"}
    ours = sign_data_integrity(unsigned, key, produced["proof"]["verificationMethod"], cryptosuite=suite,
                               created=produced["proof"]["created"])
    assert ours["proof"]["proofValue"] == produced["proof"]["proofValue"]


ECDSA_CASES = [("ecdsa-rdfc-2019-p256", "rdfc", "ECDSAP256", "sha256"),
               ("ecdsa-jcs-2019-p256", "jcs", "JCSECDSAP256", "sha256"),
               ("ecdsa-rdfc-2019-p384", "rdfc", "ECDSAP384", "sha384"),
               ("ecdsa-jcs-2019-p384", "jcs", "JCSECDSAP384", "sha384")]


@pytest.mark.parametrize(("folder_name", "kind", "suffix", "digest"), ECDSA_CASES)
def test_ecdsa_vectors_canonical_forms_hashes_and_signatures(folder_name: str, kind: str, suffix: str,
                                                             digest: str) -> None:
    folder = ECDSA / folder_name
    unsigned = _json(ECDSA / "unsigned.json")
    signed = _json(folder / f"signed{suffix}.json")
    config = _json(folder / f"proofConfig{suffix}.json")
    canon_doc = _canon(kind, unsigned)
    assert canon_doc == _text(folder / f"canonDoc{suffix}.txt")
    assert hashlib.new(digest, canon_doc.encode()).hexdigest() == _text(folder / f"docHash{suffix}.txt").strip()
    canon_proof = _canon(kind, config)
    assert canon_proof == _text(folder / f"proofCanon{suffix}.txt")
    assert hashlib.new(digest, canon_proof.encode()).hexdigest() == _text(folder / f"proofHash{suffix}.txt").strip()
    assert multibase_decode(signed["proof"]["proofValue"]).hex() == _text(folder / f"sigHex{suffix}.txt").strip()
    if digest == "sha256":
        assert hash_data(unsigned, signed["proof"]).hex() == _text(folder / f"combinedHash{suffix}.txt").strip()
        info = asyncio.run(verify_data_integrity(signed, resolver=Resolver()))
        assert info.cryptosuite == signed["proof"]["cryptosuite"]
        # and our own P-256 proofs verify (signatures are randomized, so compare by verification)
        key = KeyPair.from_private_multibase(_json(ECDSA / "p256KeyPair.json")["secretKeyMultibase"])
        ours = sign_data_integrity(unsigned, key, signed["proof"]["verificationMethod"],
                                   cryptosuite=signed["proof"]["cryptosuite"], created=signed["proof"]["created"])
        asyncio.run(verify_data_integrity(ours, resolver=Resolver()))
    else:
        # P-384 is not a Pactum signing curve: its proofs are rejected cleanly, never crash
        with pytest.raises(DataIntegrityError):
            asyncio.run(verify_data_integrity(signed, resolver=Resolver()))


def test_proof_set_verifies_each_proof() -> None:
    signed = _json(EDDSA / "proof-set-chain/signedProofSet2.json")
    assert isinstance(signed["proof"], list) and len(signed["proof"]) == 2
    asyncio.run(verify_data_integrity(signed, resolver=Resolver()))
    broken = copy.deepcopy(signed)
    broken["proof"][1]["proofValue"] = signed["proof"][0]["proofValue"]
    with pytest.raises(DataIntegrityError) as info:
        asyncio.run(verify_data_integrity(broken, resolver=Resolver()))
    assert info.value.code == "signature_invalid"
    chain = _json(EDDSA / "proof-set-chain/signedProofChain2.json")
    with pytest.raises(DataIntegrityError, match="previousProof"):
        asyncio.run(verify_data_integrity(chain, resolver=Resolver()))


@pytest.mark.parametrize("suite", ["eddsa-rdfc-2022", "eddsa-jcs-2022"])
def test_tampering_and_bad_proofs(suite: str) -> None:
    key = generate_key()
    did = did_key_from_key(key)
    vm = f"{did}#{did.removeprefix('did:key:')}"
    doc = sign_data_integrity(_json(EDDSA / "unsigned.json"), key, vm, cryptosuite=suite)

    def code_of(document: dict[str, Any], **kw: Any) -> str:
        with pytest.raises(DataIntegrityError) as info:
            asyncio.run(verify_data_integrity(document, resolver=Resolver(), **kw))
        return info.value.code

    tampered = copy.deepcopy(doc)
    tampered["credentialSubject"]["alumniOf"] = "Another School"
    assert code_of(tampered) == "signature_invalid"
    wrong_purpose = copy.deepcopy(doc)
    wrong_purpose["proof"]["proofPurpose"] = "authentication"
    assert code_of(wrong_purpose) == "key_not_in_relationship"
    assert code_of(doc, purpose="authentication") == "key_not_in_relationship"
    other_key = copy.deepcopy(doc)
    other = did_key_from_key(generate_key())
    other_key["proof"]["verificationMethod"] = f"{other}#{other.removeprefix('did:key:')}"
    assert code_of(other_key) == "signature_invalid"
    unknown_suite = copy.deepcopy(doc)
    unknown_suite["proof"]["cryptosuite"] = "bbs-2023"
    assert code_of(unknown_suite) == "alg_not_allowed"
    assert code_of({**doc, "proof": {**doc["proof"], "proofValue": "not-multibase"}}) == "signature_invalid"
    assert code_of({**doc, "proof": {**doc["proof"], "verificationMethod": "did:web:nowhere.invalid#k"}},
                   ) == "kid_unresolvable"
    assert code_of({k: v for k, v in doc.items() if k != "proof"}) == "malformed"
    assert code_of({**doc, "proof": []}) == "malformed"
    assert code_of({**doc, "proof": "x"}) == "malformed"
    assert code_of({**doc, "proof": {**doc["proof"], "type": "Ed25519Signature2018"}}) == "malformed"  # no jws
    assert code_of({**doc, "proof": {**doc["proof"], "type": "RsaSignature2018"}}) == "alg_not_allowed"
    if suite == "eddsa-jcs-2022":
        wrong_ctx = copy.deepcopy(doc)
        wrong_ctx["proof"]["@context"] = ["https://www.w3.org/2018/credentials/v1"]
        assert code_of(wrong_ctx) == "malformed"


def test_unpinned_context_is_refused_not_fetched() -> None:
    with pytest.raises(ContextNotPinned):
        document_loader("https://example.com/evil-context.jsonld")
    key = generate_key()
    doc = {"@context": ["https://www.w3.org/ns/credentials/v2", "https://example.com/evil-context.jsonld"],
           "type": ["VerifiableCredential"], "issuer": "did:x:y", "credentialSubject": {"id": "did:x:z"}}
    with pytest.raises(DataIntegrityError, match="canonicalization"):
        sign_data_integrity(doc, key, "did:x:y#k")
    # the bitstring status list context resolves to the pinned copy
    assert "BitstringStatusListEntry" in document_loader("https://www.w3.org/ns/credentials/status/v1")[
        "document"]["@context"]


def test_sign_validations() -> None:
    unsigned = _json(EDDSA / "unsigned.json")
    with pytest.raises(DataIntegrityError):
        sign_data_integrity(unsigned, generate_key("ES256"), "did:x:y#k", cryptosuite="eddsa-rdfc-2022")
    with pytest.raises(DataIntegrityError):
        sign_data_integrity(unsigned, generate_key(), "did:x:y#k", cryptosuite="nope")
    signed = sign_data_integrity(unsigned, generate_key(), "did:x:y#k")
    with pytest.raises(DataIntegrityError):
        sign_data_integrity(signed, generate_key(), "did:x:y#k")


@pytest.mark.parametrize("suite", ["eddsa-rdfc-2022", "eddsa-jcs-2022"])
def test_verify_credential_data_integrity_path(suite: str) -> None:
    key = generate_key()
    issuer = "did:web:issuer.example"
    resolver = Resolver(methods=[])
    resolver.add_document(build_did_document(issuer, [("key-1", key)]))
    cred = {"@context": ["https://www.w3.org/ns/credentials/v2", "https://www.w3.org/ns/credentials/examples/v2"],
            "type": ["VerifiableCredential", "AlumniCredential"], "issuer": issuer,
            "validFrom": "2024-01-01T00:00:00Z", "credentialSubject": {"id": "did:example:abc", "alumniOf": "X"}}
    signed = sign_data_integrity(cred, key, f"{issuer}#key-1-multikey", cryptosuite=suite)
    now = datetime(2025, 1, 1, tzinfo=UTC)
    result = asyncio.run(verify_credential(signed, resolver=resolver, trust={"AlumniCredential": [issuer]}, now=now))
    assert result.ok, result.checks
    assert result.format == "data-integrity" and result.subject_id == "did:example:abc"
    # the JsonWebKey2020 entry of the same key works as well
    signed_jwk = sign_data_integrity(cred, key, f"{issuer}#key-1", cryptosuite=suite)
    assert asyncio.run(verify_credential(signed_jwk, resolver=resolver, trust=None, now=now)).ok
    # a proof by a key that is not the issuer's is refused even if the signature is fine
    stranger = generate_key()
    sdid = did_key_from_key(stranger)
    foreign = sign_data_integrity(cred, stranger, f"{sdid}#{sdid.removeprefix('did:key:')}", cryptosuite=suite)
    res = asyncio.run(verify_credential(foreign, resolver=Resolver(), trust=None, now=now))
    assert res.error_code == "issuer_mismatch"
    tampered = copy.deepcopy(signed)
    tampered["credentialSubject"]["alumniOf"] = "Y"
    assert asyncio.run(verify_credential(tampered, resolver=resolver, trust=None, now=now)).error_code == \
        "signature_invalid"
    assert asyncio.run(verify_credential(signed, resolver=resolver, trust={"Other": [issuer]}, now=now)
                       ).error_code == "issuer_untrusted"


def test_didkit_ed25519signature2018_verifies() -> None:
    legacy = _json(GEN / "out-didkit-ed25519signature2018.json")
    result = asyncio.run(verify_credential(legacy, resolver=Resolver(), trust=None,
                                           now=datetime(2024, 1, 1, tzinfo=UTC)))
    assert result.ok, result.checks
    assert result.issuer == "did:key:z6MkrJVnaZkeFzdQyMZu1cgjg7k1pZZ6pvBQ7XJPt4swbTQ2"
    tampered = copy.deepcopy(legacy)
    tampered["credentialSubject"]["id"] = "did:example:mallory"
    assert asyncio.run(verify_credential(tampered, resolver=Resolver(), trust=None)).error_code == "signature_invalid"
    attached = copy.deepcopy(legacy)
    head, _, sig = legacy["proof"]["jws"].split(".")
    attached["proof"]["jws"] = f"{head}.e30.{sig}"  # a non-detached payload is not accepted
    assert asyncio.run(verify_credential(attached, resolver=Resolver(), trust=None)).error_code == "signature_invalid"


@pytest.mark.parametrize("alg", ["EdDSA", "ES256", "ES256K"])
def test_json_web_signature_2020_round_trip(alg: str) -> None:
    from identity.credentials.data_integrity import sign_detached_jws_proof

    key = generate_key(alg)
    issuer = "did:web:issuer.example"
    resolver = Resolver(methods=[])
    resolver.add_document(build_did_document(issuer, [("key-1", key)]))
    cred = {"@context": ["https://www.w3.org/2018/credentials/v1", "https://w3id.org/security/suites/jws-2020/v1"],
            "type": ["VerifiableCredential"], "issuer": issuer, "issuanceDate": "2024-01-01T00:00:00Z",
            "credentialSubject": {"id": "did:web:holder.example"}}
    signed = sign_detached_jws_proof(cred, key, f"{issuer}#key-1")
    assert signed["proof"]["jws"].split(".")[1] == ""
    result = asyncio.run(verify_credential(signed, resolver=resolver, trust=None))
    assert result.ok, result.checks
    tampered = copy.deepcopy(signed)
    tampered["issuanceDate"] = "2023-01-01T00:00:00Z"
    assert asyncio.run(verify_credential(tampered, resolver=resolver, trust=None)).error_code == "signature_invalid"
    with pytest.raises(DataIntegrityError):
        sign_detached_jws_proof(cred, key, f"{issuer}#key-1", proof_type="Ed25519Signature2018"
                                if alg != "EdDSA" else "Nope2019")


def test_safe_mode_refuses_undefined_terms() -> None:
    """An undefined member would not be covered by the signature: refuse rather than silently drop it."""
    doc = {"@context": ["https://www.w3.org/2018/credentials/v1"], "type": ["VerifiableCredential"],
           "issuer": "did:x:y", "issuanceDate": "2020-01-01T00:00:00Z", "credentialSubject": {"id": "did:x:z"},
           "unsignedClaim": "admin"}
    with pytest.raises(DataIntegrityError, match="unsignedClaim"):
        canonicalize_rdfc(doc)
    assert "unsignedClaim" not in canonicalize_rdfc(doc, safe=False)
    with pytest.raises(DataIntegrityError):
        sign_data_integrity(doc, generate_key(), "did:x:y#k")


def test_ed25519signature2020_vector_byte_identical() -> None:
    folder = EDDSA / "Ed25519Signature2020"
    signed = _json(folder / "signedEdSig.json")
    unsigned = {k: v for k, v in signed.items() if k != "proof"}
    assert canonicalize_rdfc(unsigned) == _text(folder / "canonDocEdSig.txt")
    assert canonicalize_rdfc(_json(folder / "proofConfigEdSig.json")) == _text(folder / "proofCanonEdSig.txt")
    assert hash_data(unsigned, signed["proof"]).hex() == _text(folder / "combinedHashEdSig.txt").strip()
    key = KeyPair.from_private_multibase(_json(EDDSA / "keyPair.json")["privateKeyMultibase"])
    ours = sign_data_integrity(unsigned, key, signed["proof"]["verificationMethod"],
                               cryptosuite="Ed25519Signature2020", created=signed["proof"]["created"])
    assert ours == signed
    info = asyncio.run(verify_data_integrity(signed, resolver=Resolver()))
    assert info.cryptosuite == "Ed25519Signature2020"
