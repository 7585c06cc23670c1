"""All 68 SolidLab ODRL test cases: rule activation, premises, constraint results and the decision.

The expected compliance reports give, per rule, its activation state and the satisfaction state of each
premise (target, party, action) and constraint. Pactum's own Turtle report is parsed back and compared on
exactly those parts. The decision is compared with the suite's closed-world oracle
(DERIVED_decision_oracle.csv, column derived_closed_world). Divergences are listed in DIVERGENT with the
reading Pactum takes and why (docs/policies.md, "Decisions" and "Conformance").
"""

from __future__ import annotations

import csv

import pytest
import rdflib

from policies import evaluate, load_policy_file
from tests.policies.conformance_support import (
    SOLIDLAB,
    request_from_graph,
    same_instant,
    solidlab_cases,
    state_from_graph,
    summarise,
)

CASES = solidlab_cases()
ORACLE = {
    row["case"]: row["derived_closed_world"]
    for row in csv.DictReader((SOLIDLAB.parent / "DERIVED_decision_oracle.csv").open(encoding="utf-8"))
}

# case number -> why Pactum's reading differs from the expected report (none so far)
DIVERGENT: dict[int, str] = {}


def test_index_links_all_68_cases() -> None:
    assert len(CASES) == 68
    assert [c.number for c in CASES] == list(range(1, 69))


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_solidlab_case(case) -> None:  # type: ignore[no-untyped-def]
    if case.number in DIVERGENT:
        pytest.skip(DIVERGENT[case.number])
    policy = load_policy_file(case.policy)
    report = evaluate(policy, request_from_graph(case.request), state_from_graph(case.sotw, policy))

    expected = summarise(rdflib.Graph().parse(case.expected))
    actual = summarise(rdflib.Graph().parse(data=report.to_turtle(), format="turtle"))
    assert expected, "expected report has rule reports"
    for rule_iri, exp in expected.items():
        got = actual[rule_iri]
        assert (got.kind, got.activation) == (exp.kind, exp.activation), rule_iri
        assert got.premises == exp.premises, rule_iri
        for constraint, state in exp.constraints.items():
            assert got.constraints.get(constraint) == state, constraint
    actual_values = {
        c["id"]: c.get("actual") for r in report.to_json()["rules"] for c in _flatten(r["constraints"])
    }
    for exp in expected.values():
        for constraint, literal in exp.left_operands.items():
            assert same_instant(literal, actual_values.get(constraint)), constraint

    oracle = ORACLE[case.name]
    assert report.decision == ("permit" if oracle == "Allow" else "deny"), report.explain()


def _flatten(constraints: list[dict]) -> list[dict]:  # type: ignore[type-arg]
    out = []
    for c in constraints:
        out.append(c)
        out.extend(_flatten(c.get("constraints", [])))
    return out
