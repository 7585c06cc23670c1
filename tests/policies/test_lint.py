"""Lint: SHACL shapes and semantic checks find real mistakes, at the right line, and pass clean policies."""

from __future__ import annotations

from pathlib import Path

import pytest

from policies.lint import LintInputError, Severity, has_errors, lint_file, lint_paths, lint_text

LIBRARY = Path(__file__).resolve().parents[2] / "policies" / "library"

HEAD = """@prefix odrl: <http://www.w3.org/ns/odrl/2/> .
@prefix xsd: <http://www.w3.org/2001/XMLSchema#> .
"""


def _offer(rule: str, extra: str = "") -> str:
    return HEAD + f"""<urn:p> a odrl:Offer ;
    odrl:assigner <urn:provider> ;
    odrl:target <urn:asset> ;{extra}
    odrl:permission [
{rule}
    ] .
"""


def _rules(findings: list) -> set[str]:
    return {f.rule for f in findings}


def test_clean_offer_has_no_findings() -> None:
    text = _offer("""        odrl:action odrl:use ;
        odrl:constraint [ odrl:leftOperand odrl:count ; odrl:operator odrl:lteq ;
                          odrl:rightOperand "10"^^xsd:integer ]""")
    assert lint_text(text, path="ok.ttl") == []


@pytest.mark.parametrize("path", sorted(p.name for p in LIBRARY.glob("*") if p.suffix in (".ttl", ".jsonld")))
def test_every_library_policy_is_clean(path: str) -> None:
    findings = lint_file(LIBRARY / path)
    assert findings == [], [f.to_text() for f in findings]


def test_unknown_action_is_reported_with_line_and_suggestion() -> None:
    text = _offer("        odrl:action odrl:distribut")
    findings = lint_text(text, path="a.ttl")
    [finding] = [f for f in findings if f.rule == "unknown-action"]
    assert finding.severity is Severity.ERROR
    assert finding.line == 7
    assert finding.hint == "did you mean odrl:distribute?"
    assert finding.file == "a.ttl"


def test_unknown_left_operand_and_operator() -> None:
    text = _offer("""        odrl:action odrl:use ;
        odrl:constraint [ odrl:leftOperand odrl:purpse ; odrl:operator odrl:equals ; odrl:rightOperand "x" ]""")
    findings = lint_text(text, path="b.ttl")
    assert {"unknown-left-operand", "unknown-operator"} <= _rules(findings)
    left = next(f for f in findings if f.rule == "unknown-left-operand")
    assert left.line == 8 and "purpose" in left.hint


def test_profile_left_operand_is_known() -> None:
    text = "@prefix xb: <https://w3id.org/pactum/xborder/v1#> .\n" + _offer(
        """        odrl:action odrl:use ;
        odrl:constraint [ odrl:leftOperand xb:jurisdiction ; odrl:operator odrl:isPartOf ;
                          odrl:rightOperand "EU" ]""")
    assert lint_text(text, path="c.ttl") == []


def test_unregistered_profile_is_an_error() -> None:
    text = _offer("        odrl:action odrl:use", extra="\n    odrl:profile <https://example.com/no-such-profile> ;")
    assert "unknown-profile" in _rules(lint_text(text, path="d.ttl"))


@pytest.mark.parametrize(("left", "operator", "right", "why"), [
    ("odrl:count", "odrl:lteq", '"many"', "count needs an integer"),
    ("odrl:dateTime", "odrl:lt", '"yesterday"', "needs"),
    ("odrl:elapsedTime", "odrl:lteq", '"10"^^xsd:integer', "duration"),
    ("odrl:purpose", "odrl:gt", "<urn:x>", "gt needs"),
])
def test_right_operand_type_that_cannot_match(left: str, operator: str, right: str, why: str) -> None:
    text = _offer(f"""        odrl:action odrl:use ;
        odrl:constraint [ odrl:leftOperand {left} ; odrl:operator {operator} ; odrl:rightOperand {right} ]""")
    findings = [f for f in lint_text(text, path="e.ttl") if f.rule == "operand-type"]
    assert findings and any(why in f.message for f in findings), [f.message for f in findings]
    assert all(f.line == 8 for f in findings)


def test_untyped_date_string_that_parses_is_accepted() -> None:
    text = _offer("""        odrl:action odrl:use ;
        odrl:constraint [ odrl:leftOperand odrl:dateTime ; odrl:operator odrl:lt ;
                          odrl:rightOperand "2030-01-01T00:00:00Z" ]""")
    assert lint_text(text, path="f.ttl") == []


