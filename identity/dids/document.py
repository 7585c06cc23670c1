"""Build, validate and dereference DID documents.

Keys are published twice: as ``JsonWebKey2020`` with ``publicKeyJwk`` (what EDC / Catena-X resolvers read)
under ``#<key_id>``, and as ``Multikey`` with ``publicKeyMultibase`` (what Data Integrity suites read) under
``#<key_id>-multikey``. JWT ``kid`` is always the full DID URL of the JsonWebKey2020 entry.
"""

from __future__ import annotations

from typing import Any

import pydid

from identity.dids.errors import DidIdMismatch, InvalidDidDocument, KeyNotInRelationship, VerificationMethodNotFound
from identity.keys import InvalidKey, KeyPair
from identity.multibase import EncodingError, b58decode, b64url_encode

DID_CONTEXT = "https://www.w3.org/ns/did/v1"
JWS2020_CONTEXT = "https://w3id.org/security/suites/jws-2020/v1"
MULTIKEY_CONTEXT = "https://w3id.org/security/multikey/v1"
RELATIONSHIPS = ("authentication", "assertionMethod", "capabilityInvocation", "capabilityDelegation", "keyAgreement")
DEFAULT_RELATIONSHIPS = ("authentication", "assertionMethod", "capabilityInvocation")
MULTIKEY_SUFFIX = "-multikey"


def build_did_document(
    did: str,
    keys: list[tuple[str, KeyPair]],
    services: list[dict[str, Any]] | None = None,
    *,
    relationships: tuple[str, ...] = DEFAULT_RELATIONSHIPS,
    publish: tuple[str, ...] = ("JsonWebKey2020", "Multikey"),
) -> dict[str, Any]:
    """A DID document for ``did`` publishing every ``(fragment, key)`` in each relationship, plus services.

    Services are dicts with ``type`` and ``serviceEndpoint`` (e.g. ``CredentialService``, ``DataService``);
    a missing or relative ``id`` becomes ``did#<fragment>``. The result is validated with pydid.
    """
    if not keys:
        raise InvalidDidDocument("a DID document needs at least one key")
    contexts = [DID_CONTEXT]
    if "JsonWebKey2020" in publish:
        contexts.append(JWS2020_CONTEXT)
    if "Multikey" in publish:
        contexts.append(MULTIKEY_CONTEXT)
    methods: list[dict[str, Any]] = []
    for fragment, key in keys:
        fragment = fragment.lstrip("#")
        if "JsonWebKey2020" in publish:
            methods.append({
                "id": f"{did}#{fragment}",
                "type": "JsonWebKey2020",
                "controller": did,
                "publicKeyJwk": key.public_jwk(),
            })
        if "Multikey" in publish:
            methods.append({
                "id": f"{did}#{fragment}{MULTIKEY_SUFFIX}" if "JsonWebKey2020" in publish else f"{did}#{fragment}",
                "type": "Multikey",
                "controller": did,
                "publicKeyMultibase": key.public_multibase(),
            })
    doc: dict[str, Any] = {"@context": contexts, "id": did, "verificationMethod": methods}
    for rel in relationships:
        if rel not in RELATIONSHIPS:
            raise InvalidDidDocument(f"unknown verification relationship {rel!r}")
        doc[rel] = [m["id"] for m in methods]
    if services:
        out = []
        for i, svc in enumerate(services):
            if "type" not in svc or "serviceEndpoint" not in svc:
                raise InvalidDidDocument("each service needs 'type' and 'serviceEndpoint'")
            entry = dict(svc)
            sid = str(entry.get("id") or f"#{str(entry['type']).lower()}-{i + 1}")
            entry["id"] = f"{did}{sid}" if sid.startswith("#") else sid
            out.append(entry)
        doc["service"] = out
    validate_did_document(doc, did)
    return doc


