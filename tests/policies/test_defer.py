"""evaluate(..., defer=...): use-time conditions left undecided at negotiation, decided everywhere else."""

from __future__ import annotations

from datetime import UTC, datetime

from policies import Request, StateOfWorld, evaluate, parse_policy

POLICY = """
@prefix odrl: <http://www.w3.org/ns/odrl/2/> .
@prefix xsd: <http://www.w3.org/2001/XMLSchema#> .
<urn:p> a odrl:Offer ; odrl:uid <urn:p> ; odrl:assigner <urn:provider> ;
  odrl:permission [ odrl:target <urn:asset> ; odrl:action odrl:use ;
    odrl:constraint [ odrl:leftOperand odrl:purpose ; odrl:operator odrl:eq ; odrl:rightOperand "pcf-calculation" ] ,
                    [ odrl:leftOperand odrl:count ; odrl:operator odrl:lteq ; odrl:rightOperand "3"^^xsd:integer ] ,
                    [ odrl:leftOperand odrl:spatial ; odrl:operator odrl:eq ; odrl:rightOperand "DE" ] ] .
"""
NOW = datetime(2026, 11, 23, tzinfo=UTC)


def run(facts: dict[str, object], **kw: object) -> object:
    policy = parse_policy(POLICY, format="turtle")
    return evaluate(policy, Request(action="use", target="urn:asset"), StateOfWorld(now=NOW, facts=facts), **kw)


def test_without_defer_missing_use_time_facts_deny() -> None:
    report = run({"spatial": "DE"})
    assert report.decision == "deny"


def test_deferred_operands_count_as_satisfied_and_are_reported_as_deferred() -> None:
    report = run({"spatial": "DE"}, defer=("purpose", "http://www.w3.org/ns/odrl/2/count"))
    assert report.decision == "permit"
    states = {c["leftOperand"]: c["state"] for c in report.to_json()["rules"][0]["constraints"]}
    assert states == {"purpose": "deferred", "count": "deferred", "spatial": "satisfied"}
    assert "deferred (enforced when the data is used)" in report.explain()


def test_defer_does_not_hide_a_failing_condition_that_is_not_deferred() -> None:
    assert run({"spatial": "US"}, defer=("purpose", "count")).decision == "deny"


def test_a_wrong_value_of_a_deferred_operand_is_still_ignored_only_when_deferred() -> None:
    facts = {"spatial": "DE", "purpose": "marketing", "count": 1}
    assert run(facts, defer=("purpose",)).decision == "permit"
    assert run(facts).decision == "deny"