def test_contradicting_date_bounds_are_unsatisfiable() -> None:
    text = _offer("""        odrl:action odrl:use ;
        odrl:constraint [ odrl:leftOperand odrl:dateTime ; odrl:operator odrl:lt ;
                          odrl:rightOperand "2024-01-01T00:00:00Z"^^xsd:dateTime ] ,
                        [ odrl:leftOperand odrl:dateTime ; odrl:operator odrl:gt ;
                          odrl:rightOperand "2025-01-01T00:00:00Z"^^xsd:dateTime ]""")
    [finding] = [f for f in lint_text(text, path="g.ttl") if f.rule == "unsatisfiable"]
    assert "dateTime" in finding.message and finding.severity is Severity.ERROR
    assert finding.line in (8, 10)


def test_compatible_bounds_and_or_branches_are_not_flagged() -> None:
    ok_range = _offer("""        odrl:action odrl:use ;
        odrl:constraint [ odrl:leftOperand odrl:count ; odrl:operator odrl:gteq ; odrl:rightOperand 1 ] ,
                        [ odrl:leftOperand odrl:count ; odrl:operator odrl:lteq ; odrl:rightOperand 5 ]""")
    assert "unsatisfiable" not in _rules(lint_text(ok_range, path="h.ttl"))
    either = _offer("""        odrl:action odrl:use ;
        odrl:constraint [ odrl:or (
            [ odrl:leftOperand odrl:count ; odrl:operator odrl:lt ; odrl:rightOperand 1 ]
            [ odrl:leftOperand odrl:count ; odrl:operator odrl:gt ; odrl:rightOperand 5 ] ) ]""")
    assert "unsatisfiable" not in _rules(lint_text(either, path="i.ttl"))


@pytest.mark.parametrize(("constraints", "reason"), [
    ("[ odrl:leftOperand odrl:count ; odrl:operator odrl:lt ; odrl:rightOperand 0 ]", "lower bound"),
    ("[ odrl:leftOperand odrl:count ; odrl:operator odrl:eq ; odrl:rightOperand 3 ], "
     "[ odrl:leftOperand odrl:count ; odrl:operator odrl:eq ; odrl:rightOperand 4 ]", "at once"),
    ("[ odrl:leftOperand odrl:count ; odrl:operator odrl:eq ; odrl:rightOperand 3 ], "
     "[ odrl:leftOperand odrl:count ; odrl:operator odrl:neq ; odrl:rightOperand 3 ]", "not equal"),
])
def test_other_contradictions(constraints: str, reason: str) -> None:
    text = _offer(f"        odrl:action odrl:use ;\n        odrl:constraint {constraints}")
    findings = [f for f in lint_text(text, path="j.ttl") if f.rule == "unsatisfiable"]
    assert findings and reason in findings[0].message


def test_contradiction_inside_an_and_is_found() -> None:
    text = _offer("""        odrl:action odrl:use ;
        odrl:constraint [ odrl:and (
            [ odrl:leftOperand odrl:count ; odrl:operator odrl:gt ; odrl:rightOperand 10 ]
            [ odrl:leftOperand odrl:count ; odrl:operator odrl:lt ; odrl:rightOperand 5 ] ) ]""")
    assert "unsatisfiable" in _rules(lint_text(text, path="k.ttl"))


def test_offer_without_target_and_assigner() -> None:
    text = HEAD + """<urn:p> a odrl:Offer ;
    odrl:permission [ odrl:action odrl:use ] .
"""
    findings = lint_text(text, path="l.ttl")
    assert {"offer-without-target", "offer-without-assigner"} <= _rules(findings)
    assert all(f.line == 4 for f in findings if f.rule.startswith("offer-"))
    # the SHACL shape saying the same thing is folded into the semantic finding
    assert "shacl-target" not in _rules(findings) and "shacl-assigner" not in _rules(findings)


def test_set_with_policy_level_target_is_composed_into_rules() -> None:
    text = HEAD + """<urn:p> a odrl:Set ;
    odrl:target <urn:asset> ;
    odrl:permission [ odrl:action odrl:use ] , [ odrl:action odrl:read ] .
"""
    assert lint_text(text, path="m.ttl") == []


def test_inherit_from_cycle() -> None:
    text = HEAD + """<urn:a> a odrl:Set ; odrl:inheritFrom <urn:b> ; odrl:target <urn:t> ;
    odrl:permission [ odrl:action odrl:use ] .
<urn:b> a odrl:Set ; odrl:inheritFrom <urn:a> ; odrl:target <urn:t> ;
    odrl:permission [ odrl:action odrl:read ] .
"""
    findings = [f for f in lint_text(text, path="n.ttl") if f.rule == "inherit-cycle"]
    assert len(findings) == 1
    assert "urn:a" in findings[0].message and "urn:b" in findings[0].message
    assert findings[0].line == 3


