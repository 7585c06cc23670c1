"""Validate a policy graph against the W3C ODRL shapes (``shapesv2.ttl``) with pyshacl.

The shapes target classes (``odrl:Policy``, ``odrl:Rule``, ``odrl:Constraint``) that authors rarely write
and that would otherwise need RDFS inference over the whole vocabulary (slow, and it would validate the
vocabulary itself). So we add exactly the types the ODRL Information Model implies and apply policy-level
composition (IM 2.7.1: a policy's target/assigner/assignee/action apply to every rule) before validating.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

import rdflib
from rdflib.namespace import RDF
from rdflib.term import Node, URIRef

from policies.vocab import ODRL, POLICY_CLASSES

from . import walk
from .findings import Finding, Severity
from .locate import Locator
from .terms import odrl_vocabulary

OD = walk.OD
SH = rdflib.Namespace("http://www.w3.org/ns/shacl#")

# Friendly wording for the shapes whose generic message would only say "does not conform".
_SHAPE_MESSAGES = {
    OD.targetCardShape: ("shacl-target", "every permission and prohibition needs exactly one target",
                        "set odrl:target on the policy or on each rule"),
    OD.assignerMinShape: ("shacl-assigner", "every rule of an Offer or Agreement needs an assigner",
                         "set odrl:assigner on the policy or on each rule"),
    OD.assigneeMinShape: ("shacl-assignee", "every rule of an Agreement needs an assignee",
                         "set odrl:assignee on the policy or on each rule"),
}


# Shape violations the engine still reads unambiguously: reported, but they do not fail lint.
_WARNING_RULES = frozenset({"shacl-collection"})


@lru_cache(maxsize=1)
def odrl_shapes() -> rdflib.Graph:
    """The pinned W3C ODRL SHACL shapes."""
    graph = rdflib.Graph()
    data = resources.files("policies.resources.vocab").joinpath("shapesv2.ttl").read_bytes()
    graph.parse(data=data, format="turtle")
    return graph


def prepare(graph: rdflib.Graph) -> rdflib.Graph:
    """A copy of ``graph`` with the implied ODRL types and policy-level composition applied."""
    data = rdflib.Graph()
    for triple in graph:
        data.add(triple)
    for policy in walk.policy_nodes(graph):
        data.add((policy, RDF.type, OD.Policy))
        for rule in walk.rules(graph, policy):
            if rule.kind != "duty":
                for predicate in walk.COMPOSABLE:
                    if graph.value(rule.node, predicate) is None:
                        for value in graph.objects(policy, predicate):
                            data.add((rule.node, predicate, value))
    for predicate, cls in ((OD.permission, OD.Permission), (OD.prohibition, OD.Prohibition),
                           (OD.obligation, OD.Duty), (OD.duty, OD.Duty), (OD.consequence, OD.Duty),
                           (OD.remedy, OD.Duty)):
        for node in graph.objects(None, predicate):
            data.add((node, RDF.type, cls))
            data.add((node, RDF.type, OD.Rule))
    vocabulary = odrl_vocabulary()
    for term in {o for o in graph.objects() if isinstance(o, URIRef) and str(o).startswith(ODRL)}:
        for term_class in vocabulary.objects(term, RDF.type):
            if term_class != OD.Action:  # the Action shape is for profile-defined actions, not ODRL's own
                data.add((term, RDF.type, term_class))
    for predicate in (*walk.CONSTRAINT_PREDICATES, *walk.LOGICAL_PREDICATES):
        for holder in graph.objects(None, predicate):
            for node in walk.members(graph, holder):
                if walk.is_atomic_constraint(graph, node):
                    data.add((node, RDF.type, OD.Constraint))
    return data


def _component_name(component: Node | None) -> str:
    text = str(component or "")
    name = text.rsplit("#", 1)[-1].removesuffix("ConstraintComponent")
    return name[:1].lower() + name[1:] if name else "shape"


def _short(node: Node | None) -> str:
    if node is None:
        return "?"
    text = str(node)
    if text.startswith(ODRL):
        return "odrl:" + text[len(ODRL):]
    return text if isinstance(node, URIRef) else "(blank node)"


def _node_words(data: rdflib.Graph, node: Node | None) -> str:
    """How to name a node in a message: its IRI, else by the property that holds it ("a permission")."""
    if node is None or isinstance(node, URIRef):
        return _short(node)
    for predicate in data.predicates(None, node):
        name = str(predicate).rsplit("/", 1)[-1].rsplit("#", 1)[-1]
        return f"a {name}"
    return "a blank node"


def _describe(report: rdflib.Graph, result: Node, data: rdflib.Graph) -> tuple[str, str, str, Node | None]:
    """(rule id, message, hint, node to locate) for one sh:ValidationResult."""
    component = report.value(result, SH.sourceConstraintComponent)
    shape = report.value(result, SH.sourceShape)
    focus = report.value(result, SH.focusNode)
    value = report.value(result, SH.value)
    path = report.value(result, SH.resultPath)
    name = _component_name(component)
    nested = report.value(shape, SH.node) if shape is not None else None
    if isinstance(nested, URIRef) and nested in _SHAPE_MESSAGES:
        rule, message, hint = _SHAPE_MESSAGES[nested]
        return rule, message, hint, value if value is not None else focus
    if shape == OD.PolicyShape and name == "nodeKind":
        return ("shacl-policy-iri", "a policy must be identified by an IRI (uid / @id), not a blank node",
                "give the policy an @id such as urn:uuid:...", focus)
    if name == "xone" and shape in (OD.PartyCollectionShape, OD.AssetCollectionShape):
        return ("shacl-collection", f"{_node_words(data, focus)}: a collection with odrl:source needs an "
                "odrl:refinement, and one without a refinement has no source",
                "add the refinement that selects members, or drop odrl:source", focus)
    if name == "xone" and shape == OD.ConstraintShape:
        return ("shacl-right-operand", "a constraint needs exactly one of rightOperand or rightOperandReference",
                "add odrl:rightOperand", focus)
    if name == "class" and shape is not None:
        expected = report.value(shape, SH["class"])
        return ("shacl-class", f"{_short(value)} is not a {_short(expected)} (on {_short(path)})",
                "use a term of the expected ODRL class, e.g. odrl:perm, odrl:prohibit or odrl:invalid for "
                "odrl:conflict" if expected == OD.ConflictTerm else "see the ODRL 2.2 Information Model", focus)
    if name == "disjoint":
        return ("inherit-cycle", "a policy inherits from itself through odrl:inheritFrom",
                "remove one odrl:inheritFrom link", focus)
    if name == "minCount" and shape is not None and report.value(shape, SH.path) is not None and path is not None \
            and not isinstance(path, URIRef):
        return ("shacl-no-rules", f"{_node_words(data, focus)} has no permission, prohibition or obligation",
                "add at least one rule", focus)
    if name in ("minCount", "maxCount") and isinstance(path, URIRef):
        bound = "at least" if name == "minCount" else "at most"
        count = report.value(shape, SH.minCount if name == "minCount" else SH.maxCount) if shape else None
        wording = f"needs {bound} {count or ('one' if name == 'minCount' else '')} {_short(path)}".replace("  ", " ")
        return f"shacl-{name}", f"{_node_words(data, focus)} {wording}", f"check {_short(path)} on this node", focus
    text = report.value(result, SH.resultMessage)
    return (f"shacl-{name}", str(text) if text else f"violates the ODRL shape {_short(shape)}",
            "see the ODRL 2.2 Information Model", focus)


def run_shacl(path: str, graph: rdflib.Graph, locator: Locator) -> list[Finding]:
    """SHACL findings for one parsed file (errors for violations, warnings for the rest)."""
    if not any(graph.subjects(RDF.type, URIRef(c)) for c in POLICY_CLASSES):
        return []
    import pyshacl  # imported here: it costs ~0.3 s, and every `pactum` command imports this module

    conforms, report, _ = pyshacl.validate(prepare(graph), shacl_graph=odrl_shapes(), advanced=True,
                                           allow_warnings=True)
    if conforms:
        return []
    assert isinstance(report, rdflib.Graph)
    findings = []
    seen: set[tuple[str, int | None, str]] = set()
    for result in report.subjects(RDF.type, SH.ValidationResult):
        if report.value(None, SH.detail, result) is not None:
            continue  # nested detail of a sh:node result, already described by its parent
        rule, message, hint, node = _describe(report, result, graph)
        severity_iri = report.value(result, SH.resultSeverity)
        severity = Severity.ERROR if severity_iri in (None, SH.Violation) else (
            Severity.WARNING if severity_iri == SH.Warning else Severity.INFO)
        if rule in _WARNING_RULES:
            severity = Severity.WARNING
        value = report.value(result, SH.value)
        line = locator.line_of_term(value, node) if isinstance(value, URIRef) else locator.line_of(node)
        key = (rule, line, message)
        if key in seen:
            continue
        seen.add(key)
        findings.append(Finding(path, rule, severity, message, hint, line, None,
                                str(node) if isinstance(node, URIRef) else None))
    return findings
