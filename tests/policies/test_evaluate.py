"""The decision procedure: operators, typed values, logic, conflicts, duties, unknown terms, reports."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal

import pytest
import rdflib

from policies import Event, StateOfWorld, evaluate
from policies.errors import PolicyError
from tests.policies.helpers import NOW, one_permission, request, state, ttl


def decide(constraint: str, **facts: object) -> str:
    return evaluate(one_permission(constraint), request(), state(facts=facts)).decision


@pytest.mark.parametrize("op, right, value, expected", [
    ("eq", '"DE"', "DE", "permit"), ("eq", '"DE"', "FR", "deny"),
    ("neq", '"DE"', "FR", "permit"), ("neq", '"DE"', "DE", "deny"),
    ("lt", '"10"^^xsd:integer', 9, "permit"), ("lt", '"10"^^xsd:integer', 10, "deny"),
    ("lteq", '"10"^^xsd:integer', 10, "permit"), ("lteq", '"10"^^xsd:integer', 11, "deny"),
    ("gt", '"2.5"^^xsd:decimal', Decimal("2.6"), "permit"), ("gt", '"2.5"^^xsd:decimal', 2.5, "deny"),
    ("gteq", '"2.5"^^xsd:decimal', "2.5", "permit"), ("gteq", '"2.5"^^xsd:decimal', 1, "deny"),
])
def test_comparison_operators(op: str, right: str, value: object, expected: str) -> None:
    left = "odrl:spatial" if right.startswith('"DE"') else "odrl:percentage"
    key = left.split(":")[1]
    assert decide(f"odrl:leftOperand {left} ; odrl:operator odrl:{op} ; odrl:rightOperand {right}",
                  **{key: value}) == expected


@pytest.mark.parametrize("op, values, fact, expected", [
    ("isAnyOf", '"research", "education"', "research", "permit"),
    ("isAnyOf", '"research", "education"', "marketing", "deny"),
    ("isNoneOf", '"marketing", "ads"', "research", "permit"),
    ("isNoneOf", '"marketing", "ads"', "ads", "deny"),
    ("isAllOf", '"a", "b"', ["a", "b", "c"], "permit"),
    ("isAllOf", '"a", "b"', ["a"], "deny"),
    ("hasPart", '"b"', ["a", "b"], "permit"),
    ("hasPart", '"z"', ["a", "b"], "deny"),
])
def test_set_operators(op: str, values: str, fact: object, expected: str) -> None:
    assert decide(f"odrl:leftOperand odrl:purpose ; odrl:operator odrl:{op} ; odrl:rightOperand {values}",
                  purpose=fact) == expected


def test_rdf_list_right_operand() -> None:
    c = 'odrl:leftOperand odrl:purpose ; odrl:operator odrl:isAnyOf ; odrl:rightOperand ( "a" "b" )'
    assert decide(c, purpose="b") == "permit"
    assert decide(c, purpose="c") == "deny"


def test_ispartof_and_isa_use_memberships() -> None:
    policy = one_permission("odrl:leftOperand odrl:product ; odrl:operator odrl:isPartOf ; odrl:rightOperand ex:cars")
    st = state(facts={"product": "http://example.org/golf"},
               memberships={"http://example.org/golf": ["http://example.org/vw"],
                            "http://example.org/vw": ["http://example.org/cars"]})
    assert evaluate(policy, request(), st).decision == "permit"
    policy2 = one_permission("odrl:leftOperand odrl:product ; odrl:operator odrl:isA ; odrl:rightOperand ex:cars")
    assert evaluate(policy2, request(), st).decision == "permit"
    assert evaluate(policy2, request(), state(facts={"product": "http://example.org/bike"})).decision == "deny"


def test_datetime_date_and_duration_values() -> None:
    before = 'odrl:leftOperand odrl:dateTime ; odrl:operator odrl:lt ; odrl:rightOperand "2025-06-01"^^xsd:date'
    assert decide(before) == "permit"
    after = ('odrl:leftOperand odrl:dateTime ; odrl:operator odrl:gt ;'
             ' odrl:rightOperand "2025-06-01T00:00:00Z"^^xsd:dateTime')
    assert decide(after) == "deny"
    elapsed = 'odrl:leftOperand odrl:elapsedTime ; odrl:operator odrl:lteq ; odrl:rightOperand "P30D"^^xsd:duration'
    policy = one_permission(elapsed)
    assert evaluate(policy, request(), state(agreement_time=NOW - timedelta(days=10))).decision == "permit"
    assert evaluate(policy, request(), state(agreement_time=NOW - timedelta(days=31))).decision == "deny"
    # no agreement time and no fact: the value is missing, the permission cannot be granted
    report = evaluate(policy, request(), state())
    assert report.decision == "deny" and "no value for elapsedTime" in report.reasons[0]


def test_data_type_attribute_types_a_plain_literal() -> None:
    c = ('odrl:leftOperand odrl:dateTime ; odrl:operator odrl:lt ; odrl:rightOperand "2026-01-01T00:00:00Z" ;'
         " odrl:dataType xsd:dateTime")
    assert decide(c) == "permit"


def test_right_operand_reference() -> None:
    c = "odrl:leftOperand odrl:spatial ; odrl:operator odrl:eq ; odrl:rightOperandReference ex:homeCountry"
    assert decide(c, spatial="DE", **{"http://example.org/homeCountry": "DE"}) == "permit"
    assert decide(c, spatial="DE", **{"http://example.org/homeCountry": "FR"}) == "deny"


@pytest.mark.parametrize("op, a, b, expected", [
    ("and", 1, 1, "permit"), ("and", 1, 0, "deny"),
    ("or", 0, 1, "permit"), ("or", 0, 0, "deny"),
    ("xone", 1, 0, "permit"), ("xone", 1, 1, "deny"),
    ("andSequence", 1, 1, "permit"), ("andSequence", 0, 1, "deny"),
])
def test_logical_constraints(op: str, a: int, b: int, expected: str) -> None:
    lst = "( {} {} )" if op == "andSequence" else "{}, {}"
    c1 = '[ odrl:leftOperand odrl:purpose ; odrl:operator odrl:eq ; odrl:rightOperand "{}" ]'.format(
        "x" if a else "never")
    c2 = '[ odrl:leftOperand odrl:purpose ; odrl:operator odrl:neq ; odrl:rightOperand "{}" ]'.format(
        "y" if b else "x")
    policy = ttl(f"""
