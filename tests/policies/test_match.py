"""Canonical form, equality, hashing, JSON-LD round trips and "at least as strict" for negotiation."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from policies import canonical_hash, is_at_least_as_strict, parse_policy, policies_equal, policy_to_jsonld
from policies.parse import parse_policies
from tests.policies.conformance_support import DATA, SOLIDLAB
from tests.policies.helpers import ttl

BASE = """
ex:p a odrl:Offer ; odrl:assigner ex:provider ;
  odrl:permission [ odrl:action odrl:use ; odrl:target ex:asset ;
      odrl:constraint [ odrl:leftOperand odrl:purpose ; odrl:operator odrl:isAnyOf ; odrl:rightOperand "a", "b" ] ,
                      [ odrl:leftOperand odrl:count ; odrl:operator odrl:lteq ; odrl:rightOperand "10"^^xsd:integer ] ;
      odrl:duty [ odrl:action odrl:delete ] ] ;
  odrl:prohibition [ odrl:action odrl:distribute ; odrl:target ex:asset ] .
"""


def test_same_policy_in_turtle_and_jsonld_is_equal() -> None:
    turtle = ttl(BASE)
    jsonld = parse_policy({
        "@context": "http://www.w3.org/ns/odrl.jsonld", "@id": "http://example.org/other-id", "@type": "Agreement",
        "assigner": "http://example.org/provider",
        "prohibition": [{"action": "distribute", "target": "http://example.org/asset"}],
        "permission": [{"target": "http://example.org/asset", "action": "use",
                        "duty": [{"action": "delete"}],
                        "constraint": [
                            {"leftOperand": "count", "operator": "lteq",
                             "rightOperand": {"@value": "10.0", "@type": "xsd:integer"}},
                            {"leftOperand": "purpose", "operator": "isAnyOf", "rightOperand": ["b", "a"]}]}],
    })
    assert policies_equal(turtle, jsonld)
    assert canonical_hash(turtle) == canonical_hash(jsonld)
    assert re.fullmatch(r"[0-9a-f]{64}", canonical_hash(turtle))


@pytest.mark.parametrize("change", [
    ('"a", "b"', '"a", "c"'),
    ('"10"^^xsd:integer', '"11"^^xsd:integer'),
    ("odrl:action odrl:delete", "odrl:action odrl:anonymize"),
    ("odrl:action odrl:distribute", "odrl:action odrl:sell"),
    ("ex:provider", "ex:someone-else"),
])
def test_any_change_of_meaning_changes_the_hash(change: tuple[str, str]) -> None:
    assert not policies_equal(ttl(BASE), ttl(BASE.replace(*change)))


def test_and_sequence_order_matters_but_and_order_does_not() -> None:
    seq = """ex:p a odrl:Set ; odrl:permission [ odrl:action odrl:use ; odrl:constraint [ odrl:{op} {ops} ] ] ."""
    c1 = '[ odrl:leftOperand odrl:purpose ; odrl:operator odrl:eq ; odrl:rightOperand "x" ]'
    c2 = '[ odrl:leftOperand odrl:count ; odrl:operator odrl:lt ; odrl:rightOperand 3 ]'
    assert policies_equal(ttl(seq.format(op="and", ops=f"{c1}, {c2}")), ttl(seq.format(op="and", ops=f"{c2}, {c1}")))
    assert not policies_equal(ttl(seq.format(op="andSequence", ops=f"( {c1} {c2} )")),
                              ttl(seq.format(op="andSequence", ops=f"( {c2} {c1} )")))


def test_compact_rule_equals_atomic_rules() -> None:
    compact = ttl("ex:p a odrl:Set ; odrl:permission [ odrl:action odrl:read, odrl:print ; odrl:target ex:a ] .")
    atomic = ttl("ex:p a odrl:Set ; odrl:permission [ odrl:action odrl:read ; odrl:target ex:a ],"
                 " [ odrl:action odrl:print ; odrl:target ex:a ] .")
    assert policies_equal(compact, atomic)


SOLIDLAB_POLICIES = sorted((SOLIDLAB / "policies").glob("*.ttl"))
IM_EXAMPLES = sorted((DATA / "w3c-poe" / "odrl-im-2.2-examples").glob("im-example-*.json"))
CX = sorted((DATA / "catenax-cx-odrl-profile" / "schema" / "samples").glob("*policy*.json"))


@pytest.mark.parametrize("path", SOLIDLAB_POLICIES + IM_EXAMPLES + CX, ids=lambda p: p.stem)
def test_jsonld_round_trip(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    for policy in parse_policies(text, format="turtle" if path.suffix == ".ttl" else "json-ld"):
        doc = policy_to_jsonld(policy)
        assert doc["@context"][0] == "https://w3id.org/dspace/2025/1/context.jsonld"
        back = parse_policy(json.loads(json.dumps(doc)))
        assert back.uid == policy.uid and back.type == policy.type
        assert canonical_hash(back) == canonical_hash(policy), json.dumps(doc, indent=1)


def test_jsonld_output_uses_dsp_terms_unprefixed() -> None:
    doc = policy_to_jsonld(ttl(BASE))
    perm = doc["permission"][0]
    assert perm["action"] == "use"
    assert {c["operator"] for c in perm["constraint"]} == {"isAnyOf", "lteq"}
    assert doc["@type"] == "Offer"


# --------------------------------------------------------------------------------------- strictness

OFFER = ttl(BASE)


@pytest.mark.parametrize("change, stricter", [
    (None, True),
    (("odrl:action odrl:use ;", "odrl:action odrl:read ;"), True),  # a narrower action
    (('"10"^^xsd:integer', '"5"^^xsd:integer'), True),  # tighter bound
    (('"10"^^xsd:integer', '"20"^^xsd:integer'), False),  # looser bound
    (('"a", "b"', '"a"'), True),  # fewer allowed purposes
    (('"a", "b"', '"a", "b", "c"'), False),  # more allowed purposes
    (("odrl:duty [ odrl:action odrl:delete ]", "odrl:duty [ odrl:action odrl:delete ], [ odrl:action odrl:inform ]"),
     True),  # an extra duty
    ((" ;\n      odrl:duty [ odrl:action odrl:delete ] ]", " ]"), False),  # a dropped duty
    (("  odrl:prohibition [ odrl:action odrl:distribute ; odrl:target ex:asset ] .", "."), False),
    (("odrl:prohibition [ odrl:action odrl:distribute ;", "odrl:prohibition [ odrl:action odrl:transfer ;"),
     False),  # prohibition on something else: distribute no longer forbidden
])
def test_is_at_least_as_strict(change: tuple[str, str] | None, stricter: bool) -> None:
    body = BASE if change is None else BASE.replace(*change)
    if change is not None:
        assert body != BASE, "the change must apply"
    requested = ttl(body.replace(" ;\n  .", " ."))
    assert is_at_least_as_strict(requested, OFFER) is stricter


def test_extra_constraint_is_stricter_and_missing_one_is_not() -> None:
    extra = BASE.replace("odrl:target ex:asset ;\n", "odrl:target ex:asset ;\n      odrl:constraint [ odrl:leftOperand"
                         " odrl:spatial ; odrl:operator odrl:eq ; odrl:rightOperand \"DE\" ] ;\n", 1)
    assert is_at_least_as_strict(ttl(extra), OFFER)
    assert not is_at_least_as_strict(OFFER, ttl(extra))


def test_jsonld_output_fits_the_dsp_agreement_shape() -> None:
    agreement = ttl("""
