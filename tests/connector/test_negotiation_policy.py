"""Offer matching and contract decisions as the negotiation uses them (policy gate over the real engine)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from connector.negotiation import offers_match
from connector.policy_gate import decide, parse_offer, policy_hash, policy_target, with_type

MEMBERSHIP = {"leftOperand": "https://w3id.org/catenax/policy/Membership", "operator": "eq", "rightOperand": "active"}
OFFER: dict[str, Any] = {"@id": "urn:offer:1", "@type": "Offer", "assigner": "did:web:provider.example",
                         "permission": [{"action": "use", "constraint": [MEMBERSHIP]}]}


def membership_vc() -> dict[str, Any]:
    now = datetime.now(UTC)
    return {"@context": ["https://www.w3.org/ns/credentials/v2"], "type": ["VerifiableCredential",
                                                                        "MembershipCredential"],
            "issuer": "did:web:authority.example", "validFrom": (now - timedelta(days=1)).isoformat(),
            "validUntil": (now + timedelta(days=1)).isoformat(),
            "credentialSubject": {"id": "did:web:consumer.example", "holderIdentifier": "BPNL1"}}


def test_the_same_offer_matches_regardless_of_key_order() -> None:
    reordered = {"permission": OFFER["permission"], "@type": "Offer", "@id": "urn:offer:1"}
    assert offers_match(reordered, OFFER, "asset-1")


def test_another_id_or_a_weaker_policy_does_not_match() -> None:
    assert not offers_match({**OFFER, "@id": "urn:offer:2"}, OFFER, "asset-1")
    assert not offers_match({**OFFER, "permission": [{"action": "use"}]}, OFFER, "asset-1")


def test_contract_decision_uses_verified_credentials_and_explains_a_denial() -> None:
    policy = parse_offer({**OFFER, "target": "asset-1"})
    target = policy_target(policy, "asset-1")
    denied = decide(policy, target=target, assignee="did:web:consumer.example", assigner="did:web:provider.example")
    assert not denied.permitted and denied.reason
    permitted = decide(policy, target=target, assignee="did:web:consumer.example",
                       assigner="did:web:provider.example", credentials=[membership_vc()])
    assert permitted.permitted


def test_agreement_hash_is_stable_and_depends_on_the_assignee() -> None:
    base = with_type({**OFFER, "target": "asset-1"}, "Agreement", **{"@id": "urn:agreement:1",
                                                                       "assignee": "did:web:a"})
    again = with_type({**OFFER, "target": "asset-1"}, "Agreement", **{"@id": "urn:agreement:2",
                                                                        "assignee": "did:web:a"})
    other = with_type({**OFFER, "target": "asset-1"}, "Agreement", **{"@id": "urn:agreement:1",
                                                                        "assignee": "did:web:b"})
    assert policy_hash(parse_offer(base)) == policy_hash(parse_offer(again))
    assert policy_hash(parse_offer(base)) != policy_hash(parse_offer(other))
    assert parse_offer(base) is parse_offer(dict(reversed(list(base.items()))))  # one parse for equal documents