ex:p a odrl:Set ; odrl:permission [ odrl:action odrl:use ; odrl:constraint [ odrl:{op} {lst.format(c1, c2)} ] ] .
""")
    assert evaluate(policy, request(purpose="x"), state()).decision == expected


def test_action_hierarchy_from_the_vocabulary() -> None:
    policy = ttl("ex:p a odrl:Set ; odrl:permission [ odrl:action odrl:use ] .")
    assert evaluate(policy, request("read"), state()).decision == "permit"
    assert evaluate(policy, request("http://www.w3.org/ns/odrl/2/display"), state()).decision == "permit"
    assert evaluate(policy, request("sell"), state()).decision == "deny"  # sell is a transfer, not a use
    narrow = ttl("ex:p a odrl:Set ; odrl:permission [ odrl:action odrl:read ] .")
    assert evaluate(narrow, request("use"), state()).decision == "deny"


def test_refined_action() -> None:
    policy = ttl("""
ex:p a odrl:Set ; odrl:permission [ odrl:action [ rdf:value odrl:print ;
    odrl:refinement [ odrl:leftOperand odrl:resolution ; odrl:operator odrl:lteq ; odrl:rightOperand 1200 ] ] ] .
""")
    assert evaluate(policy, request("print", extra={"resolution": 600}), state()).decision == "permit"
    report = evaluate(policy, request("print", extra={"resolution": 2400}), state())
    assert report.decision == "deny" and report.rules[0].premises["action"] is False


def test_targets_parties_and_collections() -> None:
    policy = ttl("""
ex:p a odrl:Set ; odrl:permission [ odrl:action odrl:read ; odrl:target ex:reports ; odrl:assignee ex:staff ] .
ex:reports a odrl:AssetCollection . ex:staff a odrl:PartyCollection .
""")
    members = {"http://example.org/q1": ["http://example.org/reports"],
               "http://example.org/alice": ["http://example.org/staff"]}
    ok = evaluate(policy, request("read", target="http://example.org/q1"), state(memberships=members))
    assert ok.decision == "permit"
    other = evaluate(policy, request("read", target="http://example.org/secret"), state(memberships=members))
    assert other.decision == "deny" and other.rules[0].premises["target"] is False
    stranger = evaluate(policy, request("read", target="http://example.org/q1", assignee="http://example.org/eve"),
                        state(memberships=members))
    assert stranger.rules[0].premises["party"] is False
    anonymous = evaluate(policy, request("read", target="http://example.org/q1", assignee=None),
                         state(memberships=members))
    assert anonymous.decision == "deny"


def test_refined_asset_collection_matches_by_asset_facts() -> None:
    policy = ttl("""