ex:p a odrl:Agreement ; odrl:assigner ex:provider ; odrl:assignee ex:consumer ; odrl:target ex:asset ;
  odrl:permission [ odrl:action odrl:use ] ; odrl:prohibition [ odrl:action odrl:distribute ] .
""")
    doc = policy_to_jsonld(agreement)
    assert (doc["target"], doc["assigner"], doc["assignee"]) == (
        "http://example.org/asset", "http://example.org/provider", "http://example.org/consumer")
    assert "target" not in doc["permission"][0] and "assignee" not in doc["prohibition"][0]
    assert policies_equal(parse_policy(doc), agreement)
    catalog_offer = policy_to_jsonld(agreement, omit_target=True)
    assert "target" not in catalog_offer and "target" not in catalog_offer["permission"][0]


def test_jsonld_output_validates_against_the_dsp_contract_schema() -> None:
    import jsonschema

    schema = json.loads((Path(__file__).parent / "data" / "dsp-2025-1-contract-schema.json").read_text("utf-8"))

    def validator(definition: str) -> jsonschema.Draft201909Validator:
        # one definition at a time: DSP's "Policy" is a oneOf in which a target-less offer matches both
        # Offer and MessageOffer
        return jsonschema.Draft201909Validator({"$ref": f"#/definitions/{definition}",
                                                "definitions": schema["definitions"]})

    agreement = ttl("""
ex:p a odrl:Agreement ; odrl:assigner ex:provider ; odrl:assignee ex:consumer ; odrl:target ex:asset ;
  odrl:permission [ odrl:action odrl:use ;
      odrl:constraint [ odrl:or ( [ odrl:leftOperand odrl:purpose ; odrl:operator odrl:eq ; odrl:rightOperand "r" ]
                                  [ odrl:leftOperand odrl:count ; odrl:operator odrl:lt ; odrl:rightOperand 5 ] ) ] ;
      odrl:duty [ odrl:action odrl:delete ] ] ;
  odrl:prohibition [ odrl:action odrl:distribute ] .
""")
    offer = ttl(BASE.replace("odrl:Offer", "odrl:Offer ; odrl:target ex:asset"))
    cases = [("Agreement", policy_to_jsonld(agreement)), ("Offer", policy_to_jsonld(offer, omit_target=True)),
             ("MessageOffer", policy_to_jsonld(offer))]
    for definition, doc in cases:
        body = {k: v for k, v in doc.items() if k != "@context"}
        errors = sorted(validator(definition).iter_errors(body), key=str)
        assert not errors, (definition, [e.message for e in errors])
    assert list(validator("Offer").iter_errors({k: v for k, v in policy_to_jsonld(offer).items() if k != "@context"}))
