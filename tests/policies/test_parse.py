"""Parsing Turtle and JSON-LD into the immutable model, and the errors bad input gets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from policies import PolicyParseError, load_policy_file, parse_policies, parse_policy
from policies.errors import PolicyError
from policies.jsonld import ContextNotPinnedError
from policies.vocab import ODRL
from tests.policies.conformance_support import DATA
from tests.policies.helpers import PREFIXES, ttl

IM_EXAMPLES = sorted((DATA / "w3c-poe" / "odrl-im-2.2-examples").glob("im-example-*.json"))


def test_turtle_policy_model() -> None:
    policy = ttl("""
ex:p a odrl:Offer ; odrl:assigner ex:provider ; odrl:target ex:asset ;
    odrl:profile <https://w3id.org/pactum/xborder/v1> ;
    odrl:permission [ odrl:action odrl:read ; odrl:duty [ odrl:action odrl:delete ] ] ;
    odrl:prohibition [ odrl:action odrl:distribute ; odrl:remedy [ odrl:action odrl:inform ] ] ;
    odrl:obligation [ odrl:action odrl:compensate ; odrl:consequence [ odrl:action odrl:inform ] ] ;
    odrl:conflict odrl:perm .
""")
    assert policy.uid == "http://example.org/p"
    assert policy.type == "Offer"
    assert policy.conflict == "perm"
    assert policy.profiles == ("https://w3id.org/pactum/xborder/v1",)
    perm, = policy.permissions
    assert perm.action == ODRL + "read"
    assert perm.targets[0].iri == "http://example.org/asset"  # policy-level target pushed down
    assert perm.assigners[0].iri == "http://example.org/provider"
    assert perm.duties[0].action == ODRL + "delete"
    assert policy.prohibitions[0].remedies[0].action == ODRL + "inform"
    assert policy.obligations[0].consequences[0].action == ODRL + "inform"
    with pytest.raises(AttributeError):
        policy.uid = "x"  # type: ignore[misc]


def test_jsonld_with_pinned_odrl_context() -> None:
    policy = parse_policy({
        "@context": "http://www.w3.org/ns/odrl.jsonld", "@type": "Agreement", "uid": "http://example.com/a",
        "permission": [{"target": "http://example.com/t", "action": "play", "assignee": "http://example.com/b",
                        "assigner": "http://example.com/c",
                        "constraint": [{"or": [
                            {"leftOperand": "spatial", "operator": "eq", "rightOperand": {"@id": "ex:DE"}},
                            {"leftOperand": "count", "operator": "lteq",
                             "rightOperand": {"@value": "5", "@type": "xsd:integer"}}]}]}],
    })
    assert policy.type == "Agreement"
    logical = policy.rules[0].constraints[0]
    assert logical.operator == "or"  # type: ignore[union-attr]
    assert len(logical.operands) == 2  # type: ignore[union-attr]


def test_jsonld_without_context_defaults_to_odrl() -> None:
    policy = parse_policy({"@id": "urn:p", "@type": "Set", "permission": [{"action": "use"}]})
    assert policy.permissions[0].action == ODRL + "use"


def test_remote_context_is_refused_and_named() -> None:
    doc = {"@context": "https://evil.example/context.jsonld", "@id": "urn:p", "permission": []}
    with pytest.raises(ContextNotPinnedError, match="https://evil.example/context.jsonld"):
        parse_policy(doc)


def test_malformed_turtle_has_line_and_column() -> None:
    text = PREFIXES + "ex:p a odrl:Set ;\n    odrl:permission [ odrl:action odrl:use \n ex:oops ] ] .\n"
    with pytest.raises(PolicyParseError) as err:
        parse_policy(text, format="turtle")
    assert (err.value.line, err.value.column) == (9, 2)  # " ex:oops": where "]" was expected
    assert "line 9, column 2" in str(err.value)
    unterminated = PREFIXES + 'ex:p a odrl:Set ;\n    odrl:permission [ odrl:action "open ] .\n'
    with pytest.raises(PolicyParseError) as err2:
        parse_policy(unterminated, format="turtle")
    assert err2.value.line == 8 and err2.value.column is not None


def test_malformed_json_has_line_and_column() -> None:
    with pytest.raises(PolicyParseError) as err:
        parse_policy('{\n  "@id": "urn:p",\n  "permission": [,]\n}')
    assert (err.value.line, err.value.column) == (3, 18)  # the stray comma


def test_exactly_one_policy() -> None:
    with pytest.raises(PolicyParseError, match="exactly one policy, found 2"):
        parse_policy(PREFIXES + "ex:a a odrl:Set . ex:b a odrl:Set .")
    with pytest.raises(PolicyParseError, match="found 0"):
        parse_policy(PREFIXES + "ex:a ex:b ex:c .")
    assert len(parse_policies(PREFIXES + "ex:a a odrl:Set . ex:b a odrl:Offer .")) == 2


@pytest.mark.parametrize("body, match", [
    ("ex:p a odrl:Set ; odrl:permission [ odrl:action odrl:use ; odrl:constraint [ odrl:operator odrl:eq ] ] .",
     "leftOperand"),
    ("ex:p a odrl:Set ; odrl:permission [ odrl:action odrl:use ; odrl:constraint [ odrl:leftOperand odrl:count ;"
     " odrl:operator odrl:eq ] ] .", "rightOperand"),
    ("ex:p a odrl:Set ; odrl:conflict odrl:sometimes .", "conflict"),
    ("[] a odrl:Set ; odrl:permission [ odrl:action odrl:use ] .", "uid"),
    ("ex:p a odrl:Set ; odrl:permission [ odrl:action odrl:use ; odrl:duty [ odrl:target ex:x ] ] .", "no action"),
])
def test_bad_policies_get_clear_errors(body: str, match: str) -> None:
    with pytest.raises(PolicyParseError, match=match):
        parse_policy(PREFIXES + body)


def test_unknown_format_and_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(PolicyParseError, match="format"):
        parse_policy("x", format="rdf/xml")
    with pytest.raises(PolicyParseError, match="cannot read"):
        load_policy_file(tmp_path / "missing.ttl")


def test_errors_are_policy_errors_with_codes() -> None:
    with pytest.raises(PolicyError) as err:
        parse_policy("{")
    assert err.value.code == "policy_parse_error"


def test_inherit_from_parent_in_same_document() -> None:
    policies = parse_policies(PREFIXES + """
