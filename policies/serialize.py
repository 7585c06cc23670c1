"""Policy model -> compact ODRL JSON-LD, in the shape DSP 2025-1 messages carry.

The context is the DSP 2025-1 context plus its ODRL profile context (both pinned), so the terms DSP
defines (permission, action, constraint, leftOperand, eq, ...) are unprefixed; ODRL terms outside the
DSP profile (refinement, remedy, consequence, conflict, ...) are written ``odrl:``-prefixed, which the
same context resolves. The output parses back to an equal policy (same canonical hash).
"""

from __future__ import annotations

from typing import Any

from policies.model import Action, Asset, ConstraintNode, Duty, LogicalConstraint, Party, Policy, Rule, Term
from policies.vocab import ODRL, RDF

DSP_CONTEXT = "https://w3id.org/dspace/2025/1/context.jsonld"
DSP_ODRL_PROFILE = "https://w3id.org/dspace/2025/1/odrl-profile.jsonld"
CONTEXT = [DSP_CONTEXT, DSP_ODRL_PROFILE]

# Terms the DSP ODRL profile context defines; anything else from ODRL gets the odrl: prefix.
_DSP_TERMS = frozenset(
    "use eq gt gteq lt lteq neq isA hasPart isAllOf isAnyOf isNoneOf isPartOf or xone and andSequence "
    "Offer Agreement Set Policy Permission Prohibition Duty Constraint".split()
)


def _iri(iri: str) -> str:
    if iri.startswith(ODRL):
        local = iri[len(ODRL):]
        return local if local in _DSP_TERMS else "odrl:" + local
    return iri


def _term(term: Term) -> Any:
    if term.is_iri:
        return {"@id": term.value}
    out: dict[str, Any] = {"@value": term.value}
    if term.datatype:
        out["@type"] = term.datatype
    if term.language:
        out["@language"] = term.language
    return out


def constraint_to_jsonld(node: ConstraintNode) -> dict[str, Any]:
    """One constraint (atomic or logical) as compact JSON-LD."""
    out: dict[str, Any] = {}
    if node.uid:
        out["@id"] = node.uid
    if isinstance(node, LogicalConstraint):
        operands = [constraint_to_jsonld(c) for c in node.operands]
        out[node.operator] = {"@list": operands} if node.operator == "andSequence" else operands
        return out
    out["leftOperand"] = _iri(node.left_operand)
    out["operator"] = _iri(node.operator)
    rights = [_term(t) for t in node.right_operand]
    if rights:
        if node.right_operand_is_list and len(rights) == 1:
            out["rightOperand"] = {"@list": rights}
        else:
            out["rightOperand"] = rights if len(rights) > 1 else rights[0]
    if node.right_operand_reference:
        out["odrl:rightOperandReference"] = {"@id": node.right_operand_reference}
    if node.unit:
        out["odrl:unit"] = {"@id": node.unit}
    if node.data_type:
        out["odrl:dataType"] = {"@id": node.data_type}
    if node.status is not None:
        out["odrl:status"] = _term(node.status)
    return out


def _constraints(nodes: tuple[ConstraintNode, ...]) -> list[dict[str, Any]]:
    return [constraint_to_jsonld(n) for n in nodes]


def _action(action: Action) -> Any:
    if not action.refinements:
        return _iri(action.iri)
    return {RDF + "value": {"@id": _iri(action.iri)}, "odrl:refinement": _constraints(action.refinements)}


def _entity(entity: Asset | Party, collection_type: str) -> Any:
    if not (entity.is_collection or entity.part_of or entity.refinements or entity.source):
        return entity.iri
    out: dict[str, Any] = {}
    if entity.iri:
        out["@id"] = entity.iri
    if entity.is_collection:
        out["@type"] = "odrl:" + collection_type
    if entity.part_of:
        out["odrl:partOf"] = [{"@id": p} for p in entity.part_of]
    if entity.source:
        out["odrl:source"] = {"@id": entity.source}
    if entity.refinements:
        out["odrl:refinement"] = _constraints(entity.refinements)
    return out