def test_shacl_structure_errors() -> None:
    no_right = _offer("""        odrl:action odrl:use ;
        odrl:constraint [ odrl:leftOperand odrl:count ; odrl:operator odrl:lteq ]""")
    assert "shacl-right-operand" in _rules(lint_text(no_right, path="o.ttl"))
    blank_policy = HEAD + "[] a odrl:Set ; odrl:target <urn:t> ; odrl:permission [ odrl:action odrl:use ] .\n"
    assert "shacl-policy-iri" in _rules(lint_text(blank_policy, path="p.ttl"))
    bad_conflict = _offer("        odrl:action odrl:use", extra="\n    odrl:conflict odrl:use ;")
    assert "shacl-class" in _rules(lint_text(bad_conflict, path="q.ttl"))
    two_actions = _offer("        odrl:action odrl:use, odrl:read")
    assert "shacl-maxCount" in _rules(lint_text(two_actions, path="r.ttl"))


def test_rules_without_policy_type() -> None:
    text = HEAD + "<urn:p> odrl:permission [ odrl:action odrl:use ] .\n"
    rules = _rules(lint_text(text, path="s.ttl"))
    assert "policy-type" in rules and "no-policy" in rules


def test_turtle_syntax_error_has_line_and_column() -> None:
    text = HEAD + "<urn:p> a odrl:Set ;\n  odrl:permission [ odrl:action odrl:use \n  <urn:x> ] .\n"
    [finding] = lint_text(text, path="t.ttl")
    assert finding.rule == "syntax" and finding.line == 5 and finding.column == 3


def test_json_syntax_error_has_line_and_column() -> None:
    [finding] = lint_text('{\n  "@type": "Set",\n  "permission": [,]\n}', path="u.jsonld")
    assert (finding.rule, finding.line, finding.column) == ("syntax", 3, 18)


def test_unpinned_context_is_reported_not_fetched() -> None:
    [finding] = lint_text('{"@context": "https://example.com/ctx.jsonld", "@type": "Set"}', path="v.jsonld")
    assert finding.rule == "jsonld-context" and "not pinned" in finding.message


def test_jsonld_findings_point_at_the_line() -> None:
    text = """{
  "@context": "http://www.w3.org/ns/odrl.jsonld",
  "@id": "urn:p",
  "@type": "Offer",
  "assigner": "urn:provider",
  "target": "urn:asset",
  "permission": [{
    "action": "use",
    "constraint": [{"leftOperand": "count", "operator": "lteq", "rightOperand": "lots"}]
  }]
}"""
    findings = lint_text(text, path="w.jsonld")
    assert {(f.rule, f.line) for f in findings} == {("operand-type", 9)}


def test_empty_file_and_missing_file() -> None:
    assert _rules(lint_text("", path="x.ttl")) == {"empty"}
    with pytest.raises(LintInputError):
        lint_file("/nonexistent/policy.ttl")
    with pytest.raises(LintInputError):
        lint_paths(["/nonexistent/dir"])


def test_has_errors_ignores_warnings() -> None:
    findings = lint_text(_offer("        odrl:action odrl:nope"), path="y.ttl")
    assert has_errors(findings)
    assert not has_errors([])
    assert findings[0].to_json()["severity"] == "error"
    assert findings[0].to_text().startswith("y.ttl:7: error [unknown-action]")


def test_event_is_ordered_by_occurrence() -> None:
    text = _offer("""        odrl:action odrl:use ;
        odrl:constraint [ odrl:leftOperand odrl:event ; odrl:operator odrl:lt ;
                          odrl:rightOperand odrl:policyUsage ]""")
    assert lint_text(text, path="z.ttl") == []


def test_one_type_finding_per_constraint() -> None:
    text = _offer("""        odrl:action odrl:use ;
        odrl:constraint [ odrl:leftOperand odrl:count ; odrl:operator odrl:lt ; odrl:rightOperand "lots" ]""")
    findings = [f for f in lint_text(text, path="z.ttl") if f.rule == "operand-type"]
    assert len(findings) == 1 and "integer" in findings[0].message


def test_collection_shape_is_only_a_warning() -> None:
    text = HEAD + """@prefix ex: <http://example.org/> .
<urn:p> a odrl:Set ; odrl:permission [ odrl:action odrl:read ; odrl:target ex:x ; odrl:assignee ex:staff ] .
ex:staff a odrl:PartyCollection ; odrl:source ex:directory .
"""
    findings = lint_text(text, path="w.ttl")
    assert [(f.rule, f.severity) for f in findings] == [("shacl-collection", Severity.WARNING)]
    assert findings[0].line == 5 and not has_errors(findings)


