"""Walk an ODRL graph: policies, their rules, duties and (nested) constraints, as plain rdflib nodes.

Lint works on triples, so these helpers encode the ODRL 2.2 Information Model's structure once
(which predicates hold rules, duties, constraints) for both the SHACL preparation and the semantic checks.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import rdflib
from rdflib.collection import Collection
from rdflib.namespace import RDF
from rdflib.term import BNode, Node, URIRef

from policies.vocab import ODRL, POLICY_CLASSES

OD = rdflib.Namespace(ODRL)

RULE_PREDICATES = {OD.permission: "permission", OD.prohibition: "prohibition", OD.obligation: "obligation"}
DUTY_PREDICATES = (OD.duty, OD.consequence, OD.remedy)
CONSTRAINT_PREDICATES = (OD.constraint, OD.refinement)
LOGICAL_PREDICATES = (OD["and"], OD["or"], OD.xone, OD.andSequence)
COMPOSABLE = (OD.target, OD.assigner, OD.assignee, OD.action)


@dataclass(frozen=True, slots=True)
class RuleRef:
    """A rule node with its kind, the policy it belongs to and, for duties, the rule that holds it."""

    node: Node
    kind: str  # permission | prohibition | obligation | duty
    policy: Node
    parent: Node | None = None


def policy_nodes(graph: rdflib.Graph) -> list[Node]:
    """Subjects typed as an ODRL policy class (Set, Offer, Agreement, ...), in a stable order."""
    found = {s for cls in POLICY_CLASSES for s in graph.subjects(RDF.type, URIRef(cls))}
    return sorted(found, key=str)


def untyped_policy_nodes(graph: rdflib.Graph) -> list[Node]:
    """Subjects that hold rules but carry no policy type: the engine would not see them as policies."""
    typed = set(policy_nodes(graph))
    holders = {s for p in RULE_PREDICATES for s in graph.subjects(p, None)}
    nested = {o for p in (*RULE_PREDICATES, *DUTY_PREDICATES) for o in graph.objects(None, p)}
    return sorted(holders - typed - nested, key=str)


def policy_types(graph: rdflib.Graph, policy: Node) -> set[str]:
    """The ODRL policy classes of ``policy`` as IRIs."""
    return {str(t) for t in graph.objects(policy, RDF.type) if str(t) in POLICY_CLASSES}


def rules(graph: rdflib.Graph, policy: Node) -> Iterator[RuleRef]:
    """Top-level rules of ``policy`` followed by their duties, consequences and remedies (depth first)."""
    for predicate, kind in RULE_PREDICATES.items():
        for node in graph.objects(policy, predicate):
            yield RuleRef(node, kind, policy)
            yield from _duties(graph, node, policy, set())


def _duties(graph: rdflib.Graph, holder: Node, policy: Node, seen: set[Node]) -> Iterator[RuleRef]:
    for predicate in DUTY_PREDICATES:
        for node in graph.objects(holder, predicate):
            if node in seen:
                continue
            seen.add(node)
            yield RuleRef(node, "duty", policy, holder)
            yield from _duties(graph, node, policy, seen)


def value_of(graph: rdflib.Graph, node: Node) -> Node:
    """An action/operand written as ``[ rdf:value odrl:print ; odrl:refinement ... ]`` means its rdf:value."""
    if isinstance(node, BNode):
        inner = graph.value(node, RDF.value)
        if inner is not None:
            return inner
    return node


def members(graph: rdflib.Graph, node: Node) -> list[Node]:
    """The items of an RDF list, or ``[node]`` when it is not a list (JSON-LD arrays are not lists)."""
    if graph.value(node, RDF.first) is not None:
        return list(Collection(graph, node))
    return [node]


def logical_operands(graph: rdflib.Graph, node: Node) -> list[tuple[str, list[Node]]]:
    """``(operator name, operand constraints)`` for each logical operator on ``node``."""
    out = []
    for predicate in LOGICAL_PREDICATES:
        for value in graph.objects(node, predicate):
            out.append((str(predicate)[len(ODRL):], members(graph, value)))
    return out


def is_atomic_constraint(graph: rdflib.Graph, node: Node) -> bool:
    """True for ``leftOperand operator rightOperand`` constraints (not logical ones)."""
    return graph.value(node, OD.leftOperand) is not None or graph.value(node, OD.operator) is not None


def constraint_holders(graph: rdflib.Graph, policy: Node) -> Iterator[Node]:
    """The policy, its rules, and their actions / targets / parties: everything that may carry constraints."""
    yield policy
    for rule in rules(graph, policy):
        yield rule.node
        for predicate in (OD.action, OD.target, OD.assignee, OD.assigner):
            for value in graph.objects(rule.node, predicate):
                if isinstance(value, BNode):
                    yield value


def constraint_groups(graph: rdflib.Graph, holder: Node) -> Iterator[list[Node]]:
    """Lists of atomic constraints that must ALL hold: a holder's constraints and each ``and`` branch.

    Only conjunctions are grouped, because only there do two bounds on one operand contradict each other.
    """
    direct: list[Node] = []
    for predicate in CONSTRAINT_PREDICATES:
        for node in graph.objects(holder, predicate):
            for item in members(graph, node):
                if is_atomic_constraint(graph, item):
                    direct.append(item)
                else:
                    yield from _logical_groups(graph, item, 0)
    if direct:
        yield direct


def _logical_groups(graph: rdflib.Graph, node: Node, depth: int) -> Iterator[list[Node]]:
    if depth > 16:
        return
    for operator, operands in logical_operands(graph, node):
        atomic = [n for n in operands if is_atomic_constraint(graph, n)]
        if operator in ("and", "andSequence") and atomic:
            yield atomic
        for operand in operands:
            if not is_atomic_constraint(graph, operand):
                yield from _logical_groups(graph, operand, depth + 1)


def all_constraints(graph: rdflib.Graph, holder: Node) -> Iterator[Node]:
    """Every atomic constraint under ``holder`` (direct, and inside logical constraints)."""
    seen: set[Node] = set()
    todo: list[Node] = []
    for predicate in CONSTRAINT_PREDICATES:
        for node in graph.objects(holder, predicate):
            todo.extend(members(graph, node))
    while todo:
        node = todo.pop(0)
        if node in seen:
            continue
        seen.add(node)
        if is_atomic_constraint(graph, node):
            yield node
        for _, operands in logical_operands(graph, node):
            todo.extend(operands)