def _parts(out: dict[str, Any], actions: tuple[Action, ...], targets: tuple[Asset, ...],
           assigners: tuple[Party, ...], assignees: tuple[Party, ...], hoisted: frozenset[str] = frozenset()) -> None:
    if actions:
        acts = [_action(a) for a in actions]
        out["action"] = acts if len(acts) > 1 else acts[0]
    for key, items, ctype in (("target", targets, "AssetCollection"), ("assigner", assigners, "PartyCollection"),
                              ("assignee", assignees, "PartyCollection")):
        if items and key not in hoisted:
            values = [_entity(e, ctype) for e in items]
            out[key] = values if len(values) > 1 else values[0]


def _duty(duty: Duty) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if duty.uid:
        out["@id"] = duty.uid
    _parts(out, duty.actions, duty.targets, duty.assigners, duty.assignees)
    if duty.constraints:
        out["constraint"] = _constraints(duty.constraints)
    if duty.consequences:
        out["odrl:consequence"] = [_duty(c) for c in duty.consequences]
    for name, value in duty.functions:
        out.setdefault("odrl:" + name, []).append({"@id": value})
    return out


def _rule(rule: Rule, hoisted: frozenset[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if rule.uid:
        out["@id"] = rule.uid
    _parts(out, rule.actions, rule.targets, rule.assigners, rule.assignees, hoisted)
    if rule.constraints:
        out["constraint"] = _constraints(rule.constraints)
    if rule.duties:
        out["duty"] = [_duty(d) for d in rule.duties]
    if rule.remedies:
        out["odrl:remedy"] = [_duty(d) for d in rule.remedies]
    if rule.consequences:
        out["odrl:consequence"] = [_duty(d) for d in rule.consequences]
    return out


def _shared(policy: Policy, key: str) -> str | None:
    """The one plain IRI every rule has for ``key`` (target/assigner/assignee), if there is one."""
    values = set()
    for rule in policy.rules:
        items = getattr(rule, key + "s")
        if len(items) != 1:
            return None
        item = items[0]
        if item.iri is None or item.is_collection or item.part_of or item.refinements or item.source:
            return None
        values.add(item.iri)
    return values.pop() if len(values) == 1 else None


def policy_to_jsonld(policy: Policy, *, omit_target: bool = False) -> dict[str, Any]:
    """Compact ODRL JSON-LD (DSP 2025-1 context); parse_policy() of it gives an equal policy.

    A target, assigner or assignee shared by every rule is written once at policy level, as DSP's
    Agreement requires (``"target": "<iri>"``). ``omit_target`` drops that policy-level target, for a
    catalog Offer (DSP forbids a target there: the dataset is the target).
    """
    out: dict[str, Any] = {"@context": list(CONTEXT), "@id": policy.uid, "@type": policy.type}
    if policy.profiles:
        out["profile"] = list(policy.profiles)
    hoisted = set()
    for key in ("target", "assigner", "assignee"):
        shared = _shared(policy, key)
        if shared is not None:
            hoisted.add(key)
            if not (key == "target" and omit_target):
                out[key] = shared
    for kind in ("permission", "prohibition", "obligation"):
        rules = [_rule(r, frozenset(hoisted)) for r in policy.rules if r.kind == kind]
        if rules:
            out[kind] = rules
    if policy.conflict:
        out["odrl:conflict"] = {"@id": "odrl:" + policy.conflict}
    if policy.inherit_from:
        out["odrl:inheritFrom"] = [{"@id": p} for p in policy.inherit_from]
    if policy.part_of:
        # membership statements about assets/parties, kept as their own nodes (JSON-LD 1.1 @included)
        members: dict[str, list[dict[str, str]]] = {}
        for member, collection in policy.part_of:
            members.setdefault(member, []).append({"@id": collection})
        out["@included"] = [{"@id": m, "odrl:partOf": cs} for m, cs in members.items()]
    return out
