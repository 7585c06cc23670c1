"""Read a request and a state of the world written in RDF, the SolidLab ODRL test-suite style.

Request: an ``odrl:Request`` whose ``odrl:permission`` names ``odrl:action``, ``odrl:target`` and
``odrl:assignee`` (a ``odrl:purpose`` constraint on it becomes the request purpose).
State of the world: ``dct:issued`` of the node ``<http://example.com/request/currentTime>`` (or of any node
typed ``ex:Sotw``'s included time) is ``now``; ``X odrl:partOf Y`` triples become memberships; prior
compliance reports' ``report:DutyReport``s become events for their duty (performed when Fulfilled/Performed,
"unperformed" when Violated/Unperformed). Such an event names its duty by uid, which is how the engine
matches it, so its action is only a label ("use").
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Literal as TypeLiteral

import rdflib
from rdflib.namespace import DCTERMS, RDF
from rdflib.term import Literal, Node, URIRef

from policies import Event, Request, StateOfWorld
from policies.lint.source import read_policy_source
from policies.vocab import ODRL

from .inputs import InputError

OD = rdflib.Namespace(ODRL)
REPORT = rdflib.Namespace("https://w3id.org/force/compliance-report#")
CURRENT_TIME = URIRef("http://example.com/request/currentTime")


def _graph(path: Path) -> rdflib.Graph:
    source = read_policy_source(path)
    if source.syntax_error is not None:
        error = source.syntax_error
        where = f"{path}:{error.line}:{error.column}" if error.line else str(path)
        raise InputError(f"{where}: {error.message}")
    assert source.graph is not None
    return source.graph


def _iri(graph: rdflib.Graph, node: Node, predicate: URIRef) -> str | None:
    value = graph.value(node, predicate)
    if value is None:
        return None
    inner = graph.value(value, RDF.value)
    return str(inner if inner is not None else value)


def request_from_rdf(path: str | Path) -> Request:
    """The first ``odrl:Request``'s first permission, as a Request."""
    graph = _graph(Path(path))
    requests = sorted(graph.subjects(RDF.type, OD.Request), key=str)
    if not requests:
        raise InputError(f"{path}: no odrl:Request found")
    rule = graph.value(requests[0], OD.permission)
    if rule is None:
        raise InputError(f"{path}: the odrl:Request has no odrl:permission")
    action = _iri(graph, rule, OD.action)
    if action is None:
        raise InputError(f"{path}: the requested permission has no odrl:action")
    purpose = None
    for constraint in graph.objects(rule, OD.constraint):
        if graph.value(constraint, OD.leftOperand) == OD.purpose:
            right = graph.value(constraint, OD.rightOperand)
            purpose = str(right) if right is not None else None
    return Request(action=action, target=_iri(graph, rule, OD.target), assignee=_iri(graph, rule, OD.assignee),
                   assigner=_iri(graph, rule, OD.assigner), purpose=purpose)


def state_from_rdf(path: str | Path) -> StateOfWorld:
    """``now`` and ``memberships`` from a SolidLab-style state of the world."""
    graph = _graph(Path(path))
    issued = graph.value(CURRENT_TIME, DCTERMS.issued)
    if issued is None:
        raise InputError(f"{path}: no current time (<{CURRENT_TIME}> dct:issued \"...\"^^xsd:dateTime)")
    value = issued.toPython() if isinstance(issued, Literal) else None
    if not isinstance(value, datetime):
        raise InputError(f"{path}: current time {issued} is not an xsd:dateTime")
    now = value if value.tzinfo else value.replace(tzinfo=UTC)
    memberships: dict[str, list[str]] = {}
    for member, collection in graph.subject_objects(OD.partOf):
        memberships.setdefault(str(member), []).append(str(collection))
    return StateOfWorld(now=now, memberships=memberships, events=_duty_events(graph, now))


def _duty_events(graph: rdflib.Graph, now: datetime) -> tuple[Event, ...]:
    events = []
    for report in sorted(graph.subjects(RDF.type, REPORT.DutyReport), key=str):
        duty = graph.value(report, REPORT.rule)
        if duty is None:
            continue
        states = {graph.value(report, REPORT.deonticState), graph.value(report, REPORT.performanceState)}
        outcome: TypeLiteral["performed", "unperformed"]
        if states & {REPORT.Violated, REPORT.Unperformed}:
            outcome = "unperformed"
        elif states & {REPORT.Fulfilled, REPORT.Performed}:
            outcome = "performed"
        else:
            continue
        events.append(Event(action="use", duty=str(duty), time=now, outcome=outcome))
    return tuple(events)
