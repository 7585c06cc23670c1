"""Data Integrity proofs: ``eddsa-rdfc-2022``, ``eddsa-jcs-2022`` (sign + verify) and ``ecdsa-rdfc-2019`` /
``ecdsa-jcs-2019`` with P-256 (verify + sign).

Algorithm (both suites, per the W3C specs): hashData = SHA-256(canon(proofConfig)) || SHA-256(canon(document
without proof)), where proofConfig is the proof minus ``proofValue`` with the document's ``@context``;
canon is RDF Dataset Canonicalization (pyld URDNA2015, offline pinned contexts, ``base=None``) or JCS
(RFC 8785). The signature over hashData is ``proofValue`` in multibase base58btc.
"""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import rfc8785
from pyld import jsonld

from identity.credentials.model import format_datetime
from identity.dids.errors import DidError, KeyNotInRelationship
from identity.dids.resolver import Resolver
from identity.errors import IdentityError
from identity.jsonld import document_loader
from identity.jsonld_processor import OfflineProcessor
from identity.keys import KeyPair
from identity.multibase import EncodingError, b64url_decode, b64url_encode, multibase_decode, multibase_encode

SUITES = {
    "eddsa-rdfc-2022": ("rdfc", "EdDSA"),
    "eddsa-jcs-2022": ("jcs", "EdDSA"),
    "ecdsa-rdfc-2019": ("rdfc", "ES256"),
    "ecdsa-jcs-2019": ("jcs", "ES256"),
    # legacy Linked Data proof type with the same hashing as eddsa-rdfc-2022 (no cryptosuite member)
    "Ed25519Signature2020": ("rdfc", "EdDSA"),
}
LEGACY_MULTIBASE_TYPES = frozenset({"Ed25519Signature2020"})


def suite_of(proof: dict[str, Any]) -> str | None:
    """The suite a proof uses: its ``cryptosuite`` for DataIntegrityProof, else the legacy proof type."""
    if proof.get("type") in LEGACY_MULTIBASE_TYPES:
        return str(proof["type"])
    return proof.get("cryptosuite") if proof.get("type") == "DataIntegrityProof" else None


class DataIntegrityError(IdentityError):
    """A Data Integrity proof is malformed, unverifiable or invalid; ``code`` says which."""

    code = "malformed"


@dataclass(frozen=True)
class ProofInfo:
    """What a verified proof asserted."""

    cryptosuite: str
    verification_method: str
    proof_purpose: str
    created: str | None


def _refuse_dropped(term: str | None) -> None:
    # "safe mode": a member the contexts do not define would be silently left out of the signed N-Quads,
    # so a verifier could read data no signature covers. Refuse instead.
    raise DataIntegrityError(f"JSON-LD term {term!r} is not defined by the document's contexts")


# one processor each, reused: pyld processors keep no per-call state for normalize
_SAFE_PROCESSOR = OfflineProcessor(on_property_dropped=_refuse_dropped)
_LENIENT_PROCESSOR = OfflineProcessor()


def canonicalize_rdfc(document: dict[str, Any], *, safe: bool = True) -> str:
    """RDF Dataset Canonicalization (URDNA2015) to N-Quads, contexts served offline.

    ``safe`` (default) rejects members that no context defines instead of silently dropping them.
    """
    processor = _SAFE_PROCESSOR if safe else _LENIENT_PROCESSOR
    try:
        result = processor.normalize(
            document,
            {"algorithm": "URDNA2015", "format": "application/n-quads", "documentLoader": document_loader,
             "base": None},
        )
    except jsonld.JsonLdError as exc:
        cause = exc
        while getattr(cause, "cause", None) is not None:
            cause = cause.cause  # type: ignore[assignment]
        raise DataIntegrityError(f"JSON-LD canonicalization failed: {str(cause).splitlines()[0]}") from exc
    except (TypeError, ValueError, KeyError, AttributeError, RecursionError) as exc:
        raise DataIntegrityError(f"JSON-LD canonicalization failed: {type(exc).__name__}: {exc}") from exc
    if not isinstance(result, str):
        raise DataIntegrityError("JSON-LD canonicalization produced no N-Quads")
    return result


def canonicalize_jcs(document: dict[str, Any]) -> bytes:
    """RFC 8785 JSON Canonicalization Scheme."""
    try:
        return rfc8785.dumps(document)
    except (rfc8785.CanonicalizationError, TypeError, ValueError) as exc:
        raise DataIntegrityError(f"JCS canonicalization failed: {exc}") from None


def _canon(kind: str, document: dict[str, Any]) -> bytes:
    return canonicalize_rdfc(document).encode("utf-8") if kind == "rdfc" else canonicalize_jcs(document)


def proof_config(document: dict[str, Any], proof: dict[str, Any]) -> dict[str, Any]:
    """The proof options that get hashed: the proof minus ``proofValue``, with the document's @context."""
    config = {k: v for k, v in proof.items() if k != "proofValue"}
    if "@context" in document:
        config["@context"] = document["@context"]
    return config


