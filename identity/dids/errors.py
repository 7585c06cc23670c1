"""Errors raised while building, resolving or dereferencing DID documents."""

from __future__ import annotations

from identity.errors import IdentityError


class DidError(IdentityError):
    """Base for DID problems."""

    code = "did_error"


class InvalidDid(DidError):
    """The string is not a syntactically valid DID (or DID URL) for its method."""

    code = "did_invalid"


class UnsupportedDidMethod(DidError):
    """No resolver plug-in is registered for the DID method."""

    code = "did_method_unsupported"


class DidResolutionError(DidError):
    """The DID document could not be fetched (network, HTTP status, size, http not allowed...)."""

    code = "did_unresolvable"


class InvalidDidDocument(DidError):
    """The fetched or built document is not a valid DID document."""

    code = "did_document_invalid"


class DidIdMismatch(InvalidDidDocument):
    """The document's ``id`` differs from the DID it was fetched for (possible substitution attack)."""

    code = "did_id_mismatch"


class VerificationMethodNotFound(DidError):
    """The key id (``kid`` / ``verificationMethod``) is not in the controller's DID document."""

    code = "kid_unresolvable"


class KeyNotInRelationship(DidError):
    """The key exists but is not listed under the verification relationship the check needs."""

    code = "key_not_in_relationship"
