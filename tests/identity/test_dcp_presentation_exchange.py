"""The Presentation Exchange subset: JSONPath steps, filters, optional fields, and what is refused with 501."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from identity.credentials.jwt import issue_vc_jwt
from identity.dcp.errors import MessageInvalid
from identity.dcp.presentation_exchange import DefinitionUnsupported, compile_definition, parse_path
from identity.wallet import HeldCredential, Wallet, describe_credential
from tests.identity.test_dcp_support import make_wallet


@pytest.fixture(scope="module")
def credentials(tmp_path_factory: pytest.TempPathFactory) -> dict[str, HeldCredential]:
    issuer: Wallet = make_wallet(Path(tmp_path_factory.mktemp("pe")) / "issuer")
    now = datetime.now(UTC)

    def make(ctype: str, profile: str, subject: dict[str, Any]) -> HeldCredential:
        if profile == "vc20":
            cred = {"@context": ["https://www.w3.org/ns/credentials/v2"], "validFrom": now.isoformat()}
        else:
            cred = {"@context": ["https://www.w3.org/2018/credentials/v1"], "issuanceDate": now.isoformat(),
                    "expirationDate": (now + timedelta(days=1)).isoformat()}
        cred.update({"id": f"urn:uuid:{ctype}", "type": ["VerifiableCredential", ctype], "issuer": issuer.did,
                     "credentialSubject": {"id": "did:web:h.example.com", **subject}})
        return describe_credential(issue_vc_jwt(cred, issuer.key, issuer.kid, profile))

    return {
        "member": make("MembershipCredential", "vc20", {"memberOf": "Space"}),
        "bpn": make("BusinessPartnerCredential", "vc11", {"bpn": "BPNL000000000001"}),
        "cert": make("DataProtectionCertification", "vc20", {"jurisdiction": "DE"}),
    }


def _definition(*fields: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"id": "pd", "input_descriptors": [{"id": "d", "constraints": {"fields": list(fields)}}], **extra}


def _selected(definition: dict[str, Any], credentials: dict[str, HeldCredential]) -> list[str]:
    hits = compile_definition(definition).select(list(credentials.values())).get("d", [])
    return sorted(c.types[1] for c in hits)


def test_type_filters_on_both_profiles(credentials: dict[str, HeldCredential]) -> None:
    by_type = _definition({"path": ["$.type"], "filter": {"type": "string", "pattern": "^BusinessPartner"}})
    assert _selected(by_type, credentials) == ["BusinessPartnerCredential"]
    vc_path = _definition({"path": ["$.vc.type"], "filter": {"type": "array",
                                                             "contains": {"const": "MembershipCredential"}}})
    assert _selected(vc_path, credentials) == ["MembershipCredential"]


def test_subject_fields_alternative_paths_and_optional(credentials: dict[str, HeldCredential]) -> None:
    jurisdiction = _definition({"path": ["$.credentialSubject.jurisdiction", "$.vc.credentialSubject.jurisdiction"],
                                "filter": {"type": "string", "enum": ["DE", "FR"]}})
    assert _selected(jurisdiction, credentials) == ["DataProtectionCertification"]
    assert _selected(_definition({"path": ["$['credentialSubject']['bpn']"]}), credentials) == [
        "BusinessPartnerCredential"]
    optional = _definition({"path": ["$.credentialSubject.memberOf"]},
                           {"path": ["$.credentialSubject.nickname"], "optional": True})
    assert _selected(optional, credentials) == ["MembershipCredential"]
    assert _selected(_definition({"path": ["$.type[*]"], "filter": {"const": "MembershipCredential"}}),
                     credentials) == ["MembershipCredential"]
    assert _selected(_definition({"path": ["$.credentialSubject.none"]}), credentials) == []


@pytest.mark.parametrize("definition", [
    _definition({"path": ["$.type"]}, ) | {"submission_requirements": [{"rule": "all", "from": "A"}]},
    _definition({"path": ["$.type"]}) | {"frame": {}},
    _definition({"path": ["$..type"]}),
    _definition({"path": ["$.credentialSubject[?(@.bpn)]"]}),
    _definition({"path": ["$.credentialSubject.age"], "predicate": "required", "filter": {"minimum": 18}}),
    _definition({"path": ["$.type"]}) | {"format": {"ldp_vp": {"proof_type": ["Ed25519Signature2018"]}}},
    {"id": "pd", "input_descriptors": [{"id": "d", "constraints": {"limit_disclosure": "required",
                                                                   "fields": [{"path": ["$.type"]}]}}]},
    {"id": "pd", "input_descriptors": [{"id": "d"}]},
])
def test_unsupported_features_are_refused(definition: dict[str, Any]) -> None:
    with pytest.raises(DefinitionUnsupported) as err:
        compile_definition(definition)
    assert err.value.status == 501


def test_bad_filter_and_empty_definition() -> None:
    with pytest.raises(MessageInvalid):
        compile_definition(_definition({"path": ["$.type"], "filter": {"type": "no-such-type"}}))
    with pytest.raises(MessageInvalid):
        compile_definition({"id": "pd", "input_descriptors": []})


def test_path_parser() -> None:
    assert parse_path("$.a['b c'][2][*]") == ["a", "b c", 2, None]
    assert parse_path("$") == []
