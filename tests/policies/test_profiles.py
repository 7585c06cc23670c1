"""The profile plug-ins: cross-border (xb) and Catena-X, and the registry's rules for unknown terms."""

from __future__ import annotations

import json
from typing import Any

import pytest

from policies import PolicyParseError, evaluate, parse_policy
from policies.jsonld import ContextNotPinnedError
from policies.profiles import registry
from policies.profiles.registry import UnknownTermError
from tests.policies.conformance_support import DATA
from tests.policies.helpers import one_permission, request, state, ttl

CX_SAMPLES = DATA / "catenax-cx-odrl-profile" / "schema" / "samples"
VALID = {"validFrom": "2024-01-01T00:00:00Z", "validUntil": "2030-01-01T00:00:00Z", "issuer": "did:web:issuer"}


def cred(kind: str, **subject: Any) -> dict[str, Any]:
    return {"type": ["VerifiableCredential", kind], "credentialSubject": {"id": "did:web:consumer", **subject},
            **VALID}


# ------------------------------------------------------------------------------------------- registry


def test_registry_knows_both_profiles() -> None:
    assert registry.get("https://w3id.org/pactum/xborder/v1").prefix == "xb"
    assert registry.get("https://w3id.org/catenax/policy/").prefix == "cx-policy"
    with pytest.raises(UnknownTermError) as err:
        registry.get("https://example.org/nope")
    assert err.value.term == "https://example.org/nope"
    assert registry.left_operand("https://w3id.org/pactum/xborder/v1#jurisdiction") is not None
    assert registry.left_operand("https://example.org/x") is None


def test_strict_compile_raises_on_unknown_terms() -> None:
    from policies import compile_policy

    policy = one_permission('odrl:leftOperand ex:unknown ; odrl:operator odrl:eq ; odrl:rightOperand "x"')
    with pytest.raises(UnknownTermError, match="http://example.org/unknown"):
        compile_policy(policy, strict=True)


# ------------------------------------------------------------------------------------------- xborder

XB = "https://w3id.org/pactum/xborder/v1#"


@pytest.mark.parametrize("country, expected", [("DE", "permit"), ("NO", "permit"), ("JP", "permit"),
                                               ("US", "deny"), ("CN", "deny")])
def test_jurisdiction_groups(country: str, expected: str) -> None:
    policy = one_permission('odrl:leftOperand xb:jurisdiction ; odrl:operator odrl:isPartOf ;'
                            ' odrl:rightOperand "adequate"')
    assert evaluate(policy, request(), state(facts={"xb:jurisdiction": country})).decision == expected


def test_jurisdiction_isanyof_group_names_and_claims() -> None:
    policy = one_permission('odrl:leftOperand xb:jurisdiction ; odrl:operator odrl:isAnyOf ;'
                            ' odrl:rightOperand "EEA", "CH"')
    assert evaluate(policy, request(), state(facts={"jurisdiction": "is"})).decision == "permit"  # Iceland
    assert evaluate(policy, request(), state(facts={"jurisdiction": "CH"})).decision == "permit"
    assert evaluate(policy, request(), state(facts={"jurisdiction": "GB"})).decision == "deny"
    by_claim = state(credentials=[cred("LegalEntityCredential", jurisdiction="FR")])
    assert evaluate(policy, request(), by_claim).decision == "permit"


def test_data_class_is_ordered() -> None:
    policy = one_permission('odrl:leftOperand xb:dataClass ; odrl:operator odrl:lteq ; odrl:rightOperand "important"')
    assert evaluate(policy, request(), state(asset={"dataClass": "general"})).decision == "permit"
    assert evaluate(policy, request(), state(asset={"dataClass": "important"})).decision == "permit"
    assert evaluate(policy, request(), state(asset={"dataClass": "core"})).decision == "deny"
    assert evaluate(policy, request(), state(asset={"dataClass": "secret"})).decision == "deny"


def test_retention_duration() -> None:
    policy = one_permission('odrl:leftOperand xb:retention ; odrl:operator odrl:lteq ;'
                            ' odrl:rightOperand "P90D"^^xsd:duration')
    assert evaluate(policy, request(extra={"xb:retention": "P30D"}), state()).decision == "permit"
    assert evaluate(policy, request(extra={"xb:retention": "P1Y"}), state()).decision == "deny"


def test_negative_list_keeps_listed_categories_at_home() -> None:
    policy = ttl("""
ex:p a odrl:Set ; odrl:profile <https://w3id.org/pactum/xborder/v1> ;
  odrl:permission [ odrl:action odrl:use ] ;
  odrl:prohibition [ odrl:action odrl:use ;
     odrl:constraint [ odrl:leftOperand xb:negativeList ; odrl:operator odrl:isAnyOf ;
                       odrl:rightOperand "genomic", "core" ] ] .
""")
    genomic_de = {"category": "genomic", "origin": "DE", "dataClass": "important"}
    assert evaluate(policy, request(), state(asset=genomic_de, facts={"xb:jurisdiction": "DE"})).decision == "permit"
    leaving = evaluate(policy, request(), state(asset=genomic_de, facts={"xb:jurisdiction": "US"}))
    assert leaving.decision == "deny" and "prohibition[1]" in leaving.reasons[0]
    eu_origin = {"category": "genomic", "origin": "EU"}
    assert evaluate(policy, request(), state(asset=eu_origin, facts={"xb:jurisdiction": "FR"})).decision == "permit"
    other = {"category": "weather", "origin": "DE", "dataClass": "general"}
    assert evaluate(policy, request(), state(asset=other, facts={"xb:jurisdiction": "US"})).decision == "permit"
    core = {"origin": "DE", "dataClass": "core"}
    assert evaluate(policy, request(), state(asset=core, facts={"xb:jurisdiction": "US"})).decision == "deny"
    unknown_recipient = evaluate(policy, request(), state(asset=genomic_de))
    assert unknown_recipient.decision == "deny" and "cannot be ruled out" in unknown_recipient.reasons[0]


