"""Pick the key a DID document authorizes for a purpose, following DCP's rules for Self-Issued ID Tokens.

WHY its own module: DCP demands a specific verification relationship (``capabilityInvocation`` for SI
tokens, ``authentication`` for presentations) and a precise ``kid`` policy (single key allowed only when no
``kid``); both the token verifier and the credential service need exactly this logic.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from identity.dcp.errors import TokenError
from identity.errors import IdentityError
from identity.keys import KeyPair


class DidResolver(Protocol):
    """Anything with ``await resolve(did)`` returning a DID document (dict or an object exposing one)."""

    def resolve(self, did: str) -> Awaitable[Any]: ...


def as_document(resolved: Any) -> dict[str, Any]:
    """Accept a dict, or a resolution result exposing ``did_document`` / ``document`` / ``to_dict()``."""
    if isinstance(resolved, dict):
        return resolved
    for attr in ("did_document", "document"):
        value = getattr(resolved, attr, None)
        if isinstance(value, dict):
            return value
    to_dict = getattr(resolved, "to_dict", None)
    if callable(to_dict):
        value = to_dict()
        if isinstance(value, dict):
            return value
    raise TokenError("DID resolution returned no DID document", code="did_unresolvable")


async def resolve_document(resolver: DidResolver, did: str) -> dict[str, Any]:
    """Resolve ``did`` and map every resolver failure to TokenError(did_unresolvable)."""
    try:
        resolved = await resolver.resolve(did)
    except IdentityError as exc:
        raise TokenError(f"cannot resolve {did}: {exc}", code="did_unresolvable") from None
    return as_document(resolved)


def _absolute(did: str, ref: str) -> str:
    return did + ref if ref.startswith("#") else ref


def _methods(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    did = str(document.get("id", ""))
    found: dict[str, dict[str, Any]] = {}
    buckets = [document.get("verificationMethod") or []]
    for rel in ("authentication", "assertionMethod", "capabilityInvocation", "capabilityDelegation"):
        buckets.append([m for m in (document.get(rel) or []) if isinstance(m, dict)])
    for bucket in buckets:
        for method in bucket:
            if isinstance(method, dict) and isinstance(method.get("id"), str):
                found.setdefault(_absolute(did, method["id"]), method)
    return found


def _related(document: dict[str, Any], relationship: str) -> set[str]:
    did = str(document.get("id", ""))
    refs: set[str] = set()
    for entry in document.get(relationship) or []:
        if isinstance(entry, str):
            refs.add(_absolute(did, entry))
        elif isinstance(entry, dict) and isinstance(entry.get("id"), str):
            refs.add(_absolute(did, entry["id"]))
    return refs


def key_from_method(method: dict[str, Any]) -> KeyPair:
    """The public key of a verification method (``publicKeyJwk`` or ``publicKeyMultibase``)."""
    try:
        if isinstance(method.get("publicKeyJwk"), dict):
            return KeyPair.from_jwk(method["publicKeyJwk"], kid=method.get("id"))
        if isinstance(method.get("publicKeyMultibase"), str):
            return KeyPair.from_multikey(method["publicKeyMultibase"], kid=method.get("id"))
    except IdentityError as exc:
        raise TokenError(f"verification method {method.get('id')} has an unusable key: {exc}",
                         code="key_invalid") from None
    raise TokenError(f"verification method {method.get('id')} carries no supported key", code="key_invalid")


def select_key(document: dict[str, Any], kid: str | None, relationship: str) -> KeyPair:
    """Return the key for ``kid`` (a DID URL or fragment) that holds ``relationship`` in ``document``.

    Without a ``kid`` the document must hold exactly one verification method, which must hold the relationship.
    """
    did = str(document.get("id", ""))
    methods = _methods(document)
    allowed = _related(document, relationship)
    if kid is None:
        if len(methods) != 1:
            raise TokenError("token has no kid and the DID document has several keys", code="kid_missing")
        (method_id, method), = methods.items()
    else:
        method_id = _absolute(did, kid)
        if not method_id.startswith(did + "#") and "#" in method_id and method_id.split("#")[0] != did:
            raise TokenError(f"kid {kid} does not belong to {did}", code="kid_mismatch")
        method = methods.get(method_id)  # type: ignore[assignment]
        if method is None:
            raise TokenError(f"kid {kid} is not a verification method of {did}", code="kid_unknown")
    if method_id not in allowed:
        raise TokenError(f"key {method_id} lacks the {relationship} relationship", code="key_not_authorized")
    return key_from_method(method)


KeyLookup = Callable[[str | None], KeyPair]