ex:p a odrl:Set ; odrl:permission [ odrl:action odrl:read ;
    odrl:target [ a odrl:AssetCollection ;
        odrl:refinement [ odrl:leftOperand xb:dataClass ; odrl:operator odrl:eq ; odrl:rightOperand "general" ] ] ] .
""")
    assert evaluate(policy, request("read"), state(asset={"dataClass": "general"})).decision == "permit"
    assert evaluate(policy, request("read"), state(asset={"dataClass": "core"})).decision == "deny"


CONFLICT = """
ex:p a odrl:Set ; {conflict}
    odrl:permission [ odrl:action odrl:use ] ;
    odrl:prohibition [ odrl:action odrl:read ] .
"""


@pytest.mark.parametrize("conflict, expected", [
    ("odrl:conflict odrl:perm ;", "permit"), ("odrl:conflict odrl:prohibit ;", "deny"), ("", "deny"),
])
def test_conflict_strategies(conflict: str, expected: str) -> None:
    policy = ttl(CONFLICT.format(conflict=conflict))
    report = evaluate(policy, request("read"), state())
    assert report.decision == expected
    if not conflict:
        assert "void" in report.reasons[0]
    assert evaluate(policy, request("print"), state()).decision == "permit"  # no conflict for print


def test_prohibition_only_policy_fails_closed() -> None:
    policy = ttl("ex:p a odrl:Set ; odrl:prohibition [ odrl:action odrl:distribute ] .")
    report = evaluate(policy, request("read"), state())
    assert report.decision == "deny"
    assert report.rules[0].activation == "inactive"
    assert report.reasons == ["no rule of the policy covers this action"]


def test_missing_fact_in_prohibition_denies() -> None:
    policy = ttl("""
ex:p a odrl:Set ; odrl:permission [ odrl:action odrl:use ] ;
  odrl:prohibition [ odrl:action odrl:use ;
     odrl:constraint [ odrl:leftOperand odrl:spatial ; odrl:operator odrl:eq ; odrl:rightOperand "KP" ] ] .
""")
    assert evaluate(policy, request(), state(facts={"spatial": "DE"})).decision == "permit"
    assert evaluate(policy, request(), state(facts={"spatial": "KP"})).decision == "deny"
    unknown = evaluate(policy, request(), state())
    assert unknown.decision == "deny" and "cannot be ruled out" in unknown.reasons[0]


def test_unknown_left_operand_is_never_true() -> None:
    policy = one_permission("odrl:leftOperand ex:moonPhase ; odrl:operator odrl:eq ; odrl:rightOperand \"full\"")
    report = evaluate(policy, request(), state(facts={"http://example.org/moonPhase": "full"}))
    assert report.decision == "deny"
    assert "http://example.org/moonPhase" in report.reasons[0]
    assert report.rules[0].activation == "indeterminate"
    assert "moonPhase" in report.explain()
    assert report.to_json()["rules"][0]["notUnderstood"] == ["http://example.org/moonPhase"]


def test_unknown_operator_and_profile() -> None:
    policy = one_permission("odrl:leftOperand odrl:purpose ; odrl:operator ex:resembles ; odrl:rightOperand \"x\"")
    assert "resembles" in evaluate(policy, request(purpose="x"), state()).reasons[0]
    profiled = ttl("ex:p a odrl:Set ; odrl:profile <https://example.org/secret-profile> ;"
                   " odrl:permission [ odrl:action odrl:use ] .")
    report = evaluate(profiled, request(), state())
    assert report.decision == "deny" and "secret-profile" in report.reasons[0]


def test_missing_parent_policy_denies() -> None:
    policy = ttl("ex:p a odrl:Set ; odrl:inheritFrom ex:gone ; odrl:permission [ odrl:action odrl:use ] .")
    report = evaluate(policy, request(), state())
    assert report.decision == "deny" and "ex" in report.reasons[0] and "inheritFrom" in report.reasons[0]


DUTY_POLICY = """
ex:p a odrl:Agreement ; odrl:permission [ odrl:action odrl:use ; odrl:target ex:asset ;
    odrl:duty ex:delete, ex:inform ] .
