"""DIDs for Pactum: did:web and did:key documents, a caching resolver with method plug-ins."""

from identity.dids.document import (
    build_did_document,
    credential_service,
    data_service,
    find_service,
    find_verification_method,
    key_from_verification_method,
    validate_did_document,
)
from identity.dids.errors import (
    DidError,
    DidIdMismatch,
    DidResolutionError,
    InvalidDid,
    InvalidDidDocument,
    KeyNotInRelationship,
    UnsupportedDidMethod,
    VerificationMethodNotFound,
)
from identity.dids.key import did_key_document, did_key_from_key, key_from_did_key
from identity.dids.resolver import DidMethod, Resolver, parse_did
from identity.dids.web import did_web_from_url, did_web_url

__all__ = [
    "DidError",
    "DidIdMismatch",
    "DidMethod",
    "DidResolutionError",
    "InvalidDid",
    "InvalidDidDocument",
    "KeyNotInRelationship",
    "Resolver",
    "UnsupportedDidMethod",
    "VerificationMethodNotFound",
    "build_did_document",
    "credential_service",
    "data_service",
    "did_key_document",
    "did_key_from_key",
    "did_web_from_url",
    "did_web_url",
    "find_service",
    "find_verification_method",
    "key_from_did_key",
    "key_from_verification_method",
    "parse_did",
    "validate_did_document",
]