ex:parent a odrl:Set ; odrl:prohibition [ odrl:action odrl:distribute ] .
ex:child a odrl:Set ; odrl:inheritFrom ex:parent ; odrl:permission [ odrl:action odrl:use ] .
ex:orphan a odrl:Set ; odrl:inheritFrom ex:elsewhere ; odrl:permission [ odrl:action odrl:use ] .
""")
    by_uid = {p.uid: p for p in policies}
    child = by_uid["http://example.org/child"]
    assert {r.kind for r in child.rules} == {"permission", "prohibition"}
    assert by_uid["http://example.org/orphan"].unresolved_parents == ("http://example.org/elsewhere",)


def test_asset_and_party_collections() -> None:
    policy = ttl("""
ex:p a odrl:Set ; odrl:permission [ odrl:action odrl:read ;
    odrl:target [ a odrl:AssetCollection ; odrl:source ex:reports ;
                  odrl:refinement [ odrl:leftOperand odrl:fileFormat ; odrl:operator odrl:eq ;
                                    odrl:rightOperand "pdf" ] ] ;
    odrl:assignee ex:staff ] .
ex:staff a odrl:PartyCollection .
""")
    rule = policy.rules[0]
    assert rule.targets[0].is_collection and rule.targets[0].refinements
    assert rule.assignees[0].is_collection


@pytest.mark.parametrize("path", IM_EXAMPLES, ids=[p.stem for p in IM_EXAMPLES])
def test_odrl_information_model_examples_parse(path: Path) -> None:
    """Every strict-JSON example of the ODRL 2.2 Information Model is read without error."""
    doc = json.loads(path.read_text(encoding="utf-8"))
    policies = parse_policies(doc)
    if doc.get("@type") in ("Set", "Offer", "Agreement", "Request", "Policy", "Privacy", "Ticket", "Assertion"):
        assert policies


@pytest.mark.slow
def test_a_policy_with_10000_rules() -> None:
    rules = "\n".join(
        f"ex:r{i} odrl:action odrl:{'read' if i % 2 else 'print'} ; odrl:target ex:a{i} ;"
        f" odrl:constraint [ odrl:leftOperand odrl:count ; odrl:operator odrl:lteq ; odrl:rightOperand {i} ] ."
        for i in range(10_000)
    )
    refs = ", ".join(f"ex:r{i}" for i in range(10_000))
    policy = parse_policy(PREFIXES + f"ex:p a odrl:Set ; odrl:permission {refs} .\n" + rules)
    assert len(policy.rules) == 10_000
    from policies import Request, StateOfWorld, evaluate
    from tests.policies.helpers import NOW

    report = evaluate(policy, Request(action="read", target="http://example.org/a9999"),
                      StateOfWorld(now=NOW, counters={"http://example.org/a9999": 3}))
    assert report.decision == "permit"
    report2 = evaluate(policy, Request(action="read", target="http://example.org/a1"),
                       StateOfWorld(now=NOW, counters={"http://example.org/a1": 3}))
    assert report2.decision == "deny"


DSP_TESTS = sorted((DATA / "dsp-2025-1-policy-schema-tests").glob("*.json"))


@pytest.mark.parametrize("path", DSP_TESTS, ids=[p.stem for p in DSP_TESTS])
def test_dsp_policy_schema_cases(path: Path) -> None:
    """DSP 2025-1 schema cases: valid ones parse; invalid ones either fail to parse with a clear error
    or (no action, no rules: legal RDF, a lint matter) parse and are then never permitted."""
    from policies import Request, StateOfWorld, evaluate
    from tests.policies.helpers import NOW

    doc = json.loads(path.read_text(encoding="utf-8"))
    if path.name.startswith("valid__"):
        policy = parse_policy(doc)
        assert policy.uid == "urn:uuid:3dd1add8-4d2d-569e-d634-8394a8836a88" and policy.type == "Offer"
        return
    try:
        policy = parse_policy(doc)
    except PolicyParseError as err:
        assert err.code in ("bad_constraint", "missing_uid")
        return
    report = evaluate(policy, Request(action="use", target="asset:1"), StateOfWorld(now=NOW))
    assert report.decision == "deny"


def test_policy_inside_a_dsp_message() -> None:
    message = {
        "@context": "https://w3id.org/dspace/2025/1/context.jsonld",
        "@type": "ContractRequestMessage",
        "consumerPid": "urn:uuid:consumer", "callbackAddress": "https://consumer.example/callback",
        "offer": {"@id": "urn:uuid:offer-1", "@type": "Offer", "target": "urn:uuid:asset-1",
                  "assigner": "did:web:provider",
                  "permission": [{"action": "use", "constraint": [
                      {"leftOperand": "odrl:purpose", "operator": "eq", "rightOperand": "research"}]}]},
    }
    policy = parse_policy(message)
    assert (policy.uid, policy.type) == ("urn:uuid:offer-1", "Offer")
    assert policy.rules[0].targets[0].iri == "urn:uuid:asset-1"
    assert policy.rules[0].constraints[0].left_operand == ODRL + "purpose"  # type: ignore[union-attr]


def test_hostile_nesting_and_cycles_get_clear_errors() -> None:
    cyclic = PREFIXES + ("ex:p a odrl:Set ; odrl:permission [ odrl:action odrl:use ; odrl:constraint ex:c ] .\n"
                         "ex:c odrl:and ex:c .")
    with pytest.raises(PolicyParseError, match="nest deeper"):
        parse_policy(cyclic)
    duty_cycle = PREFIXES + ("ex:p a odrl:Set ; odrl:permission [ odrl:action odrl:use ; odrl:duty ex:d ] .\n"
                             "ex:d odrl:action odrl:pay ; odrl:consequence ex:d .")
    with pytest.raises(PolicyParseError, match="nest deeper"):
        parse_policy(duty_cycle)
    with pytest.raises(PolicyParseError):
        parse_policy("[" * 100_000 + "]" * 100_000, format="json-ld")
    with pytest.raises(PolicyParseError, match="UTF-8"):
        parse_policy(b"\xff\xfe ex:p a odrl:Set .", format="turtle")
    rest_cycle = PREFIXES + ("ex:p a odrl:Set ; odrl:permission [ odrl:action odrl:use ; odrl:constraint [\n"
                             " odrl:leftOperand odrl:purpose ; odrl:operator odrl:isAnyOf ;\n"
                             " odrl:rightOperand ex:l ] ] .\n"
                             'ex:l rdf:first "a" ; rdf:rest ex:l .')
    policy = parse_policy(rest_cycle)
    assert [t.value for t in policy.rules[0].constraints[0].right_operand] == ["a"]  # type: ignore[union-attr]
