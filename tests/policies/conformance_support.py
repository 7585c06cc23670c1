"""Adapters from the conformance suites' RDF (requests, states of the world, reports) to Pactum's API.

Test-only code: the suites describe requests and states as RDF; Pactum takes plain dataclasses.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import rdflib
from rdflib import RDF, Literal

from policies import Event, Policy, Request, StateOfWorld
from policies.values import parse_datetime

DATA = Path(__file__).resolve().parents[1] / "data" / "odrl"
SOLIDLAB = DATA / "solidlab-odrl-test-suite" / "data"
FORMAL = DATA / "w3c-odrl-formal-semantics" / "formal-semantics" / "examples"

ODRL = rdflib.Namespace("http://www.w3.org/ns/odrl/2/")
REPORT = rdflib.Namespace("https://w3id.org/force/compliance-report#")
DCT = rdflib.Namespace("http://purl.org/dc/terms/")
EX = rdflib.Namespace("http://example.org/")


@dataclass(frozen=True)
class SolidLabCase:
    number: int
    name: str
    title: str
    policy: Path
    request: Path
    sotw: Path
    expected: Path


def solidlab_cases() -> list[SolidLabCase]:
    """The 68 cases linked from data/index.ttl, with their files mapped to the local copy."""
    index = rdflib.Graph().parse(SOLIDLAB / "index.ttl")
    cases = []

    def local(case: Any, prop: str) -> Path:
        url = str(index.value(case, EX[prop]))
        return SOLIDLAB / url.split("/data/", 1)[1]

    for case in index.subjects(EX.policySource, None):
        expected = local(case, "expectedReportSource")
        cases.append(SolidLabCase(
            number=int(expected.name.split("-")[1]), name=expected.stem,
            title=str(index.value(case, DCT.title)), policy=local(case, "policySource"),
            request=local(case, "requestSource"), sotw=local(case, "sotwSource"), expected=expected))
    return sorted(cases, key=lambda c: c.number)


def request_from_graph(path: Path) -> Request:
    g = rdflib.Graph().parse(path)
    rule = next(iter(g.objects(None, ODRL.permission)))
    return Request(
        action=str(g.value(rule, ODRL.action)),
        target=str(g.value(rule, ODRL.target)) if g.value(rule, ODRL.target) else None,
        assignee=str(g.value(rule, ODRL.assignee)) if g.value(rule, ODRL.assignee) else None,
    )


def _duty_actions(policy: Policy) -> dict[str, str]:
    return {d.uid: d.action for r in policy.rules for d in r.duties if d.uid}


def state_from_graph(path: Path, policy: Policy) -> StateOfWorld:
    """SolidLab's state of the world: current time, partOf memberships, prior duty reports -> events."""
    g = rdflib.Graph().parse(path)
    now = next(o for o in g.objects(None, DCT.issued)).toPython()
    memberships: dict[str, list[str]] = {}
    for s, o in g.subject_objects(ODRL.partOf):
        memberships.setdefault(str(s), []).append(str(o))
    actions = _duty_actions(policy)
    events = []
    for report in g.subjects(RDF.type, REPORT.DutyReport):
        duty = str(g.value(report, REPORT.rule))
        state = g.value(report, REPORT.deonticState)
        if state == REPORT.Fulfilled:
            events.append(Event(action=actions.get(duty, "use"), duty=duty, time=now))
        elif state == REPORT.Violated:
            events.append(Event(action=actions.get(duty, "use"), duty=duty, time=now, outcome="unperformed"))
    return StateOfWorld(now=now, memberships=memberships, events=tuple(events))


@dataclass(frozen=True)
class RuleSummary:
    kind: str
    activation: str
    premises: tuple[tuple[str, str], ...]  # (TargetReport, Satisfied) ... sorted
    constraints: dict[str, str]  # constraint iri -> Satisfied / Unsatisfied
    left_operands: dict[str, Any]  # constraint iri -> left operand value (when the report gives it)


def _local(node: Any) -> str:
    return str(node).rsplit("#", 1)[-1]


def summarise(g: rdflib.Graph) -> dict[str, RuleSummary]:
    """The essential parts of a compliance report: per rule, its class, activation, premises, constraints."""
    out = {}
    for policy_report in g.subjects(RDF.type, REPORT.PolicyReport):
        for rr in g.objects(policy_report, REPORT.ruleReport):
            kind = next(_local(t) for t in g.objects(rr, RDF.type))
            premises = []
            constraints: dict[str, str] = {}
            lefts: dict[str, Any] = {}
            todo = list(g.objects(rr, REPORT.premiseReport))
            dangling = 0
            while todo:
                pr = todo.pop()
                if g.value(pr, RDF.type) is None:
                    dangling += 1
                    continue
                ptype = _local(g.value(pr, RDF.type))
                sat = _local(g.value(pr, REPORT.satisfactionState))
                if ptype == "ConstraintReport":
                    cid = g.value(pr, REPORT.constraint)
                    if cid is not None:
                        constraints[str(cid)] = sat
                        left = g.value(pr, REPORT.constraintLeftOperand)
                        if isinstance(left, Literal):
                            lefts[str(cid)] = left
                    todo.extend(g.objects(pr, REPORT.premiseReport))
                else:
                    premises.append((ptype, sat))
            if dangling:
                # Data defect (case 065): the rule report links premise reports by ids that are not
                # defined, while the Target/Party/Action reports are defined under other ids and
                # linked from nowhere. Repair by taking the unlinked ones.
                linked = set(g.objects(None, REPORT.premiseReport))
                for cls in (REPORT.TargetReport, REPORT.PartyReport, REPORT.ActionReport):
                    for node in g.subjects(RDF.type, cls):
                        if node not in linked:
                            premises.append((_local(cls), _local(g.value(node, REPORT.satisfactionState))))
            out[str(g.value(rr, REPORT.rule))] = RuleSummary(
                kind=kind, activation=_local(g.value(rr, REPORT.activationState)),
                premises=tuple(sorted(premises)), constraints=constraints, left_operands=lefts)
    return out


def same_instant(expected: Literal, actual: Any) -> bool:
    """Compare a report's xsd:dateTime literal with Pactum's JSON value."""
    if actual is None:
        return False
    exp = expected.toPython()
    if isinstance(exp, datetime):
        return exp == parse_datetime(str(actual))
    return str(exp) == str(actual)
