"""Turtle / JSON-LD -> rdflib graph -> immutable Policy model.

JSON-LD goes through pyld with the pinned-context loader (nothing is fetched), then into rdflib as
N-Quads; Turtle goes straight into rdflib. Syntax errors carry the line and column where the parser
knows them. The graph is walked exactly once per policy, here; evaluation never sees RDF.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import rdflib
from rdflib import BNode, Literal, URIRef
from rdflib.term import Node

from policies.errors import PolicyError
from policies.jsonld import document_loader
from policies.model import (
    Action,
    Asset,
    Constraint,
    ConstraintNode,
    Duty,
    LogicalConstraint,
    Party,
    Policy,
    Rule,
    RuleKind,
    Term,
)
from policies.vocab import CONFLICT_STRATEGIES, LOGICAL_OPERATORS, ODRL, POLICY_CLASSES

DEFAULT_CONTEXT = "http://www.w3.org/ns/odrl.jsonld"
MAX_NESTING = 64  # logical constraints / duties deeper than this are refused (cycles, hostile input)


class PolicyParseError(PolicyError):
    """The input is not a well-formed ODRL policy; ``line``/``column`` say where, when known."""

    code = "policy_parse_error"

    def __init__(self, message: str, *, line: int | None = None, column: int | None = None,
                 code: str | None = None) -> None:
        where = f" (line {line}, column {column})" if line is not None and column is not None else (
            f" (line {line})" if line is not None else "")
        super().__init__(message + where, code=code)
        self.line = line
        self.column = column


_O = rdflib.Namespace(ODRL)
_RDF_TYPE = rdflib.RDF.type
_RDF_VALUE = rdflib.RDF.value
FUNCTION_PROPERTIES = (
    "informedParty", "informingParty", "compensatedParty", "compensatingParty", "attributedParty",
    "attributingParty", "consentedParty", "consentingParty", "trackedParty", "trackingParty",
)
_PART_OF = URIRef(ODRL + "partOf")
_PROP_IRIS: dict[str, URIRef] = {}  # ODRL property name -> URIRef, built once (URIRef() is not cheap)
_NO_PROPS: dict[Node, list[Node]] = {}
_NO_VALUES: list[Node] = []
_RULE_PROPS = {"permission": "permission", "prohibition": "prohibition", "obligation": "obligation"}


# ---------------------------------------------------------------------------------------------- input


def _sniff(data: str | bytes | dict[str, Any] | list[Any], fmt: str | None) -> str:
    if fmt is not None:
        f = fmt.lower()
        if f in ("turtle", "ttl", "text/turtle"):
            return "turtle"
        if f in ("json-ld", "jsonld", "json", "application/ld+json"):
            return "json-ld"
        raise PolicyParseError(f"unknown policy format {fmt!r} (use 'turtle' or 'json-ld')", code="bad_format")
    if isinstance(data, dict | list):
        return "json-ld"
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    stripped = text.lstrip()
    return "json-ld" if stripped.startswith(("{", "[")) else "turtle"


def _turtle_graph(text: str, base: str | None) -> rdflib.Graph:
    graph = rdflib.Graph()
    try:
        graph.parse(data=text, format="turtle", publicID=base)
    except Exception as exc:  # rdflib raises BadSyntax and a few others
        line, column = _turtle_position(exc, text)
        reason = getattr(exc, "_why", None) or str(exc).splitlines()[0]
        raise PolicyParseError(f"malformed Turtle: {reason}", line=line, column=column) from exc
    return graph


def _turtle_position(exc: Exception, text: str) -> tuple[int | None, int | None]:
    index = getattr(exc, "_i", None)
    argstr = getattr(exc, "_str", None)
    if isinstance(index, int):
        source = argstr if isinstance(argstr, str) else text
        before = source[:index]
        line = before.count("\n") + 1
        column = index - (before.rfind("\n") + 1) + 1
        return line, column
    match = re.search(r"line (\d+)", str(exc))
    return (int(match.group(1)), None) if match else (None, None)


def _load_json(data: str | bytes | dict[str, Any] | list[Any]) -> Any:
    if isinstance(data, dict | list):
        return data
    try:
        return json.loads(data)
    except json.JSONDecodeError as exc:
        raise PolicyParseError(f"malformed JSON: {exc.msg}", line=exc.lineno, column=exc.colno) from exc
    except (RecursionError, UnicodeDecodeError) as exc:
        raise PolicyParseError(f"unreadable JSON: {type(exc).__name__}") from exc


def _unwrap_jsonld_error(exc: Exception) -> PolicyError | None:
    seen = 0
    cur: Any = exc
    while cur is not None and seen < 10:
        if isinstance(cur, PolicyError):
            return cur
        cur = getattr(cur, "cause", None) or cur.__cause__ or cur.__context__
        seen += 1
    return None


def _jsonld_graph(doc: Any, base: str | None) -> rdflib.Graph:
    from pyld import jsonld

    if isinstance(doc, dict) and "@context" not in doc:
        doc = {"@context": DEFAULT_CONTEXT, **doc}
    elif isinstance(doc, list):
        doc = [{"@context": DEFAULT_CONTEXT, **d} if isinstance(d, dict) and "@context" not in d else d
               for d in doc]
    from cachetools import LRUCache
    from pyld.context_resolver import ContextResolver

    loader = document_loader()
    # A resolver with its own cache per document: pyld's shared cache keeps resolved contexts that later
    # @import processing rewrites in place, which corrupts unrelated parses (seen with the DSP contexts).
    options: dict[str, Any] = {"format": "application/n-quads", "documentLoader": loader,
                               "contextResolver": ContextResolver(LRUCache(maxsize=64), loader)}
    if base:
        options["base"] = base
    try:
        nquads = jsonld.to_rdf(doc, options)
    except Exception as exc:
        inner = _unwrap_jsonld_error(exc)
        if inner is not None:
            raise inner from exc
        raise PolicyParseError(f"invalid JSON-LD: {str(exc).splitlines()[0]}") from exc
    graph = rdflib.Graph()
    if nquads:
        try:
            graph.parse(data=nquads, format="nt")
        except Exception:
            # named graphs: merge every graph's triples (a policy is read the same wherever it sits)
            import warnings

            dataset = rdflib.Dataset()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                dataset.parse(data=nquads, format="nquads")
            for s, p, o, _g in dataset.quads((None, None, None, None)):
                graph.add((s, p, o))
    return graph


def to_graph(data: str | bytes | dict[str, Any] | list[Any], *, format: str | None = None,
             base: str | None = None) -> rdflib.Graph:
    """Parse Turtle or JSON-LD into an rdflib graph (pinned contexts only)."""
    fmt = _sniff(data, format)
    if fmt == "turtle":
        if isinstance(data, dict | list):
            raise PolicyParseError("a dict/list cannot be Turtle", code="bad_format")
        try:
            text = data.decode("utf-8") if isinstance(data, bytes) else data
        except UnicodeDecodeError as exc:
            raise PolicyParseError(f"policy is not UTF-8 (byte {exc.start})", code="bad_encoding") from exc
        return _turtle_graph(text, base)
    return _jsonld_graph(_load_json(data), base)


# ---------------------------------------------------------------------------------------- graph walk


class _Walker:
    """Reads policies out of one graph; remembers nothing between calls except the graph."""

    def __init__(self, graph: rdflib.Graph) -> None:
        self.g = graph
        # one pass over the graph; every later question is a dict lookup (10,000-rule policies)
        index: dict[Node, dict[Node, list[Node]]] = {}
        for s, p, o in graph:
            index.setdefault(s, {}).setdefault(p, []).append(o)
        self.index = index

    # -- small helpers
    def values(self, node: Node, prop: Node) -> list[Node]:
        return self.index.get(node, _NO_PROPS).get(prop, _NO_VALUES)

    def has(self, node: Node, prop: Node) -> bool:
        return bool(self.index.get(node, _NO_PROPS).get(prop))

    def objs(self, node: Node, prop: str) -> list[Node]:
        iri = _PROP_IRIS.get(prop)
        if iri is None:
            iri = _PROP_IRIS[prop] = URIRef(ODRL + prop)
        found = self.index.get(node, _NO_PROPS).get(iri, _NO_VALUES)
        return sorted(found, key=_sort_key) if len(found) > 1 else list(found)

    def one(self, node: Node, prop: str) -> Node | None:
        values = self.objs(node, prop)
        return values[0] if values else None

    def iri(self, node: Node | None) -> str | None:
        return str(node) if isinstance(node, URIRef) else None

    def types(self, node: Node) -> set[str]:
        return {str(t) for t in self.values(node, _RDF_TYPE)}

    def uid(self, node: Node) -> str | None:
        if isinstance(node, URIRef):
            return str(node)
        value = self.one(node, "uid")
        return str(value) if value is not None else None

    def is_list(self, node: Node) -> bool:
        return node == rdflib.RDF.nil or self.has(node, rdflib.RDF.first)

    def list_items(self, node: Node) -> list[Node]:
        items: list[Node] = []
        seen = set()
        while node != rdflib.RDF.nil and node not in seen:
            seen.add(node)
            items.extend(self.values(node, rdflib.RDF.first))
            rest = self.values(node, rdflib.RDF.rest)
            if not rest:
                break
            node = rest[0]
        return items

    def expand_list(self, node: Node) -> list[Node]:
        return self.list_items(node) if self.is_list(node) else [node]

    # -- constraints
    def constraints(self, node: Node, prop: str) -> tuple[ConstraintNode, ...]:
        out: list[ConstraintNode] = []
        for value in self.objs(node, prop):
            for item in self.expand_list(value):
                out.append(self.constraint(item))
        return tuple(out)

    def constraint(self, node: Node, depth: int = 0) -> ConstraintNode:
        uid = self.uid(node)
        if depth > MAX_NESTING:
            raise PolicyParseError(f"logical constraints nest deeper than {MAX_NESTING} levels (cycle?)",
                                   code="too_deep")
        for op in LOGICAL_OPERATORS:
            operands = self.objs(node, op)
            if operands:
                items: list[Node] = []
                for value in operands:
                    items.extend(self.expand_list(value))
                if op != "andSequence":
                    items.sort(key=_sort_key)
                return LogicalConstraint(operator=op,  # type: ignore[arg-type]
                                         operands=tuple(self.constraint(i, depth + 1) for i in items),
                                         uid=uid)
        left = self.one(node, "leftOperand")
        operator = self.one(node, "operator")
        if left is None or operator is None:
            raise PolicyParseError(
                f"constraint {uid or '(blank node)'} needs a leftOperand and an operator "
                "(or a logical operator with operands)", code="bad_constraint")
        rights: list[Term] = []
        is_list = False
        raw_rights = self.objs(node, "rightOperand")
        if len(raw_rights) > 1:
            is_list = True
        for value in raw_rights:
            if self.is_list(value):
                is_list = True
                rights.extend(self.term(v) for v in self.list_items(value))
            elif isinstance(value, BNode) and self.has(value, _RDF_VALUE):
                rights.extend(self.term(v) for v in self.values(value, _RDF_VALUE))
            else:
                rights.append(self.term(value))
        reference = self.one(node, "rightOperandReference")
        if not rights and reference is None:
            raise PolicyParseError(f"constraint {uid or '(blank node)'} has no rightOperand",
                                   code="bad_constraint")
        data_type = self.one(node, "dataType") or self.one(node, "datatype")
        unit = self.one(node, "unit")
        status = self.one(node, "status")
        return Constraint(
            left_operand=str(left), operator=str(operator),
            right_operand=tuple(sorted(rights, key=_term_key)) if is_list else tuple(rights),
            right_operand_is_list=is_list,
            right_operand_reference=str(reference) if reference is not None else None,
            unit=str(unit) if unit is not None else None,
            data_type=str(data_type) if data_type is not None else None,
            status=self.term(status) if status is not None else None,
            uid=uid,
        )

    def term(self, node: Node) -> Term:
        if isinstance(node, Literal):
            return Term(value=str(node), datatype=str(node.datatype) if node.datatype else None,
                        language=node.language)
        return Term(value=str(node), is_iri=True)

    # -- rule parts
    def actions(self, node: Node) -> tuple[Action, ...]:
        out = []
        for value in self.objs(node, "action"):
            if isinstance(value, BNode) or self.has(value, _RDF_VALUE):
                inner_values = self.values(value, _RDF_VALUE)
                inner = inner_values[0] if inner_values else self.one(value, "action")
                if inner is None:
                    raise PolicyParseError("an action node needs rdf:value naming the action", code="bad_action")
                out.append(Action(iri=str(inner), refinements=self.constraints(value, "refinement")))
            elif isinstance(value, URIRef):
                out.append(Action(iri=str(value), refinements=self.constraints(value, "refinement")))
            else:
                raise PolicyParseError(f"action {value} is not an IRI", code="bad_action")
        return tuple(out)

    def _collection_parts(self, value: Node) -> tuple[bool, tuple[str, ...], str | None, tuple[ConstraintNode, ...]]:
        types = self.types(value)
        is_collection = bool(types & {ODRL + "AssetCollection", ODRL + "PartyCollection"})
        part_of = tuple(sorted(str(p) for p in self.values(value, _PART_OF)))
        source = self.one(value, "source")
        refinements = self.constraints(value, "refinement")
        if refinements or source is not None:
            is_collection = True
        return is_collection, part_of, (str(source) if source is not None else None), refinements

    def assets(self, node: Node, prop: str = "target") -> tuple[Asset, ...]:
        out = []
        for value in self.objs(node, prop):
            is_col, part_of, source, refinements = self._collection_parts(value)
            out.append(Asset(iri=self.uid(value) if isinstance(value, BNode) else str(value),
                             is_collection=is_col, part_of=part_of, source=source, refinements=refinements))
        return tuple(out)

    def parties(self, node: Node, prop: str) -> tuple[Party, ...]:
        out = []
        for value in self.objs(node, prop):
            is_col, part_of, source, refinements = self._collection_parts(value)
            iri = self.uid(value) if isinstance(value, BNode) else str(value)
            if isinstance(value, BNode) and iri is None:
                # vcard / foaf style party descriptions: fall back to odrl:source or its id
                iri = source
            out.append(Party(iri=iri, is_collection=is_col, part_of=part_of, source=source,
                             refinements=refinements))
        return tuple(out)

    def duty(self, node: Node, depth: int = 0) -> Duty:
        if depth > MAX_NESTING:
            raise PolicyParseError(f"duties nest deeper than {MAX_NESTING} levels (cycle?)", code="too_deep")
        actions = self.actions(node)
        if not actions:
            raise PolicyParseError(f"duty {self.uid(node) or '(blank node)'} has no action", code="bad_duty")
        return Duty(
            actions=actions, uid=self.uid(node), targets=self.assets(node),
            assigners=self.parties(node, "assigner"), assignees=self.parties(node, "assignee"),
            constraints=self.constraints(node, "constraint"),
            consequences=tuple(self.duty(c, depth + 1) for c in self.objs(node, "consequence")),
            functions=tuple(sorted((name, str(v)) for name in FUNCTION_PROPERTIES for v in self.objs(node, name))),
        )

    def rule(self, node: Node, kind: RuleKind, defaults: dict[str, tuple[Any, ...]]) -> Rule:
        # A rule without an action covers every action (SolidLab's "everybody can do everything");
        # the linter flags it, the engine reads it literally.
        actions = self.actions(node) or defaults["actions"]
        return Rule(
            kind=kind, actions=actions, uid=self.uid(node),
            targets=self.assets(node) or defaults["targets"],
            assigners=self.parties(node, "assigner") or defaults["assigners"],
            assignees=self.parties(node, "assignee") or defaults["assignees"],
            constraints=self.constraints(node, "constraint"),
            duties=tuple(self.duty(d) for d in self.objs(node, "duty")) if kind == "permission" else (),
            remedies=tuple(self.duty(d) for d in self.objs(node, "remedy")) if kind == "prohibition" else (),
            consequences=tuple(self.duty(d) for d in self.objs(node, "consequence"))
            if kind == "obligation" else (),
        )

    def policy_nodes(self) -> list[Node]:
        rule_props = {_O[p] for p in ("permission", "prohibition", "obligation", "duty", "remedy", "consequence")}
        policy_props = {_O[p] for p in _RULE_PROPS}
        classes = {URIRef(c) for c in POLICY_CLASSES}
        rule_nodes: set[Node] = set()
        found: set[Node] = set()
        for subject, props in self.index.items():
            for prop, values in props.items():
                if prop in rule_props:
                    rule_nodes.update(values)
                if prop in policy_props:
                    found.add(subject)
                elif prop == _RDF_TYPE and not classes.isdisjoint(values):
                    found.add(subject)
        found = {n for n in found if n not in rule_nodes or not classes.isdisjoint(self.values(n, _RDF_TYPE))}
        return sorted(found, key=_sort_key)

    def policy(self, node: Node) -> Policy:
        uid = self.uid(node)
        if uid is None:
            raise PolicyParseError("a policy needs a uid (an IRI or odrl:uid)", code="missing_uid")
        types = sorted(t for t in self.types(node) if t in POLICY_CLASSES and t != ODRL + "Policy")
        ptype = types[0][len(ODRL):] if types else "Set"
        defaults = {
            "actions": self.actions(node), "targets": self.assets(node),
            "assigners": self.parties(node, "assigner"), "assignees": self.parties(node, "assignee"),
        }
        rules: list[Rule] = []
        for prop, kind in _RULE_PROPS.items():
            for rule_node in self.objs(node, prop):
                rules.append(self.rule(rule_node, kind, defaults))  # type: ignore[arg-type]
        conflict_node = self.one(node, "conflict")
        conflict = None
        if conflict_node is not None:
            conflict = CONFLICT_STRATEGIES.get(str(conflict_node))
            if conflict is None:
                raise PolicyParseError(f"unknown conflict strategy {conflict_node}", code="bad_conflict")
        return Policy(
            uid=uid, type=ptype, rules=tuple(rules),
            profiles=tuple(sorted(str(p) for p in self.objs(node, "profile"))),
            conflict=conflict,
            inherit_from=tuple(sorted(str(p) for p in self.objs(node, "inheritFrom"))),
            part_of=self.part_of_statements(),
        )

    def part_of_statements(self) -> tuple[tuple[str, str], ...]:
        """Every ``<member> odrl:partOf <collection>`` between IRIs in the document."""
        found = set()
        for subject, props in self.index.items():
            if isinstance(subject, URIRef):
                for collection in props.get(_PART_OF, ()):
                    if isinstance(collection, URIRef):
                        found.add((str(subject), str(collection)))
        return tuple(sorted(found))


def _sort_key(node: Node) -> tuple[int, str]:
    return (1 if isinstance(node, BNode) else 0, str(node))


def _term_key(term: Term) -> tuple[bool, str, str]:
    return (term.is_iri, term.value, term.datatype or "")


def _inherit(policies: list[Policy]) -> list[Policy]:
    """Apply odrl:inheritFrom: a child gets its parent's rules (parents in the same document)."""
    by_uid = {p.uid: p for p in policies}
    out = []
    for policy in policies:
        if not policy.inherit_from:
            out.append(policy)
            continue
        rules = list(policy.rules)
        profiles = set(policy.profiles)
        missing = []
        seen = {policy.uid}
        todo = list(policy.inherit_from)
        while todo:
            parent_uid = todo.pop(0)
            if parent_uid in seen:
                continue
            seen.add(parent_uid)
            parent = by_uid.get(parent_uid)
            if parent is None:
                missing.append(parent_uid)
                continue
            rules.extend(r for r in parent.rules if r not in rules)
            profiles.update(parent.profiles)
            todo.extend(parent.inherit_from)
        out.append(Policy(uid=policy.uid, type=policy.type, rules=tuple(rules), profiles=tuple(sorted(profiles)),
                          conflict=policy.conflict, inherit_from=policy.inherit_from,
                          unresolved_parents=tuple(missing), part_of=policy.part_of))
    return out