def hash_data(document: dict[str, Any], proof: dict[str, Any]) -> bytes:
    """SHA-256(canon(proofConfig)) || SHA-256(canon(unsecured document)); the bytes that get signed."""
    suite = suite_of(proof)
    if suite not in SUITES:
        raise DataIntegrityError(f"unsupported cryptosuite {suite!r}", code="alg_not_allowed")
    kind = SUITES[suite][0]
    unsecured = {k: v for k, v in document.items() if k != "proof"}
    config = proof_config(unsecured, proof)
    return hashlib.sha256(_canon(kind, config)).digest() + hashlib.sha256(_canon(kind, unsecured)).digest()


def sign_data_integrity(
    document: dict[str, Any],
    key: KeyPair,
    verification_method: str,
    *,
    cryptosuite: str = "eddsa-rdfc-2022",
    proof_purpose: str = "assertionMethod",
    created: datetime | str | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A copy of ``document`` with a ``DataIntegrityProof`` by ``key`` (Ed25519 for eddsa, P-256 for ecdsa)."""
    if cryptosuite not in SUITES:
        raise DataIntegrityError(f"unsupported cryptosuite {cryptosuite!r}", code="alg_not_allowed")
    if key.alg != SUITES[cryptosuite][1]:
        raise DataIntegrityError(f"{cryptosuite} needs a {SUITES[cryptosuite][1]} key, not {key.alg}")
    if "proof" in document:
        raise DataIntegrityError("document already carries a proof; proof sets/chains are not produced here")
    created_s = created if isinstance(created, str) else format_datetime(created or datetime.now(UTC))
    proof: dict[str, Any] = {
        "type": "DataIntegrityProof",
        "cryptosuite": cryptosuite,
        "created": created_s,
        "verificationMethod": verification_method,
        "proofPurpose": proof_purpose,
        **(extra or {}),
    }
    if cryptosuite in LEGACY_MULTIBASE_TYPES:
        proof["type"] = cryptosuite
        del proof["cryptosuite"]
    if SUITES[cryptosuite][0] == "jcs" and "@context" in document:
        proof["@context"] = document["@context"]
    signature = key.sign(hash_data(document, proof))
    signed = copy.deepcopy(document)
    signed["proof"] = {**proof, "proofValue": multibase_encode(signature, "z")}
    return signed


def verify_proof_with_key(document: dict[str, Any], proof: dict[str, Any], key: KeyPair) -> bool:
    """Check one proof's signature with a known key (no DID resolution)."""
    if proof.get("type") in LEGACY_JWS_SUITES:
        return _verify_detached_jws(document, proof, key)
    suite = suite_of(proof)
    if suite not in SUITES or key.alg != SUITES[suite][1]:
        return False
    try:
        signature = multibase_decode(proof.get("proofValue", ""))
    except EncodingError:
        return False
    if proof.get("proofValue", "")[:1] != "z":
        return False
    return key.verify(signature, hash_data(document, proof))


def _check_proof_shape(document: dict[str, Any], proof: Any, purpose: str) -> dict[str, Any]:
    if not isinstance(proof, dict):
        raise DataIntegrityError("proof must be a JSON object")
    if proof.get("type") in LEGACY_JWS_SUITES:
        if proof.get("proofPurpose") != purpose:
            raise DataIntegrityError(f"proofPurpose {proof.get('proofPurpose')!r} is not {purpose!r}",
                                     code="key_not_in_relationship")
        if not isinstance(proof.get("verificationMethod"), str) or not isinstance(proof.get("jws"), str):
            raise DataIntegrityError("proof needs verificationMethod and jws strings")
        return proof
    if proof.get("type") != "DataIntegrityProof" and proof.get("type") not in LEGACY_MULTIBASE_TYPES:
        raise DataIntegrityError(f"unsupported proof type {proof.get('type')!r}", code="alg_not_allowed")
    if suite_of(proof) not in SUITES:
        raise DataIntegrityError(f"unsupported cryptosuite {proof.get('cryptosuite')!r}", code="alg_not_allowed")
    if "previousProof" in proof:
        raise DataIntegrityError("proof chains (previousProof) are not supported")
    if proof.get("proofPurpose") != purpose:
        raise DataIntegrityError(f"proofPurpose {proof.get('proofPurpose')!r} is not {purpose!r}",
                                 code="key_not_in_relationship")
    if not isinstance(proof.get("verificationMethod"), str) or not isinstance(proof.get("proofValue"), str):
        raise DataIntegrityError("proof needs verificationMethod and proofValue strings")
    if "@context" in proof:
        doc_ctx = document.get("@context")
        doc_list = doc_ctx if isinstance(doc_ctx, list) else [doc_ctx]
        proof_list = proof["@context"] if isinstance(proof["@context"], list) else [proof["@context"]]
        if doc_list[: len(proof_list)] != proof_list:
            raise DataIntegrityError("proof @context does not match the document @context")
    return proof


# ---- legacy Linked Data Signatures with a detached JWS (didkit / EDC "LDP" credentials) -----------------

LEGACY_JWS_SUITES = {"Ed25519Signature2018": {"EdDSA"}, "JsonWebSignature2020": {"EdDSA", "ES256", "ES256K"}}


def _legacy_hash(document: dict[str, Any], proof: dict[str, Any]) -> bytes:
    unsecured = {k: v for k, v in document.items() if k != "proof"}
    options = {k: v for k, v in proof.items() if k not in ("jws", "proofValue")}
    options["@context"] = unsecured.get("@context")
    return hashlib.sha256(canonicalize_rdfc(options).encode()).digest() + \
        hashlib.sha256(canonicalize_rdfc(unsecured).encode()).digest()


def _verify_detached_jws(document: dict[str, Any], proof: dict[str, Any], key: KeyPair) -> bool:
    """RFC 7797 detached JWS (``b64: false``) over SHA-256(canon(options)) || SHA-256(canon(document))."""
    from identity.credentials.jws import load_json_bounded

    jws = proof.get("jws")
    if not isinstance(jws, str) or jws.count(".") != 2:
        return False
    head, payload, sig = jws.split(".")
    if payload:
        return False  # must be detached
    try:
        header = load_json_bounded(b64url_decode(head), max_bytes=4096, max_depth=3)
        signature = b64url_decode(sig)
    except (IdentityError, ValueError):
        return False
    if not isinstance(header, dict) or header.get("b64") is not False or header.get("crit") != ["b64"]:
        return False
    if header.get("alg") != key.alg or key.alg not in LEGACY_JWS_SUITES[proof["type"]]:
        return False
    return key.verify(signature, head.encode("ascii") + b"." + _legacy_hash(document, proof))


def sign_detached_jws_proof(
    document: dict[str, Any],
    key: KeyPair,
    verification_method: str,
    *,
    proof_type: str = "JsonWebSignature2020",
    proof_purpose: str = "assertionMethod",
    created: datetime | str | None = None,
) -> dict[str, Any]:
    """A copy of ``document`` with a legacy detached-JWS proof (JsonWebSignature2020 / Ed25519Signature2018),
    for peers that do not speak Data Integrity yet."""
    allowed = LEGACY_JWS_SUITES.get(proof_type)
    if allowed is None or key.alg not in allowed:
        raise DataIntegrityError(f"{proof_type} cannot be made with a {key.alg} key", code="alg_not_allowed")
    proof: dict[str, Any] = {
        "type": proof_type,
        "created": created if isinstance(created, str) else format_datetime(created or datetime.now(UTC)),
        "proofPurpose": proof_purpose,
        "verificationMethod": verification_method,
    }
    head = b64url_encode(json.dumps({"alg": key.alg, "b64": False, "crit": ["b64"]}, separators=(",", ":")).encode())
    signature = key.sign(head.encode("ascii") + b"." + _legacy_hash(document, proof))
    signed = copy.deepcopy(document)
    signed["proof"] = {**proof, "jws": f"{head}..{b64url_encode(signature)}"}
    return signed


async def verify_data_integrity(
    document: dict[str, Any],
    *,
    resolver: Resolver | None = None,
    purpose: str = "assertionMethod",
    key: KeyPair | None = None,
) -> ProofInfo:
    """Verify every proof of ``document`` (one proof or a proof set); returns the first proof's info.

    The key comes from ``key`` if given, else from resolving ``verificationMethod`` with ``resolver`` and
    checking it is under the verification relationship named by ``purpose``. Raises DataIntegrityError
    with codes ``malformed``, ``alg_not_allowed``, ``kid_unresolvable``, ``key_not_in_relationship`` or
    ``signature_invalid``.
    """
    if not isinstance(document, dict) or "proof" not in document:
        raise DataIntegrityError("document carries no proof")
    proofs = document["proof"] if isinstance(document["proof"], list) else [document["proof"]]
    if not proofs:
        raise DataIntegrityError("document carries an empty proof set")
    infos = []
    for raw in proofs:
        proof = _check_proof_shape(document, raw, purpose)
        vm = proof["verificationMethod"]
        signer = key
        if signer is None:
            if resolver is None:
                raise DataIntegrityError("verify_data_integrity needs a resolver or a key", code="kid_unresolvable")
            try:
                signer = await resolver.verification_key(vm, purpose)
            except KeyNotInRelationship as exc:
                raise DataIntegrityError(str(exc), code="key_not_in_relationship") from None
            except DidError as exc:
                raise DataIntegrityError(f"{exc} ({exc.code})", code="kid_unresolvable") from None
        if not verify_proof_with_key(document, proof, signer):
            raise DataIntegrityError(f"{proof.get('cryptosuite') or proof['type']} proof by {vm} does not verify",
                                     code="signature_invalid")
        suite_name = suite_of(proof) or proof["type"]
        infos.append(ProofInfo(suite_name, vm, proof["proofPurpose"], proof.get("created")))
    return infos[0]
