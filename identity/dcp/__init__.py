"""Decentralized Claims Protocol 1.0: self-issued tokens, credential service, presentation client, issuance.

The public names below are importable from ``identity.dcp`` directly; they load lazily because the wallet
imports the token layer, and the credential service imports the wallet.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "DcpError": "identity.dcp.errors",
    "TokenError": "identity.dcp.errors",
    "MessageInvalid": "identity.dcp.errors",
    "create_si_token": "identity.dcp.tokens",
    "verify_si_token": "identity.dcp.tokens",
    "create_access_token": "identity.dcp.tokens",
    "verify_access_token": "identity.dcp.tokens",
    "SelfIssuedToken": "identity.dcp.tokens",
    "AccessGrant": "identity.dcp.tokens",
    "JtiStore": "identity.dcp.jti_store",
    "Scope": "identity.dcp.scopes",
    "parse_scope": "identity.dcp.scopes",
    "type_scope": "identity.dcp.scopes",
    "validate_message": "identity.dcp.schemas",
    "CredentialService": "identity.dcp.credential_service",
    "CredentialServiceSettings": "identity.dcp.credential_service",
    "create_credential_service_router": "identity.dcp.credential_service",
    "create_credential_service_app": "identity.dcp.credential_service",
    "query_presentations": "identity.dcp.presentation_client",
    "DcpVerifier": "identity.dcp.verifier",
    "VerifiedParty": "identity.dcp.verifier",
    "PresentationRejected": "identity.dcp.verifier",
    "fetch_verified_claims": "identity.dcp.verifier",
    "request_credentials": "identity.dcp.issuance",
    "wait_for_issuance": "identity.dcp.issuance",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'identity.dcp' has no attribute {name!r}")
    return getattr(import_module(module), name)