def policies_from_graph(graph: rdflib.Graph) -> list[Policy]:
    """Every policy in the graph, as immutable models."""
    walker = _Walker(graph)
    return _inherit([walker.policy(node) for node in walker.policy_nodes()])


def parse_policies(data: str | bytes | dict[str, Any] | list[Any], *, format: str | None = None,
                   base: str | None = None) -> list[Policy]:
    """All policies in a Turtle or JSON-LD document (possibly none)."""
    return policies_from_graph(to_graph(data, format=format, base=base))


def parse_policy(data: str | bytes | dict[str, Any] | list[Any], *, format: str | None = None,
                 base: str | None = None) -> Policy:
    """Exactly one policy from a Turtle or JSON-LD document; PolicyParseError otherwise."""
    found = parse_policies(data, format=format, base=base)
    if len(found) != 1:
        uids = ", ".join(p.uid for p in found[:5])
        raise PolicyParseError(
            f"expected exactly one policy, found {len(found)}" + (f" ({uids})" if uids else ""),
            code="policy_count")
    return found[0]


def load_policy_file(path: str | os.PathLike[str]) -> Policy:
    """Read one policy from a .ttl, .jsonld or .json file."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise PolicyParseError(f"cannot read policy file {p}: {exc.strerror}", code="unreadable") from exc
    suffix = p.suffix.lower()
    fmt = "turtle" if suffix in (".ttl", ".turtle") else "json-ld" if suffix in (".jsonld", ".json") else None
    return parse_policy(data, format=fmt, base=p.resolve().as_uri())


def iter_terms(nodes: Iterable[ConstraintNode]) -> Iterable[Constraint]:
    """Every atomic constraint below ``nodes`` (depth first)."""
    for node in nodes:
        if isinstance(node, LogicalConstraint):
            yield from iter_terms(node.operands)
        else:
            yield node


__all__ = ["PolicyParseError", "iter_terms", "load_policy_file", "parse_policies", "parse_policy",
           "policies_from_graph", "to_graph"]