ex:delete odrl:action [ rdf:value odrl:delete ;
    odrl:refinement [ odrl:leftOperand odrl:elapsedTime ; odrl:operator odrl:lteq ;
                      odrl:rightOperand "P90D"^^xsd:duration ] ] .
ex:inform odrl:action odrl:inform ; odrl:informedParty ex:provider .
"""


def test_duties_bind_with_parameters_and_states() -> None:
    policy = ttl(DUTY_POLICY)
    fresh = evaluate(policy, request(), state(agreement_time=NOW - timedelta(days=1)))
    assert fresh.decision == "permit"
    by_action = {d.action: d for d in fresh.duties}
    assert by_action["delete"].state == "unfulfilled"
    assert by_action["delete"].parameters == {"elapsedTime": "P90D"}
    assert by_action["inform"].parameters == {"informedParty": "http://example.org/provider"}
    assert by_action["delete"].uid == "http://example.org/delete"

    informed = evaluate(policy, request(), state(agreement_time=NOW - timedelta(days=1),
                                                 events=(Event(action="inform", time=NOW),)))
    assert {d.action: d.state for d in informed.duties}["inform"] == "fulfilled"

    late = evaluate(policy, request(), state(agreement_time=NOW - timedelta(days=91)))
    assert late.decision == "deny"
    assert {d.action: d.state for d in late.duties}["delete"] == "violated"
    assert "violated" in late.reasons[0]

    deleted = evaluate(policy, request(), state(agreement_time=NOW - timedelta(days=91), events=(
        Event(action="delete", time=NOW - timedelta(days=2)),)))
    assert {d.action: d.state for d in deleted.duties}["delete"] == "fulfilled"


def test_attested_violation_and_consequence() -> None:
    policy = ttl("""
ex:p a odrl:Agreement ; odrl:permission [ odrl:action odrl:use ; odrl:duty ex:pay ] .
ex:pay odrl:action odrl:compensate ; odrl:consequence ex:fine .
ex:fine odrl:action odrl:compensate .
""")
    violated = (Event(action="compensate", duty="http://example.org/pay", outcome="unperformed"),)
    report = evaluate(policy, request(), state(events=violated))
    assert report.decision == "deny"
    assert [c.uid for c in report.rules[0].duties[0].consequences] == ["http://example.org/fine"]
    assert any(d.uid == "http://example.org/fine" for d in report.duties)
    remedied = violated + (Event(action="compensate", duty="http://example.org/fine"),)
    assert evaluate(policy, request(), state(events=remedied)).decision == "permit"


def test_obligation_violation_denies() -> None:
    policy = ttl("""
ex:p a odrl:Agreement ; odrl:permission [ odrl:action odrl:use ] ;
  odrl:obligation [ odrl:action odrl:compensate ;
     odrl:constraint [ odrl:leftOperand odrl:dateTime ; odrl:operator odrl:lteq ;
                       odrl:rightOperand "2025-02-01T00:00:00Z"^^xsd:dateTime ] ] .
