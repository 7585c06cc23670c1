"""ODRL 2.2 vocabulary facts the engine needs: namespaces, operators, core left operands, action hierarchy.

The action hierarchy (``odrl:includedIn``) is read from the pinned ``ODRL22.ttl`` once, so "read is a use"
comes from the Recommendation's own vocabulary instead of a hand-kept table.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

ODRL = "http://www.w3.org/ns/odrl/2/"
XSD = "http://www.w3.org/2001/XMLSchema#"
RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
REPORT = "https://w3id.org/force/compliance-report#"
DCT = "http://purl.org/dc/terms/"

POLICY_CLASSES = frozenset(
    ODRL + n for n in ("Policy", "Set", "Offer", "Agreement", "Request", "Privacy", "Ticket", "Assertion")
)

OPERATORS = frozenset(
    ODRL + n
    for n in ("eq", "neq", "lt", "lteq", "gt", "gteq", "isA", "hasPart", "isPartOf", "isAllOf", "isAnyOf",
              "isNoneOf")
)
LOGICAL_OPERATORS = ("or", "xone", "and", "andSequence")

CONFLICT_STRATEGIES = {ODRL + "perm": "perm", ODRL + "prohibit": "prohibit", ODRL + "invalid": "invalid"}

# Left operands of the ODRL 2.2 core vocabulary (section 4 of the vocabulary document).
CORE_LEFT_OPERANDS = frozenset(
    ODRL + n
    for n in (
        "absolutePosition", "absoluteSize", "absoluteSpatialPosition", "absoluteTemporalPosition", "count",
        "dateTime", "delayPeriod", "deliveryChannel", "device", "elapsedTime", "event", "fileFormat",
        "industry", "language", "media", "meteredTime", "payAmount", "percentage", "product", "purpose",
        "recipient", "relativePosition", "relativeSize", "relativeSpatialPosition",
        "relativeTemporalPosition", "resolution", "spatial", "spatialCoordinates", "system", "systemDevice",
        "timeInterval", "unitOfCount", "version", "virtualLocation",
    )
)

_PREFIXES = {"odrl": ODRL, "xsd": XSD, "rdf": RDF, "dct": DCT, "report": REPORT}


def expand(term: str) -> str:
    """Turn a short name ("use", "odrl:use", "xsd:date") into a full IRI; full IRIs pass through.

    Bare words are ODRL core terms, because that is how DSP and the ODRL context spell them.
    """
    if "://" in term or term.startswith("urn:") or term.startswith("did:"):
        return term
    if ":" in term:
        prefix, _, local = term.partition(":")
        base = _PREFIXES.get(prefix)
        if base is not None:
            return base + local
        from policies.profiles.registry import prefix_namespace

        ns = prefix_namespace(prefix)
        if ns is not None:
            return ns + local
        return term
    return ODRL + term


def short(iri: str) -> str:
    """The short name used in JSON reports and explanations: ODRL core terms lose their namespace."""
    if iri.startswith(ODRL):
        return iri[len(ODRL):]
    from policies.profiles.registry import namespace_prefix

    compact = namespace_prefix(iri)
    return compact if compact is not None else iri


@lru_cache(maxsize=1)
def action_parents() -> dict[str, frozenset[str]]:
    """Direct ``odrl:includedIn`` parents of every action in the pinned ODRL 2.2 vocabulary."""
    import rdflib

    graph = rdflib.Graph()
    data = resources.files("policies.resources.vocab").joinpath("ODRL22.ttl").read_bytes()
    graph.parse(data=data, format="turtle")
    parents: dict[str, set[str]] = {}
    for child, parent in graph.subject_objects(rdflib.URIRef(ODRL + "includedIn")):
        parents.setdefault(str(child), set()).add(str(parent))
    return {child: frozenset(ps) for child, ps in parents.items()}


@lru_cache(maxsize=4096)
def action_ancestors(action: str) -> frozenset[str]:
    """The action itself plus every action it is (transitively) included in: read -> {read, use}.

    ODRL 2.2 has two top-level actions, use and transfer; an action with no declared parent (e.g. a
    profile's or an undefined ``odrl:write``) is read as a kind of use (docs/policies.md, "Decisions").
    """
    parents = action_parents()
    if action not in parents and action not in (ODRL + "use", ODRL + "transfer"):
        return frozenset((action, ODRL + "use"))
    seen = {action}
    todo = [action]
    while todo:
        for parent in parents.get(todo.pop(), ()):
            if parent not in seen:
                seen.add(parent)
                todo.append(parent)
    return frozenset(seen)
