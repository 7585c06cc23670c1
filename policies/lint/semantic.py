"""Semantic checks SHACL cannot express: unknown terms, operand types, contradictions, Offer gaps, cycles.

Each check is a pure function ``(graph, context) -> findings`` so it can be tested on a small graph and
listed in ``CHECKS``; the rule ids are stable and documented in docs/policies.md ("Lint").
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

import rdflib
from rdflib.namespace import RDF, XSD
from rdflib.term import Literal, Node, URIRef

from policies.errors import PolicyError
from policies.values import DURATION_TYPES, NUMERIC_TYPES, parse_datetime, parse_duration
from policies.vocab import ODRL

from . import terms, walk
from .findings import Finding, Severity
from .locate import Locator

OD = walk.OD
ORDERING_OPERATORS = {ODRL + n for n in ("lt", "lteq", "gt", "gteq")}

# What the right operand of a core (or profile) left operand must be; absent = anything.
EXPECTED_KIND: dict[str, str] = {
    ODRL + "count": "integer",
    ODRL + "dateTime": "datetime",
    ODRL + "elapsedTime": "duration",
    ODRL + "meteredTime": "duration",
    ODRL + "delayPeriod": "duration",
    ODRL + "timeInterval": "duration",
    ODRL + "payAmount": "number",
    ODRL + "percentage": "number",
    ODRL + "absoluteSize": "number",
    ODRL + "relativeSize": "number",
    "https://w3id.org/pactum/xborder/v1#retention": "duration",
}

_KIND_WORDS = {
    "integer": "an integer (xsd:integer)",
    "number": "a number (xsd:decimal)",
    "datetime": "a date-time (xsd:dateTime)",
    "duration": "a duration (xsd:duration, e.g. P90D)",
}


@dataclass(frozen=True, slots=True)
class LintContext:
    """What every check needs: the file name, the graph and a locator for lines."""

    path: str
    graph: rdflib.Graph
    locator: Locator

    def finding(self, rule: str, severity: Severity, message: str, hint: str, node: Node | None,
                term: URIRef | None = None) -> Finding:
        """A finding whose line is that of ``term`` near ``node`` (or of ``node`` itself)."""
        line = self.locator.line_of_term(term, node) if term is not None else self.locator.line_of(node)
        return Finding(self.path, rule, severity, message, hint, line, None, _label(node))


def _label(node: Node | None) -> str | None:
    if node is None:
        return None
    return str(node) if isinstance(node, URIRef) else None


def _short(iri: Node | str) -> str:
    text = str(iri)
    from policies.vocab import short

    return short(text)


def _suggest(name: str, candidates: Iterable[str]) -> str:
    local = name.rsplit("/", 1)[-1].rsplit("#", 1)[-1]
    by_local = {c.rsplit("/", 1)[-1].rsplit("#", 1)[-1]: c for c in candidates}
    close = difflib.get_close_matches(local, list(by_local), n=1, cutoff=0.7)
    if not close:
        return ""
    best = by_local[close[0]]
    return f"did you mean {'odrl:' + close[0] if best.startswith(ODRL) else _short(best)}?"


# --- values -------------------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Value:
    """A right operand reduced to what lint compares: its kind and, when ordered, a comparable value."""

    kind: str  # integer | number | datetime | duration | boolean | string | iri
    value: Any
    text: str


def classify(node: Node) -> Value:
    """Decide a right operand's kind from its datatype, or from its lexical form when it is a plain string.

    Plain strings are accepted when they parse (JSON-LD policies often write dates as strings); the
    engine coerces the same way, so lint must not reject what evaluation understands.
    """
    if not isinstance(node, Literal):
        return Value("iri", str(node), str(node))
    text = str(node)
    datatype = str(node.datatype) if node.datatype else None
    if datatype in NUMERIC_TYPES:
        try:
            number = Decimal(text.strip())
        except InvalidOperation:
            return Value("string", text, text)
        kind = "integer" if number == number.to_integral_value() and "." not in text else "number"
        return Value(kind, number, text)
    if datatype in (str(XSD.dateTime), str(XSD.dateTimeStamp), str(XSD.date)):
        parsed = _as_datetime(text)
        return Value("datetime", parsed, text) if parsed is not None else Value("string", text, text)
    if datatype in DURATION_TYPES:
        parsed_duration = _as_duration(text)
        return Value("duration", parsed_duration, text) if parsed_duration is not None else Value(
            "string", text, text)
    if datatype == str(XSD.boolean):
        return Value("boolean", text.strip() in ("true", "1"), text)
    if datatype not in (None, str(XSD.string)):
        return Value("string", text, text)
    return _guess(text)


def _guess(text: str) -> Value:
    stripped = text.strip()
    try:
        number = Decimal(stripped)
        if number.is_finite():
            return Value("integer" if number == number.to_integral_value() and "." not in stripped else "number",
                         number, text)
    except InvalidOperation:
        pass
    if stripped[:1] in ("P", "-") and _as_duration(stripped) is not None:
        return Value("duration", _as_duration(stripped), text)
    if len(stripped) >= 10 and stripped[4:5] == "-" and _as_datetime(stripped) is not None:
        return Value("datetime", _as_datetime(stripped), text)
    return Value("string", text, text)


def _as_datetime(text: str) -> datetime | None:
    try:
        if len(text.strip()) == 10:
            day = date.fromisoformat(text.strip())
            return datetime(day.year, day.month, day.day, tzinfo=UTC)
        return parse_datetime(text)
    except (PolicyError, ValueError):
        return None


def _as_duration(text: str) -> timedelta | None:
    try:
        return parse_duration(text)
    except PolicyError:
        return None


def _fits(kind: str, expected: str) -> bool:
    if expected == "number":
        return kind in ("integer", "number")
    return kind == expected


def right_operands(graph: rdflib.Graph, constraint: Node) -> list[Node]:
    """The right operand values of a constraint (RDF lists and JSON-LD arrays flattened)."""
    values: list[Node] = []
    for value in graph.objects(constraint, OD.rightOperand):
        for item in walk.members(graph, value):
            values.append(walk.value_of(graph, item) if not isinstance(item, Literal) else item)
    return values


# --- checks -------------------------------------------------------------------------------------------------

def check_untyped_policies(ctx: LintContext) -> list[Finding]:
    """Rules on a node with no policy type are invisible to the engine."""
    return [ctx.finding("policy-type", Severity.ERROR, f"{_short(node)} has rules but no ODRL policy type",
                        "add a type: odrl:Set, odrl:Offer or odrl:Agreement", node)
            for node in walk.untyped_policy_nodes(ctx.graph)]


def check_profiles(ctx: LintContext) -> list[Finding]:
    """A declared profile Pactum does not know makes the engine deny everything; say so at authoring time."""
    out = []
    for policy in walk.policy_nodes(ctx.graph):
        for profile in ctx.graph.objects(policy, OD.profile):
            if not terms.is_known_profile(str(profile)):
                out.append(ctx.finding(
                    "unknown-profile", Severity.ERROR, f"profile {profile} is not registered in Pactum",
                    "use a registered profile (see `pactum policies profiles`) or remove odrl:profile",
                    policy, profile if isinstance(profile, URIRef) else None))
    return out


def check_actions(ctx: LintContext) -> list[Finding]:
    """Every rule's action must be an ODRL 2.2 action; an unknown one can never match a request."""
    out = []
    for policy in walk.policy_nodes(ctx.graph):
        for rule in walk.rules(ctx.graph, policy):
            for raw in ctx.graph.objects(rule.node, OD.action):
                action = walk.value_of(ctx.graph, raw)
                if not isinstance(action, URIRef):
                    out.append(ctx.finding("unknown-action", Severity.ERROR,
                                           f"action {action} of a {rule.kind} is not an IRI",
                                           "use an ODRL action such as odrl:use", rule.node))
                elif not terms.is_known_action(str(action)):
                    hint = _suggest(str(action), terms.odrl_actions()) or (
                        "use an action of the ODRL 2.2 vocabulary (use, read, distribute, delete, ...)")
                    out.append(ctx.finding("unknown-action", Severity.ERROR,
                                           f"unknown action {_short(action)} in a {rule.kind}", hint,
                                           rule.node, action))
    return out


