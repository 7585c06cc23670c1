"""Validate DCP 1.0 messages against the official JSON schemas shipped in ``identity/resources/dcp``.

WHY a hand-built registry: the schemas reference each other by their public ``https://w3id.org/...`` and
``https://identity.foundation/...`` URLs; we must never fetch them, so every reference is answered from the
local copies (plus the two tiny DIF claim-format designation schemas, which the DCP bundle omits).
"""

from __future__ import annotations

import json
from functools import cache, lru_cache
from importlib import resources
from typing import Any

from jsonschema import Draft7Validator, Draft201909Validator
from jsonschema.exceptions import best_match
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7, DRAFT201909

from identity.dcp.errors import MessageInvalid

DCP_CONTEXT = "https://w3id.org/dspace-dcp/v1.0/dcp.jsonld"
_DCP_BASE = "https://w3id.org/dspace-dcp/v1.0/"
_PE_BASE = "https://identity.foundation/presentation-exchange/schemas/"
_CLAIM_FORMAT_BASE = "https://identity.foundation/claim-format-registry/schemas/"

# The DIF claim format registry (https://identity.foundation/claim-format-registry/), restated: a format
# designation maps a format name to the algorithms or proof types the verifier accepts.
_ALGS = {"type": "object", "properties": {"alg": {"type": "array", "minItems": 1, "items": {"type": "string"}}}}
_PROOFS = {
    "type": "object",
    "properties": {"proof_type": {"type": "array", "minItems": 1, "items": {"type": "string"}}},
}
_FORMAT_NAMES = [
    "jwt", "jwt_vc", "jwt_vc_json", "jwt_vp", "jwt_vp_json", "ldp", "ldp_vc", "ldp_vp",
    "di", "di_vc", "di_vp", "sd_jwt", "vc+sd-jwt", "mso_mdoc", "ac_vc", "ac_vp",
]
_DEFINITION_FORMATS: dict[str, Any] = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "title": "Presentation Definition Claim Format Designations",
    "type": "object",
    "additionalProperties": False,
    "patternProperties": {
        "^(jwt|jwt_vc|jwt_vc_json|jwt_vp|jwt_vp_json|sd_jwt|vc\\+sd-jwt|mso_mdoc)$": _ALGS,
        "^(ldp|ldp_vc|ldp_vp|di|di_vc|di_vp|ac_vc|ac_vp)$": _PROOFS,
    },
}
_SUBMISSION_FORMATS: dict[str, Any] = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "title": "Presentation Submission Claim Format Designations",
    "definitions": {"format": {"type": "string", "enum": _FORMAT_NAMES}},
}

# message type -> (resource path under identity/resources/dcp, schema URL)
SCHEMAS: dict[str, tuple[str, str]] = {
    "PresentationQueryMessage": (
        "presentation/presentation-query-message-schema.json",
        _DCP_BASE + "presentation/presentation-query-message-schema.json",
    ),
    "PresentationResponseMessage": (
        "presentation/presentation-response-message-schema.json",
        _DCP_BASE + "presentation/presentation-response-message-schema.json",
    ),
    "CredentialMessage": (
        "issuance/credential-message-schema.json",
        _DCP_BASE + "presentation/credential-message-schema.json",
    ),
    "CredentialRequestMessage": (
        "issuance/credential-request-message-schema.json",
        _DCP_BASE + "issuance/credential-request-message-schema.json",
    ),
    "CredentialStatus": (
        "issuance/credential-status-schema.json",
        _DCP_BASE + "issuance/credential-status-schema.json",
    ),
    "CredentialOfferMessage": (
        "issuance/credential-offer-message-schema.json",
        _DCP_BASE + "issuance/credential-offer-message-schema.json",
    ),
    "CredentialObject": (
        "issuance/credential-object-schema.json",
        _DCP_BASE + "issuance/credential-object-schema.json",
    ),
    "IssuerMetadata": (
        "issuance/issuer-metadata-schema.json",
        _DCP_BASE + "issuance/issuer-metadata-schema.json",
    ),
}


def _load(relative: str) -> dict[str, Any]:
    path = resources.files("identity").joinpath("resources/dcp", relative)
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


@lru_cache(maxsize=1)
def registry() -> Registry:
    """All DCP, presentation-exchange and claim-format schemas, keyed by every URL they are referenced by."""
    pairs: list[tuple[str, Resource[Any]]] = []
    for relative, url in SCHEMAS.values():
        pairs.append((url, DRAFT201909.create_resource(_load(relative))))
    context = DRAFT201909.create_resource(_load("common/context-schema.json"))
    # The file declares a stale "v08" $id while every message references the v1.0 URL: answer both.
    pairs.append((_DCP_BASE + "common/context-schema.json", context))
    pairs.append(("https://w3id.org/dspace-dcp/v08/common/context-schema.json", context))
    for name in ("presentation-definition.json", "presentation-submission.json"):
        pairs.append((_PE_BASE + name, DRAFT7.create_resource(_load("presentation-exchange/" + name))))
    pairs.append(
        (
            _CLAIM_FORMAT_BASE + "presentation-definition-claim-format-designations.json",
            DRAFT7.create_resource(_DEFINITION_FORMATS),
        )
    )
    pairs.append(
        (
            _CLAIM_FORMAT_BASE + "presentation-submission-claim-format-designations.json",
            DRAFT7.create_resource(_SUBMISSION_FORMATS),
        )
    )
    return Registry().with_resources(pairs)


@cache
def _validator(message_type: str) -> Draft201909Validator:
    relative, _ = SCHEMAS[message_type]
    return Draft201909Validator(_load(relative), registry=registry())


@lru_cache(maxsize=1)
def _definition_validator() -> Draft7Validator:
    return Draft7Validator(_load("presentation-exchange/presentation-definition.json"), registry=registry())


def validate_message(message: Any, message_type: str) -> dict[str, Any]:
    """Check ``message`` against the schema of ``message_type``; return it unchanged or raise MessageInvalid.

    The ``type`` member is checked explicitly too, since some DCP schemas leave it unconstrained.
    """
    if message_type not in SCHEMAS:
        raise MessageInvalid(f"unknown DCP message type {message_type!r}", code="unknown_message_type")
    if not isinstance(message, dict):
        raise MessageInvalid(f"a {message_type} must be a JSON object", code="message_invalid")
    error = best_match(_validator(message_type).iter_errors(message))
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "(root)"
        raise MessageInvalid(f"invalid {message_type} at {where}: {error.message}", code="schema_violation")
    if message_type != "CredentialObject" and message.get("type") != message_type:
        raise MessageInvalid(
            f"expected type {message_type!r}, got {message.get('type')!r}", code="wrong_message_type"
        )
    return message


def validate_presentation_definition(definition: Any) -> dict[str, Any]:
    """Check a DIF Presentation Exchange 2.x presentation definition (the wrapper-free form DCP embeds)."""
    if not isinstance(definition, dict):
        raise MessageInvalid("a presentation definition must be a JSON object", code="schema_violation")
    error = best_match(_definition_validator().iter_errors(definition))
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "(root)"
        raise MessageInvalid(f"invalid presentationDefinition at {where}: {error.message}", code="schema_violation")
    return definition
