"""did:key: the DID is the multibase(base58btc) multicodec public key; the document is derived, never fetched."""

from __future__ import annotations

from typing import Any

from identity.dids.errors import InvalidDid
from identity.keys import InvalidKey, KeyPair

DID_KEY_PREFIX = "did:key:"


def did_key_from_key(key: KeyPair) -> str:
    """``did:key:z...`` for an Ed25519, P-256 or secp256k1 key (compressed point for EC keys)."""
    return DID_KEY_PREFIX + key.public_multibase()


def key_from_did_key(did: str) -> KeyPair:
    """The public key a did:key encodes (a DID URL's fragment/query is ignored)."""
    base = did.split("#", 1)[0].split("?", 1)[0]
    if not base.startswith(DID_KEY_PREFIX):
        raise InvalidDid(f"not a did:key: {did!r}")
    ident = base[len(DID_KEY_PREFIX):]
    if ident.count(":") == 1:  # optional version prefix "1:z..." is not supported by the spec anymore
        raise InvalidDid(f"unsupported did:key version in {did!r}")
    if not ident.startswith("z"):
        raise InvalidDid(f"did:key identifier must be multibase base58btc ('z'): {did!r}")
    try:
        return KeyPair.from_multikey(ident, kid=f"{base}#{ident}")
    except InvalidKey as exc:
        raise InvalidDid(f"unsupported or invalid did:key {did!r}: {exc}") from None


def did_key_document(did: str, *, vm_type: str = "Multikey") -> dict[str, Any]:
    """The DID document a did:key expands to: one key, listed in every signing relationship.

    ``vm_type`` ``Multikey`` follows the current did:key spec; ``JsonWebKey2020`` yields the older
    publicKeyJwk form some EDC deployments expect.
    """
    key = key_from_did_key(did)
    base = did.split("#", 1)[0]
    ident = base[len(DID_KEY_PREFIX):]
    vm_id = f"{base}#{ident}"
    vm: dict[str, Any] = {"id": vm_id, "type": vm_type, "controller": base}
    if vm_type == "Multikey":
        vm["publicKeyMultibase"] = ident
        contexts = ["https://www.w3.org/ns/did/v1", "https://w3id.org/security/multikey/v1"]
    elif vm_type == "JsonWebKey2020":
        vm["publicKeyJwk"] = key.public_jwk()
        contexts = ["https://www.w3.org/ns/did/v1", "https://w3id.org/security/suites/jws-2020/v1"]
    else:
        raise InvalidDid(f"unsupported did:key verification method type {vm_type!r}")
    return {
        "@context": contexts,
        "id": base,
        "verificationMethod": [vm],
        "authentication": [vm_id],
        "assertionMethod": [vm_id],
        "capabilityInvocation": [vm_id],
        "capabilityDelegation": [vm_id],
    }


class DidKeyMethod:
    """Resolver plug-in for did:key (pure computation, no I/O)."""

    name = "key"

    async def resolve(self, did: str) -> dict[str, Any]:
        return did_key_document(did)