def _every_constraint(ctx: LintContext) -> Iterable[Node]:
    seen: set[Node] = set()
    for policy in walk.policy_nodes(ctx.graph):
        for holder in walk.constraint_holders(ctx.graph, policy):
            for constraint in walk.all_constraints(ctx.graph, holder):
                if constraint not in seen:
                    seen.add(constraint)
                    yield constraint


def check_operands(ctx: LintContext) -> list[Finding]:
    """Left operands and operators must be understood; the right operand's type must fit both."""
    out: list[Finding] = []
    graph = ctx.graph
    for constraint in _every_constraint(ctx):
        left = graph.value(constraint, OD.leftOperand)
        operator = graph.value(constraint, OD.operator)
        left = walk.value_of(graph, left) if left is not None else None
        if isinstance(left, URIRef) and not terms.is_known_left_operand(str(left)):
            candidates = set(terms.odrl_left_operands())
            for profile in terms.registry.profiles():
                candidates.update(profile.left_operands)
            hint = _suggest(str(left), candidates) or "use an ODRL 2.2 left operand or one of a registered profile"
            out.append(ctx.finding("unknown-left-operand", Severity.ERROR, f"unknown left operand {_short(left)}",
                                   hint, constraint, left))
        if isinstance(operator, URIRef) and not terms.is_known_operator(str(operator)):
            out.append(ctx.finding("unknown-operator", Severity.ERROR, f"unknown operator {_short(operator)}",
                                   _suggest(str(operator), terms.OPERATORS) or "use one of eq, neq, lt, lteq, "
                                   "gt, gteq, isA, hasPart, isPartOf, isAllOf, isAnyOf, isNoneOf",
                                   constraint, operator))
        if left is None or operator is None:
            continue
        out.extend(_type_findings(ctx, constraint, str(left), str(operator)))
    return out