""")
    report = evaluate(policy, request(), state())
    assert report.decision == "deny" and "obligation" in report.reasons[0]
    paid = evaluate(policy, request(), state(events=(Event(action="compensate", time=NOW - timedelta(days=40)),)))
    assert paid.decision == "permit"
    assert [d.state for d in paid.duties] == ["fulfilled"]


def test_count_from_counters() -> None:
    policy = one_permission('odrl:leftOperand odrl:count ; odrl:operator odrl:lt ; odrl:rightOperand 3')
    assert evaluate(policy, request(), state(counters={"http://example.org/r": 2})).decision == "permit"
    assert evaluate(policy, request(), state(counters={"http://example.org/asset": 3})).decision == "deny"


def test_report_outputs() -> None:
    policy = one_permission('odrl:leftOperand odrl:purpose ; odrl:operator odrl:eq ; odrl:rightOperand "research"')
    report = evaluate(policy, request(purpose="research"), state())
    data = report.to_json()
    json.dumps(data)  # plain JSON
    rule = data["rules"][0]
    assert data["decision"] == "permit"
    assert (rule["id"], rule["kind"], rule["activation"]) == ("http://example.org/r", "permission", "active")
    c = rule["constraints"][0]
    assert (c["leftOperand"], c["operator"], c["rightOperand"], c["actual"], c["satisfied"]) == (
        "purpose", "eq", "research", "research", True)
    g = rdflib.Graph().parse(data=report.to_turtle(), format="turtle")
    R = rdflib.Namespace("https://w3id.org/force/compliance-report#")
    assert (None, R.activationState, R.Active) in g
    assert (None, R.satisfactionState, R.Satisfied) in g
    assert len(list(g.subjects(rdflib.RDF.type, R.PermissionReport))) == 1
    text = report.explain()
    assert text.startswith("PERMIT") and "purpose eq 'research': satisfied (actual 'research')" in text


def test_naive_now_is_rejected() -> None:
    with pytest.raises(PolicyError, match="timezone-aware"):
        StateOfWorld(now=NOW.replace(tzinfo=None))


def test_expired_credentials_are_ignored() -> None:
    policy = one_permission('odrl:leftOperand xb:certification ; odrl:operator odrl:hasPart ;'
                            ' odrl:rightOperand "ISO27001Credential"')
    cred = {"type": ["VerifiableCredential", "ISO27001Credential"], "issuer": "did:web:x",
            "validFrom": "2024-01-01T00:00:00Z", "validUntil": "2026-01-01T00:00:00Z", "credentialSubject": {}}
    assert evaluate(policy, request(), state(credentials=[cred])).decision == "permit"
    expired = dict(cred, validUntil="2025-01-01T00:00:00Z")
    assert evaluate(policy, request(), state(credentials=[expired])).decision == "deny"


def test_evaluation_is_pure_and_repeatable() -> None:
    policy = one_permission('odrl:leftOperand odrl:purpose ; odrl:operator odrl:eq ; odrl:rightOperand "r"')
    a = evaluate(policy, request(purpose="r"), state()).to_json()
    b = evaluate(policy, request(purpose="r"), state()).to_json()
    assert a == b


def test_partof_statements_in_the_policy_document() -> None:
    policy = ttl("""
ex:p a odrl:Set ; odrl:permission [ odrl:action odrl:read ; odrl:target ex:reports ] .
ex:reports a odrl:AssetCollection .
ex:q1 odrl:partOf ex:reports .
""")
    assert policy.part_of == (("http://example.org/q1", "http://example.org/reports"),)
    assert evaluate(policy, request("read", target="http://example.org/q1"), state()).decision == "permit"
    assert evaluate(policy, request("read", target="http://example.org/q2"), state()).decision == "deny"
    from policies import canonical_hash, parse_policy, policy_to_jsonld

    assert canonical_hash(parse_policy(policy_to_jsonld(policy))) == canonical_hash(policy)


def test_duties_of_a_permission_that_does_not_grant_do_not_bind() -> None:
    policy = ttl("""
ex:p a odrl:Set ; odrl:permission [ odrl:action odrl:use ; odrl:duty [ odrl:action odrl:inform ] ;
    odrl:constraint [ odrl:leftOperand odrl:purpose ; odrl:operator odrl:eq ; odrl:rightOperand "r" ] ] .
""")
    assert [d.action for d in evaluate(policy, request(purpose="r"), state()).duties] == ["inform"]
    assert evaluate(policy, request(purpose="x"), state()).duties == []
    assert evaluate(policy, request(), state()).duties == []  # indeterminate (no purpose): nothing granted


@pytest.mark.parametrize("build", [
    lambda: request(action=""),
    lambda: request(action=None),  # type: ignore[arg-type]
    lambda: request(target=42),
    lambda: request(extra=["purpose"]),
    lambda: state(facts=[("spatial", "DE")]),
    lambda: state(credentials={"type": "VerifiableCredential"}),
    lambda: state(events=[{"action": "delete"}]),
])
def test_bad_requests_and_states_get_clear_errors(build: object) -> None:
    with pytest.raises(PolicyError) as err:
        build()  # type: ignore[operator]
    assert err.value.code == "invalid_facts"
