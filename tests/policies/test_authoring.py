"""Author test runner and the short request / state forms: they decide, diff and reject bad input clearly."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from policies.authoring import InputError, load_request, load_state, request_from_dict, run_suite, run_suites
from policies.authoring.runner import deep_merge

POLICY = """@prefix odrl: <http://www.w3.org/ns/odrl/2/> .
@prefix xsd: <http://www.w3.org/2001/XMLSchema#> .
<urn:policy> a odrl:Offer ; odrl:assigner <urn:provider> ; odrl:target <urn:asset> ;
  odrl:permission <urn:policy#use> .
<urn:policy#use> odrl:action odrl:use ;
  odrl:constraint [ odrl:leftOperand odrl:purpose ; odrl:operator odrl:eq ; odrl:rightOperand "research" ] ;
  odrl:duty [ odrl:action [ a odrl:Action ; <http://www.w3.org/1999/02/22-rdf-syntax-ns#value> odrl:delete ;
      odrl:refinement [ odrl:leftOperand odrl:elapsedTime ; odrl:operator odrl:lteq ;
                        odrl:rightOperand "P30D"^^xsd:duration ] ] ] .
"""


def _suite(tmp_path: Path, body: str) -> Path:
    (tmp_path / "p.ttl").write_text(POLICY, encoding="utf-8")
    suite = tmp_path / "p.test.yaml"
    suite.write_text(body, encoding="utf-8")
    return suite


def test_passing_suite(tmp_path: Path) -> None:
    suite = _suite(tmp_path, """policy: p.ttl
defaults:
  request: {action: use, target: "urn:asset", purpose: research}
  state: {now: "2026-01-10T00:00:00Z", agreement_time: "2026-01-01T00:00:00Z"}
cases:
  - name: research is permitted with a delete duty
    expect: {decision: permit, duties: [{action: delete, state: unfulfilled, parameters: {elapsedTime: P30D}}]}
  - name: other purposes are denied
    request: {purpose: ads}
    expect: {decision: deny, reasons: [purpose]}
""")
    result = run_suite(suite)
    assert result.passed and len(result.cases) == 2


def test_failing_case_gives_a_readable_diff(tmp_path: Path) -> None:
    suite = _suite(tmp_path, """policy: p.ttl
cases:
  - name: wrongly expects permit
    request: {action: use, target: "urn:asset", purpose: ads}
    state: {now: "2026-01-10T00:00:00Z"}
    expect: {decision: permit}
  - name: wrongly expects a fulfilled duty
    request: {action: use, target: "urn:asset", purpose: research}
    state: {now: "2026-01-10T00:00:00Z", agreement_time: "2026-01-01T00:00:00Z"}
    expect: {duties: [{action: delete, state: fulfilled}]}
""")
    first, second = run_suite(suite).cases
    assert not first.passed and "-decision: permit" in first.diff and "+decision: deny" in first.diff
    assert "reasons:" in first.diff
    assert not second.passed and "-  state: fulfilled" in second.diff and "+  state: unfulfilled" in second.diff


def test_expecting_no_duties(tmp_path: Path) -> None:
    suite = _suite(tmp_path, """policy: p.ttl
cases:
  - name: a permitted request binds the delete duty, so 'no duties' fails
    request: {action: use, target: "urn:asset", purpose: research}
    state: {now: "2026-01-10T00:00:00Z", agreement_time: "2026-01-01T00:00:00Z"}
    expect: {duties: []}
