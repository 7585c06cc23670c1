"""The connector's policy adapter: what each decision point hands the engine."""

from __future__ import annotations

from pathlib import Path

from connector.policy_gate import RETENTION, agreement_facts, decide, promised_retention
from policies import load_policy_file

LIBRARY = Path(__file__).resolve().parents[2] / "policies" / "library"


def test_the_delete_duty_deadline_is_the_promised_retention() -> None:
    assert promised_retention(load_policy_file(LIBRARY / "important-certified.ttl")) == "P90D"
    assert promised_retention(load_policy_file(LIBRARY / "general-open.ttl")) is None


def test_agreement_facts_add_the_retention_without_overriding_a_stated_one() -> None:
    policy = load_policy_file(LIBRARY / "important-certified.ttl")
    assert agreement_facts(policy, {"spatial": "DE"}) == {"spatial": "DE", RETENTION: "P90D"}
    assert agreement_facts(policy, {RETENTION: "P30D"})[RETENTION] == "P30D"


def test_asset_facts_and_deferral_reach_the_engine() -> None:
    policy = load_policy_file(LIBRARY / "carbon-footprint-purpose.ttl")
    target = next(t.iri for r in policy.rules for t in r.targets)
    membership = {"type": ["VerifiableCredential", "MembershipCredential"], "issuer": "did:web:authority",
                  "credentialSubject": {"id": "did:web:consumer", "holderIdentifier": "BPNL000000000002"}}
    common = {"target": target, "assignee": "did:web:consumer", "assigner": "urn:pactum:provider",
              "credentials": [membership]}
    without_asset = decide(policy, **common, defer=("purpose",))
    with_asset = decide(policy, **common, asset={"xb:dataClass": "general", "dataClass": "general"},
                        defer=("purpose",))
    assert not without_asset.permitted and "dataClass" in without_asset.reason
    assert with_asset.permitted, with_asset.reason
    assert not decide(policy, **common, asset={"xb:dataClass": "general"}, purpose="marketing").permitted