def test_certification_from_credentials() -> None:
    policy = one_permission('odrl:leftOperand xb:certification ; odrl:operator odrl:isAllOf ;'
                            ' odrl:rightOperand "ISO27001", "TISAX"')
    both = state(credentials=[cred("ISO27001"), cred("TISAX")])
    assert evaluate(policy, request(), both).decision == "permit"
    assert evaluate(policy, request(), state(credentials=[cred("ISO27001")])).decision == "deny"
    by_fact = state(credentials=[cred("ISO27001")], facts={"xb:certification": ["TISAX"]})
    assert evaluate(policy, request(), by_fact).decision == "permit"


# ------------------------------------------------------------------------------------------- Catena-X


def test_catenax_access_policy_sample() -> None:
    policy = parse_policy((CX_SAMPLES / "access-policy.json").read_text(encoding="utf-8"))
    member = cred("MembershipCredential", holderIdentifier="BPNL012345678910")
    ok = evaluate(policy, request("https://w3id.org/catenax/2025/9/policy/access"), state(credentials=[member]))
    assert ok.decision == "permit", ok.explain()
    other_bpn = cred("MembershipCredential", holderIdentifier="BPNL000000000001")
    assert evaluate(policy, request("https://w3id.org/catenax/2025/9/policy/access"),
                    state(credentials=[other_bpn])).decision == "deny"
    expired = dict(member, validUntil="2020-01-01T00:00:00Z")
    report = evaluate(policy, request("https://w3id.org/catenax/2025/9/policy/access"), state(credentials=[expired]))
    assert report.decision == "deny"
    assert "inactive" in report.explain()  # Membership value without a valid MembershipCredential


def test_catenax_usage_policy_sample() -> None:
    policy = parse_policy((CX_SAMPLES / "usage-policy-sample.json").read_text(encoding="utf-8"))
    governance = cred("DataExchangeGovernanceCredential", holderIdentifier="BPNL1", useCase="DataExchangeGovernance",
                      contractVersion="1.0")
    facts = {"DataUsageEndDefinition": "cx.dataUsageEnd.unlimited", "UsageRestriction": []}
    good = evaluate(policy, request(purpose="cx.pcf.base:1"), state(credentials=[governance], facts=facts))
    assert good.decision == "permit", good.explain()
    wrong_purpose = evaluate(policy, request(purpose="cx.marketing:1"), state(credentials=[governance], facts=facts))
    assert wrong_purpose.decision == "deny"
    no_framework = evaluate(policy, request(purpose="cx.pcf.base:1"), state(facts=facts))
    assert no_framework.decision == "deny"
    restricted = dict(facts, UsageRestriction=["cx.thirdParty.forbidden:1", "cx.manipulation.forbidden:1"])
    assert evaluate(policy, request(purpose="cx.pcf.base:1"),
                    state(credentials=[governance], facts=restricted)).decision == "deny"


def test_catenax_v1_namespace_and_business_partner_group() -> None:
    policy = parse_policy(json.dumps({
        "@context": ["http://www.w3.org/ns/odrl.jsonld", "https://w3id.org/catenax/policy/v1.0.0"],
        "@id": "urn:p", "@type": "Offer",
        "permission": [{"action": "use", "constraint": [
            {"leftOperand": "FrameworkAgreement.traceability", "operator": "eq", "rightOperand": "active"},
            {"leftOperand": "https://w3id.org/catenax/policy/BusinessPartnerGroup", "operator": "isAnyOf",
             "rightOperand": ["ecu-suppliers", "tier1"]}]}],
    }))
    trace = cred("TraceabilityCredential", holderIdentifier="BPNL1", contractVersion="1.0")
    st = state(credentials=[trace], facts={"BusinessPartnerGroup": ["tier1"]})
    assert evaluate(policy, request(), st).decision == "permit"
    st2 = state(credentials=[trace], facts={"BusinessPartnerGroup": ["tier2"]})
    assert evaluate(policy, request(), st2).decision == "deny"


def test_catenax_samples_with_unknown_terms_or_contexts_are_refused() -> None:
    comprehensive = parse_policy((CX_SAMPLES / "usage-policy-comprehensive-sample.json").read_text("utf-8"))
    report = evaluate(comprehensive, request(), state())
    assert report.decision == "deny" and "WarrantyDurationMonths" in report.reasons[0]
    tractusx = DATA / "tractusx-profiles-cx-policy" / "cx" / "policy" / "samples" / "policy.sample.json"
    with pytest.raises(ContextNotPinnedError, match="https://w3id.org/tractusx/policy/v1.0.0"):
        parse_policy(tractusx.read_text("utf-8"))
    with pytest.raises(PolicyParseError, match="uid"):
        parse_policy((DATA / "catenax-cx-odrl-profile" / "example_usage_policy.json").read_text("utf-8"))