def _type_findings(ctx: LintContext, constraint: Node, left: str, operator: str) -> list[Finding]:
    values = [classify(v) for v in right_operands(ctx.graph, constraint)]
    if not values:
        return []
    spec = terms.left_operand_spec(left)
    ordering = spec.ordering if spec is not None else ()
    out = []
    expected_kind = EXPECTED_KIND.get(left)
    # odrl:event is ordered by occurrence ("event lt odrl:policyUsage"), so IRIs are its right operands
    if operator in ORDERING_OPERATORS and left != ODRL + "event":
        op = _short(operator)
        if len(values) > 1:
            out.append(ctx.finding("operand-type", Severity.ERROR,
                                   f"{op} compares with one value but {_short(left)} has {len(values)}",
                                   "use isAnyOf/isAllOf for sets, or give a single right operand", constraint))
        for value in values:
            ordered = value.kind in ("integer", "number", "datetime", "duration")
            if expected_kind is not None and not _fits(value.kind, expected_kind):
                continue  # the more specific type finding below says it better
            if not ordered and not (ordering and value.text in ordering):
                expected = f"one of {', '.join(ordering)}" if ordering else "a number, date-time or duration"
                out.append(ctx.finding(
                    "operand-type", Severity.ERROR,
                    f"{_short(left)} {op} {value.text!r}: {op} needs {expected}, got a {value.kind}",
                    "give a typed literal, e.g. \"100\"^^xsd:integer or \"2025-01-01T00:00:00Z\"^^xsd:dateTime",
                    constraint))
    if expected_kind is not None:
        for value in values:
            if not _fits(value.kind, expected_kind):
                out.append(ctx.finding(
                    "operand-type", Severity.ERROR,
                    f"{_short(left)} needs {_KIND_WORDS[expected_kind]}, got {value.text!r} ({value.kind})",
                    f"write the right operand as {_KIND_WORDS[expected_kind]}", constraint))
            elif left == ODRL + "count" and value.value < 0:
                out.append(ctx.finding("operand-type", Severity.ERROR,
                                       f"count cannot be negative ({value.text})", "use a count >= 0", constraint))
    return out


@dataclass
class _Bounds:
    lower: tuple[Any, bool] | None = None  # (value, strict)
    upper: tuple[Any, bool] | None = None
    equal: list[Value] | None = None
    unequal: list[Value] | None = None


def _merge_lower(current: tuple[Any, bool] | None, new: tuple[Any, bool]) -> tuple[Any, bool]:
    if current is None or new[0] > current[0] or (new[0] == current[0] and new[1]):
        return new
    return current


def _merge_upper(current: tuple[Any, bool] | None, new: tuple[Any, bool]) -> tuple[Any, bool]:
    if current is None or new[0] < current[0] or (new[0] == current[0] and new[1]):
        return new
    return current