""")
    assert not run_suite(suite).passed


@pytest.mark.parametrize(("body", "message"), [
    ("cases: []", "'policy'"),
    ("policy: missing.ttl\ncases: [{expect: {decision: permit}}]", "not found"),
    ("policy: p.ttl\ncases: []", "non-empty"),
    ("policy: p.ttl\ncase: []", "unknown key(s) case"),
    ("policy: p.ttl\ncases: [\n  {", "invalid YAML"),
])
def test_bad_suites_raise_input_errors(tmp_path: Path, body: str, message: str) -> None:
    with pytest.raises(InputError, match=re.escape(message.strip("'"))):
        run_suite(_suite(tmp_path, body))


@pytest.mark.parametrize(("case", "message"), [
    ("{request: {action: use}, state: {now: '2026-01-01T00:00:00Z'}}", "expect is required"),
    ("{request: {action: use}, expect: {decision: maybe}}", "permit or deny"),
    ("{request: {action: use, purpse: x}, expect: {decision: deny}}", "unknown key(s) purpse"),
    ("{request: {target: x}, expect: {decision: deny}}", "request.action is required"),
    ("{request: {action: use}, state: {now: soon}, expect: {decision: deny}}", "not an ISO 8601"),
    ("{request: {action: use}, state: {counters: {x: many}}, expect: {decision: deny}}", "must be an integer"),
])
def test_bad_cases_fail_with_a_message(tmp_path: Path, case: str, message: str) -> None:
    suite = _suite(tmp_path, f"policy: p.ttl\ncases:\n  - {case}\n")
    [result] = run_suite(suite).cases
    assert not result.passed and message in result.error


def test_deep_merge_and_null_removal() -> None:
    merged = deep_merge({"a": {"b": 1, "c": 2}, "d": 3}, {"a": {"b": 5}, "d": None})
    assert merged == {"a": {"b": 5, "c": 2}}


def test_no_suites_found(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no test suites"):
        run_suites([tmp_path])


def test_short_forms_from_files(tmp_path: Path) -> None:
    (tmp_path / "r.json").write_text('{"action": "use", "purpose": "x", "extra": {"spatial": "DE"}}')
    (tmp_path / "s.yaml").write_text("now: 2026-01-01T00:00:00Z\nevents: [{action: delete, time: 2026-01-02}]\n")
    request = load_request(tmp_path / "r.json")
    state = load_state(tmp_path / "s.yaml")
    assert request.purpose == "x" and request.extra == {"spatial": "DE"}
    assert state.now == datetime(2026, 1, 1, tzinfo=UTC)
    assert state.events[0].action == "delete"
    (tmp_path / "bad.json").write_text('{"action": ')
    with pytest.raises(InputError, match="bad.json:1:"):
        load_request(tmp_path / "bad.json")
    with pytest.raises(InputError, match="must be a mapping"):
        request_from_dict(["use"])


def test_solidlab_style_request_and_state(tmp_path: Path) -> None:
    data = Path(__file__).resolve().parents[1] / "data" / "odrl" / "solidlab-odrl-test-suite" / "data"
    request = load_request(data / "requests" / "request-1.ttl")
    assert request.action == "http://www.w3.org/ns/odrl/2/read"
    assert request.assignee == "http://example.org/alice" and request.target == "http://example.org/x"
    state = load_state(data / "sotw" / "partyMembership.ttl")
    assert state.now.tzinfo is not None
    assert state.memberships
    (tmp_path / "empty.ttl").write_text("@prefix ex: <http://example.org/> .\nex:a ex:b ex:c .\n")
    with pytest.raises(InputError, match="no odrl:Request"):
        load_request(tmp_path / "empty.ttl")
    with pytest.raises(InputError, match="no current time"):
        load_state(tmp_path / "empty.ttl")


def _oracle() -> list[dict[str, str]]:
    import csv

    suite = Path(__file__).resolve().parents[1] / "data" / "odrl" / "solidlab-odrl-test-suite"
    with (suite / "DERIVED_decision_oracle.csv").open(encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


@pytest.mark.parametrize("row", _oracle(), ids=lambda r: r["case"])
def test_rdf_inputs_reproduce_the_solidlab_decisions(row: dict[str, str]) -> None:
    """Turtle request + state of the world read by the CLI's input path give the suite's closed-world decision."""
    from policies import evaluate, load_policy_file

    data = Path(__file__).resolve().parents[1] / "data" / "odrl" / "solidlab-odrl-test-suite" / "data"
    report = evaluate(load_policy_file(data / "policies" / row["policy"]),
                      load_request(data / "requests" / row["request"]), load_state(data / "sotw" / row["sotw"]))
    assert ("Allow" if report.decision == "permit" else "Deny") == row["derived_closed_world"]