def validate_did_document(doc: Any, expected_did: str | None = None) -> dict[str, Any]:
    """Check the document parses as a DID document (pydid) and its ``id`` is the DID it was fetched for."""
    if not isinstance(doc, dict):
        raise InvalidDidDocument("DID document must be a JSON object")
    if expected_did is not None and doc.get("id") != expected_did:
        raise DidIdMismatch(f"DID document id {doc.get('id')!r} does not match requested DID {expected_did!r}")
    try:
        pydid.deserialize_document(doc)
    except Exception as exc:  # pydid raises ValueError / pydantic errors of several kinds
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InvalidDidDocument(f"invalid DID document: {first}") from None
    return doc


def _absolute(ref: str, did: str) -> str:
    return did + ref if ref.startswith("#") else ref


def find_verification_method(doc: dict[str, Any], kid: str) -> dict[str, Any]:
    """The verification method with id ``kid`` (absolute DID URL or ``#fragment``), searching embedded ones too."""
    did = doc["id"]
    wanted = _absolute(kid, did)
    candidates: list[Any] = list(doc.get("verificationMethod") or [])
    for rel in RELATIONSHIPS:
        candidates.extend(x for x in doc.get(rel) or [] if isinstance(x, dict))
    for vm in candidates:
        if isinstance(vm, dict) and isinstance(vm.get("id"), str) and _absolute(vm["id"], did) == wanted:
            return vm
    raise VerificationMethodNotFound(f"{wanted} is not a verification method of {did}")


def check_relationship(doc: dict[str, Any], kid: str, relationship: str) -> None:
    """Raise KeyNotInRelationship unless ``kid`` is listed (by reference or embedded) under ``relationship``."""
    did = doc["id"]
    wanted = _absolute(kid, did)
    for entry in doc.get(relationship) or []:
        ref = entry.get("id") if isinstance(entry, dict) else entry
        if isinstance(ref, str) and _absolute(ref, did) == wanted:
            return
    raise KeyNotInRelationship(f"{wanted} is not listed under {relationship} of {did}")


def key_from_verification_method(vm: dict[str, Any]) -> KeyPair:
    """The public key of a verification method: publicKeyJwk, publicKeyMultibase or (Ed25519) publicKeyBase58."""
    kid = vm.get("id")
    try:
        if isinstance(vm.get("publicKeyJwk"), dict):
            return KeyPair.from_jwk(vm["publicKeyJwk"], kid=kid)
        if isinstance(vm.get("publicKeyMultibase"), str):
            return KeyPair.from_multikey(vm["publicKeyMultibase"], kid=kid)
        if isinstance(vm.get("publicKeyBase58"), str) and vm.get("type") in (
            "Ed25519VerificationKey2018", "Ed25519VerificationKey2020"
        ):
            raw = b58decode(vm["publicKeyBase58"])
            return KeyPair.from_jwk({"kty": "OKP", "crv": "Ed25519", "x": b64url_encode(raw)}, kid=kid)
    except (InvalidKey, EncodingError) as exc:
        raise VerificationMethodNotFound(f"verification method {kid} has an unusable key: {exc}") from None
    raise VerificationMethodNotFound(f"verification method {kid} carries no supported public key")


def find_service(doc: dict[str, Any], service_type: str) -> dict[str, Any] | None:
    """The first service of ``service_type`` (e.g. ``CredentialService``), or None."""
    for svc in doc.get("service") or []:
        if not isinstance(svc, dict):
            continue
        types = svc.get("type")
        if service_type == types or (isinstance(types, list) and service_type in types):
            return svc
    return None


def credential_service(endpoint: str, service_id: str = "#credential-service") -> dict[str, Any]:
    """The DCP ``CredentialService`` entry verifiers use to find a holder's presentation endpoint."""
    return {"id": service_id, "type": "CredentialService", "serviceEndpoint": endpoint}


def data_service(endpoint: str, service_id: str = "#dsp") -> dict[str, Any]:
    """The DSP ``DataService`` entry pointing at a connector's Dataspace Protocol endpoint."""
    return {"id": service_id, "type": "DataService", "serviceEndpoint": endpoint}