def _comparable(value: Value, ordering: tuple[str, ...]) -> tuple[str, Any] | None:
    if value.kind in ("integer", "number"):
        return "number", value.value
    if value.kind in ("datetime", "duration"):
        return value.kind, value.value
    if ordering and value.text in ordering:
        return "ordinal", ordering.index(value.text)
    return None


def _contradiction(left: str, constraints: list[tuple[str, Value]], ordering: tuple[str, ...]) -> str | None:
    """Why a conjunction of constraints on one left operand can never hold, or None when it can."""
    by_kind: dict[str, _Bounds] = {}
    for operator, value in constraints:
        comparable = _comparable(value, ordering)
        if comparable is None:
            continue
        kind, number = comparable
        bounds = by_kind.setdefault(kind, _Bounds())
        name = operator[len(ODRL):]
        if name in ("gt", "gteq"):
            bounds.lower = _merge_lower(bounds.lower, (number, name == "gt"))
        elif name in ("lt", "lteq"):
            bounds.upper = _merge_upper(bounds.upper, (number, name == "lt"))
        elif name == "eq":
            bounds.equal = (bounds.equal or []) + [Value(kind, number, value.text)]
        elif name == "neq":
            bounds.unequal = (bounds.unequal or []) + [Value(kind, number, value.text)]
    if left == ODRL + "count":
        bounds = by_kind.setdefault("number", _Bounds())
        bounds.lower = _merge_lower(bounds.lower, (Decimal(0), False))
    for bounds in by_kind.values():
        equal = bounds.equal or []
        distinct = {v.value for v in equal}
        if len(distinct) > 1:
            return "it must equal " + " and ".join(sorted({v.text for v in equal})) + " at once"
        if equal:
            target = equal[0]
            if any(v.value == target.value for v in bounds.unequal or []):
                return f"it must both equal and not equal {target.text}"
            if bounds.lower is not None and (target.value < bounds.lower[0] or
                                             (target.value == bounds.lower[0] and bounds.lower[1])):
                return f"it must equal {target.text} but also be above a larger bound"
            if bounds.upper is not None and (target.value > bounds.upper[0] or
                                             (target.value == bounds.upper[0] and bounds.upper[1])):
                return f"it must equal {target.text} but also be below a smaller bound"
        if bounds.lower is not None and bounds.upper is not None:
            low, low_strict = bounds.lower
            high, high_strict = bounds.upper
            if low > high or (low == high and (low_strict or high_strict)):
                return "its lower bound is not below its upper bound"
    return None


def check_contradictions(ctx: LintContext) -> list[Finding]:
    """Constraints that must all hold but exclude each other (dateTime lt 2024 and gt 2025) never permit."""
    out: list[Finding] = []
    graph = ctx.graph
    reported: set[tuple[Node, ...]] = set()
    for policy in walk.policy_nodes(graph):
        for holder in walk.constraint_holders(graph, policy):
            for group in walk.constraint_groups(graph, holder):
                by_left: dict[str, list[tuple[Node, str, Value]]] = {}
                for constraint in group:
                    left = graph.value(constraint, OD.leftOperand)
                    operator = graph.value(constraint, OD.operator)
                    if left is None or operator is None:
                        continue
                    left = walk.value_of(graph, left)
                    unit = graph.value(constraint, OD.unit)
                    key = f"{left}|{unit}"
                    for value in right_operands(graph, constraint):
                        by_left.setdefault(key, []).append((constraint, str(operator), classify(value)))
                for key, items in by_left.items():
                    left_iri = key.split("|", 1)[0]
                    spec = terms.left_operand_spec(left_iri)
                    reason = _contradiction(left_iri, [(op, v) for _, op, v in items],
                                            spec.ordering if spec is not None else ())
                    nodes = tuple(sorted({c for c, _, _ in items}, key=str))
                    if reason is None or nodes in reported:
                        continue
                    reported.add(nodes)
                    spelled = " and ".join(f"{_short(op)} {v.text}" for _, op, v in items)
                    out.append(ctx.finding(
                        "unsatisfiable", Severity.ERROR,
                        f"constraints on {_short(left_iri)} can never all hold ({spelled}): {reason}",
                        "fix the bounds, or use odrl:or if either range is meant", items[0][0]))
    return out