def test_dsp_policy_without_context_and_without_rules() -> None:
    no_rules = '{"@id": "urn:uuid:1", "@type": "Offer", "target": "asset:1", "assigner": "urn:provider"}'
    findings = lint_text(no_rules, path="dsp.json")
    assert [f.rule for f in findings] == ["shacl-no-rules"]
    dsp = ('{"@id": "urn:uuid:1", "@type": "Offer", "target": "asset:1", "assigner": "urn:provider",\n'
           ' "permission": [{"action": "use", "constraint": [\n'
           '   {"leftOperand": "partner", "operator": "eq", "rightOperand": "gold"},\n'
           '   {"leftOperand": "partner", "operator": "eq", "rightOperand": "silver"}]}]}')
    findings = lint_text(dsp, path="dsp.json")
    # an unknown operand is one finding per place it is written, not a duplicate per constraint at one line
    assert sorted((f.rule, f.line) for f in findings) == [("unknown-left-operand", 3), ("unknown-left-operand", 4)]


def test_misspelt_odrl_class_and_property() -> None:
    text = HEAD + """<urn:p> a odrl:Ofer ;
   odrl:assigner <urn:a> ; odrl:target <urn:t> ;
   odrl:permision [ odrl:action odrl:use ] .
"""
    findings = {f.rule: f for f in lint_text(text, path="t.ttl") if f.rule == "unknown-odrl-term"}
    messages = sorted(f.message for f in lint_text(text, path="t.ttl") if f.rule == "unknown-odrl-term")
    assert messages == ["odrl:Ofer is not an ODRL 2.2 class", "odrl:permision is not an ODRL 2.2 property"]
    assert findings["unknown-odrl-term"].severity is Severity.ERROR
    hints = sorted(f.hint for f in lint_text(text, path="t.ttl") if f.rule == "unknown-odrl-term")
    assert hints == ["did you mean odrl:Offer?", "did you mean odrl:permission?"]


def test_jsonld_key_the_context_drops() -> None:
    text = """{
  "@context": "http://www.w3.org/ns/odrl.jsonld",
  "@id": "urn:p", "@type": "Offer", "assigner": "urn:provider", "target": "urn:asset",
  "permision": [{"action": "use"}]
}"""
    findings = lint_text(text, path="k.jsonld")
    dropped = [f for f in findings if f.rule == "unmapped-key"]
    assert len(dropped) == 1 and dropped[0].line == 4 and "permission" in dropped[0].hint
    assert "shacl-no-rules" in _rules(findings)


def test_odrl_term_used_as_a_property() -> None:
    text = """{"@id": "urn:p", "@type": "Offer", "assigner": "urn:provider", "target": "urn:asset",
 "permission": [{"action": "use", "constraint": {"invalid": [
   {"leftOperand": "count", "operator": "lt", "rightOperand": 3}]}}]}"""
    findings = [f for f in lint_text(text, path="dsp.json") if f.rule == "unknown-odrl-term"]
    assert [f.message for f in findings] == ["odrl:invalid is an ODRL 2.2 term but not a property"]
    assert findings[0].line == 2


DSP_TESTS = Path(__file__).resolve().parents[1] / "data" / "odrl" / "dsp-2025-1-policy-schema-tests"


@pytest.mark.parametrize(("name", "rule"), [
    ("invalid__INVALID_LOGICAL_CONTENT_NESTING.json", "unmapped-key"),
    ("invalid__INVALID_MULTIPLICITY_CONSTRAINT.json", "unknown-odrl-term"),
    ("invalid__INVALID_NO_ACTION.json", "shacl-minCount"),
    ("invalid__INVALID_NO_ID.json", "shacl-policy-iri"),
    ("invalid__INVALID_NO_LEFT_OPERAND.json", "shacl-minCount"),
    ("invalid__INVALID_NO_OPERATOR.json", "shacl-minCount"),
    ("invalid__INVALID_NO_RIGHT_OPERAND.json", "shacl-right-operand"),
    ("invalid__INVALID_NO_RULES.json", "shacl-no-rules"),
])
def test_dsp_invalid_policies_are_caught_for_the_right_reason(name: str, rule: str) -> None:
    assert rule in _rules(lint_file(DSP_TESTS / name))


def test_dsp_valid_policies_have_no_structural_errors() -> None:
    # they use an example left operand ("partner") and no assigner: exactly those findings, nothing structural
    for path in sorted(DSP_TESTS.glob("valid__*.json")):
        rules = _rules(lint_file(path))
        assert rules <= {"unknown-left-operand", "offer-without-assigner", "unknown-profile"}, (path.name, rules)
