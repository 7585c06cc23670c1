"""What goes into each credential the authority issues: pure functions from (definition, participant) to JSON.

WHY pure: the claims a credential carries are the authority's policy; keeping them free of I/O makes them
easy to read, test and extend with a new credential type.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from identity.authority.errors import AuthorityError
from identity.authority.settings import CredentialDefinition
from identity.authority.storage import ParticipantRecord
from identity.credentials.model import VC_V1_CONTEXT, VC_V2_CONTEXT, format_datetime
from identity.credentials.status_list import STATUS_LIST_2021_CONTEXT, status_entry

CATENAX_CONTEXT = "https://w3id.org/catenax/credentials/v1.0.0"
FRAMEWORK_TYPES = {"DataExchangeGovernanceCredential", "FrameworkAgreementCredential"}


class IssuanceRefused(AuthorityError):
    """The participant does not qualify for the requested credential (e.g. no BPN for a BPN credential)."""

    code = "issuance_refused"
    status = 403


def subject_claims(definition: CredentialDefinition, participant: ParticipantRecord,
                   authority_name: str) -> dict[str, Any]:
    """The ``credentialSubject`` for ``participant`` under ``definition``."""
    ctype = definition.credential_type
    holder_identifier = participant.bpn or participant.did
    subject: dict[str, Any] = {"id": participant.did}
    if ctype == "MembershipCredential":
        subject.update({"holderIdentifier": holder_identifier, "memberOf": authority_name,
                        "since": format_datetime(participant.registered_at)})
    elif ctype in ("BusinessPartnerCredential", "BpnCredential"):
        if not participant.bpn:
            raise IssuanceRefused(f"{participant.did} has no business partner number in the directory")
        subject.update({"holderIdentifier": participant.bpn, "bpn": participant.bpn})
    elif ctype in FRAMEWORK_TYPES:
        subject.update({"holderIdentifier": holder_identifier, "group": "UseCaseFramework",
                        "useCase": ctype.removesuffix("Credential")})
    elif ctype.endswith("Certification"):
        if not participant.jurisdiction:
            raise IssuanceRefused(f"{participant.did} has no jurisdiction in the directory")
        subject.update({"holderIdentifier": holder_identifier, "jurisdiction": participant.jurisdiction})
    subject.update({k: v for k, v in definition.claims.items() if k != "id"})
    return subject


def build_credential(
    *,
    credential_id: str,
    issuer: str,
    definition: CredentialDefinition,
    participant: ParticipantRecord,
    authority_name: str,
    profile: str,
    issued_at: datetime,
    valid_until: datetime,
    status_list_url: str,
    status_index: int,
) -> dict[str, Any]:
    """The unsigned credential in the chosen profile, pointing at its revocation bit."""
    subject = subject_claims(definition, participant, authority_name)
    types = ["VerifiableCredential", definition.credential_type]
    if profile == "vc20":
        return {
            "@context": [VC_V2_CONTEXT, CATENAX_CONTEXT],
            "id": credential_id,
            "type": types,
            "issuer": issuer,
            "validFrom": format_datetime(issued_at),
            "validUntil": format_datetime(valid_until),
            "credentialSubject": subject,
            "credentialStatus": status_entry(status_list_url, status_index, kind="BitstringStatusList"),
        }
    return {
        "@context": [VC_V1_CONTEXT, CATENAX_CONTEXT, STATUS_LIST_2021_CONTEXT],
        "id": credential_id,
        "type": types,
        "issuer": issuer,
        "issuanceDate": format_datetime(issued_at),
        "expirationDate": format_datetime(valid_until),
        "credentialSubject": subject,
        "credentialStatus": status_entry(status_list_url, status_index, kind="StatusList2021"),
    }


def validity(definition: CredentialDefinition, default_days: int, now: datetime) -> datetime:
    """When a credential issued ``now`` under ``definition`` stops being valid."""
    return now + timedelta(days=definition.validity_days or default_days)


_REQUIRED_BY_TYPE: dict[str, list[str]] = {
    "MembershipCredential": ["id", "holderIdentifier", "memberOf"],
    "BusinessPartnerCredential": ["id", "holderIdentifier", "bpn"],
    "BpnCredential": ["id", "holderIdentifier", "bpn"],
}


def subject_schema(definition: CredentialDefinition) -> dict[str, Any]:
    """A JSON Schema for the ``credentialSubject`` of ``definition`` (what ``credentialSchema`` points to)."""
    ctype = definition.credential_type
    required = list(_REQUIRED_BY_TYPE.get(ctype, ["id"]))
    if ctype in FRAMEWORK_TYPES:
        required += ["holderIdentifier", "group", "useCase"]
    elif ctype.endswith("Certification"):
        required += ["holderIdentifier", "jurisdiction"]
    required += [k for k in definition.claims if k not in required]
    properties: dict[str, Any] = {name: {"type": "string"} for name in required}
    properties["id"] = {"type": "string", "pattern": "^did:"}
    if "jurisdiction" in properties:
        properties["jurisdiction"] = {"type": "string", "pattern": "^[A-Z]{2}$"}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": f"{ctype} credentialSubject",
        "type": "object",
        "required": required,
        "properties": properties,
    }


def credential_object(definition: CredentialDefinition, default_profile: str, base_url: str) -> dict[str, Any]:
    """The DCP ``CredentialObject`` advertising ``definition`` in the issuer metadata."""
    profile = definition.profile or default_profile
    return {
        "id": definition.id,
        "type": "CredentialObject",
        "credentialType": definition.credential_type,
        "credentialSchema": f"{base_url}/schemas/{definition.id}.json",
        "offerReason": "issuance",
        "bindingMethods": ["did:web"],
        "profile": "vc20-bssl/jwt" if profile == "vc20" else "vc11-sl2021/jwt",
    }