def check_offers(ctx: LintContext) -> list[Finding]:
    """An Offer is made by someone about something: every rule needs a target and an assigner."""
    out = []
    graph = ctx.graph
    for policy in walk.policy_nodes(graph):
        if ODRL + "Offer" not in walk.policy_types(graph, policy):
            continue
        for rule in walk.rules(graph, policy):
            if rule.kind == "duty":
                continue
            for predicate, word in ((OD.target, "target"), (OD.assigner, "assigner")):
                if graph.value(rule.node, predicate) is None and graph.value(policy, predicate) is None:
                    out.append(ctx.finding(
                        f"offer-without-{word}", Severity.ERROR, f"an Offer's {rule.kind} has no {word}",
                        f"set odrl:{word} on the policy or the rule (library policies use the placeholder "
                        f"{'urn:pactum:asset' if word == 'target' else 'urn:pactum:provider'})", rule.node))
    return out


def check_inherit_cycles(ctx: LintContext) -> list[Finding]:
    """``inheritFrom`` must form a tree: a cycle makes the effective policy undefined."""
    graph = ctx.graph
    edges: dict[Node, list[Node]] = {}
    for child, parent in graph.subject_objects(OD.inheritFrom):
        edges.setdefault(child, []).append(parent)
    out = []
    reported: set[frozenset[Node]] = set()
    for start in sorted(edges, key=str):
        path: list[Node] = []
        cycle = _find_cycle(start, edges, path, set())
        if cycle and frozenset(cycle) not in reported:
            reported.add(frozenset(cycle))
            names = " -> ".join(_short(n) for n in [*cycle, cycle[0]])
            out.append(ctx.finding("inherit-cycle", Severity.ERROR, f"inheritFrom forms a cycle: {names}",
                                   "remove one odrl:inheritFrom link so policies inherit in one direction",
                                   cycle[0]))
    return out


def _find_cycle(node: Node, edges: dict[Node, list[Node]], path: list[Node], done: set[Node]) -> list[Node] | None:
    if node in path:
        return path[path.index(node):]
    if node in done:
        return None
    path.append(node)
    for parent in edges.get(node, []):
        cycle = _find_cycle(parent, edges, path, done)
        if cycle:
            return cycle
    path.pop()
    done.add(node)
    return None


_CHECKED_ELSEWHERE = (OD.action, OD.leftOperand, OD.operator, OD.profile)


def check_odrl_terms(ctx: LintContext) -> list[Finding]:
    """A misspelt ODRL class or property (``odrl:Ofer``, ``odrl:permision``) silently drops meaning."""
    known = terms.odrl_terms()
    properties = terms.odrl_properties()
    out = []
    reported: set[str] = set()
    for subject, predicate, obj in ctx.graph:
        text = str(predicate)
        if text.startswith(ODRL) and text in known and text not in properties and text not in reported:
            reported.add(text)
            out.append(ctx.finding("unknown-odrl-term", Severity.ERROR,
                                   f"odrl:{text[len(ODRL):]} is an ODRL 2.2 term but not a property",
                                   _suggest(text, properties) or "use an ODRL property here", subject,
                                   URIRef(text)))
            continue
        candidates = [(predicate, "property")]
        if predicate not in _CHECKED_ELSEWHERE and isinstance(obj, URIRef):
            candidates.append((obj, "class" if predicate == RDF.type else "term"))
        for term, role in candidates:
            text = str(term)
            if not text.startswith(ODRL) or text in known or text in reported:
                continue
            if text == ODRL:  # the bare namespace IRI appears in some documents (e.g. odrl:profile)
                continue
            reported.add(text)
            hint = _suggest(text, known) or "use a term of the ODRL 2.2 vocabulary"
            out.append(ctx.finding("unknown-odrl-term", Severity.ERROR,
                                   f"odrl:{text[len(ODRL):]} is not an ODRL 2.2 {role}", hint, subject,
                                   term if isinstance(term, URIRef) else None))
    return out


CHECKS: tuple[Callable[[LintContext], list[Finding]], ...] = (
    check_odrl_terms,
    check_untyped_policies,
    check_profiles,
    check_actions,
    check_operands,
    check_contradictions,
    check_offers,
    check_inherit_cycles,
)


def run_semantic_checks(path: str, graph: rdflib.Graph, locator: Locator) -> list[Finding]:
    """All semantic findings for one parsed file."""
    ctx = LintContext(path, graph, locator)
    findings: list[Finding] = []
    for check in CHECKS:
        findings.extend(check(ctx))
    return findings


__all__ = ["CHECKS", "LintContext", "Value", "classify", "run_semantic_checks", "RDF"]
