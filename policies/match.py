"""Policy matching for negotiation: canonical form, equality, and "at least as strict".

The canonical form is taken from the model (which already came out of the RDF graph): blank nodes
and identifiers (policy/rule/constraint uids) carry no meaning and are dropped, the policy type
(Offer / Agreement / Set) is dropped, rules are split into atomic rules (one action, target, assignee,
assigner each), typed literals are written in their canonical lexical form, and every collection whose
order ODRL does not define (rules, constraints, and/or/xone operands, set-valued right operands) is
sorted. ``andSequence`` keeps its order. The hash is the hex SHA-256 of the canonical JSON (RFC 8785).
"""

from __future__ import annotations

import hashlib
import itertools
from decimal import Decimal
from typing import Any

from policies.model import (
    Action,
    Asset,
    ConstraintNode,
    Duty,
    LogicalConstraint,
    Party,
    Policy,
    Rule,
    Term,
)
from policies.values import apply_operator, format_duration, normalise_right, operator_name, term_to_python
from policies.vocab import action_ancestors

Canon = Any


def _dumps(value: Canon) -> str:
    import rfc8785

    return rfc8785.dumps(value).decode("utf-8")


def _sorted(items: list[Canon]) -> list[Canon]:
    return sorted(items, key=_dumps)


def _canon_term(term: Term, data_type: str | None) -> Canon:
    if term.is_iri:
        return {"@id": term.value}
    try:
        value = normalise_right(term_to_python(term, data_type))
    except Exception:
        value = term.value
    if isinstance(value, Decimal):
        text = format(value.normalize(), "f")
    elif hasattr(value, "isoformat"):
        text = value.isoformat()
    elif hasattr(value, "total_seconds"):
        text = format_duration(value)
    else:
        text = str(value)
    out = {"@value": text}
    dt = term.datatype or data_type
    if dt and not term.is_iri:
        out["@type"] = dt
    if term.language:
        out["@language"] = term.language.lower()
    return out


def canon_constraint(node: ConstraintNode) -> Canon:
    """Canonical JSON of one constraint (uids dropped, unordered parts sorted)."""
    if isinstance(node, LogicalConstraint):
        operands = [canon_constraint(c) for c in node.operands]
        if node.operator != "andSequence":
            operands = _sorted(operands)
        return {"logical": node.operator, "operands": operands}
    rights = [_canon_term(t, node.data_type) for t in node.right_operand]
    out: dict[str, Any] = {"leftOperand": node.left_operand, "operator": node.operator,
                           "rightOperand": _sorted(rights) if node.right_operand_is_list else rights}
    if node.right_operand_is_list:
        out["list"] = True
    for key, value in (("rightOperandReference", node.right_operand_reference), ("unit", node.unit),
                       ("dataType", node.data_type)):
        if value is not None:
            out[key] = value
    if node.status is not None:
        out["status"] = _canon_term(node.status, None)
    return out


def _canon_constraints(nodes: tuple[ConstraintNode, ...]) -> list[Canon]:
    return _sorted([canon_constraint(n) for n in nodes])


def _canon_action(action: Action) -> Canon:
    out: dict[str, Any] = {"action": action.iri}
    if action.refinements:
        out["refinement"] = _canon_constraints(action.refinements)
    return out


def _canon_entity(entity: Asset | Party | None) -> Canon:
    if entity is None:
        return None
    out: dict[str, Any] = {"id": entity.iri}
    if entity.is_collection:
        out["collection"] = True
    if entity.part_of:
        out["partOf"] = sorted(entity.part_of)
    if entity.source:
        out["source"] = entity.source
    if entity.refinements:
        out["refinement"] = _canon_constraints(entity.refinements)
    return out


def _atomic(actions: tuple[Action, ...], targets: tuple[Asset, ...], assigners: tuple[Party, ...],
            assignees: tuple[Party, ...]) -> list[tuple[Action | None, Asset | None, Party | None, Party | None]]:
    return list(itertools.product(actions or (None,), targets or (None,), assigners or (None,),
                                  assignees or (None,)))


def _canon_duty(duty: Duty) -> list[Canon]:
    out = []
    for action, target, assigner, assignee in _atomic(duty.actions, duty.targets, duty.assigners, duty.assignees):
        item: dict[str, Any] = {
            "action": _canon_action(action) if action else None, "target": _canon_entity(target),
            "assigner": _canon_entity(assigner), "assignee": _canon_entity(assignee),
            "constraint": _canon_constraints(duty.constraints),
            "consequence": _sorted([c for d in duty.consequences for c in _canon_duty(d)]),
        }
        if duty.functions:
            item["functions"] = sorted([list(f) for f in duty.functions])
        out.append(item)
    return out


def canon_rules(rule: Rule) -> list[Canon]:
    """The atomic rules one rule stands for, each in canonical JSON."""
    out = []
    for action, target, assigner, assignee in _atomic(rule.actions, rule.targets, rule.assigners, rule.assignees):
        out.append({
            "kind": rule.kind, "action": _canon_action(action) if action else None,
            "target": _canon_entity(target), "assigner": _canon_entity(assigner),
            "assignee": _canon_entity(assignee), "constraint": _canon_constraints(rule.constraints),
            "duty": _sorted([c for d in rule.duties for c in _canon_duty(d)]),
            "remedy": _sorted([c for d in rule.remedies for c in _canon_duty(d)]),
            "consequence": _sorted([c for d in rule.consequences for c in _canon_duty(d)]),
        })
    return out


def canonical_form(policy: Policy) -> dict[str, Any]:
    """The policy's meaning as canonical JSON (see module docstring for what is normalised away)."""
    rules = {_dumps(c): c for r in policy.rules for c in canon_rules(r)}
    form: dict[str, Any] = {
        "rules": [rules[k] for k in sorted(rules)],
        "profiles": sorted(policy.profiles),
        "conflict": policy.conflict or "invalid",
        "inheritFrom": sorted(policy.inherit_from),
    }
    if policy.part_of:
        form["partOf"] = [list(pair) for pair in sorted(set(policy.part_of))]
    return form


def canonical_hash(policy: Policy) -> str:
    """Hex SHA-256 of the canonical form; equal policies get the same hash."""
    cached = policy._cache.get("canonical_hash")
    if cached is None:
        cached = hashlib.sha256(_dumps(canonical_form(policy)).encode("utf-8")).hexdigest()
        policy._cache["canonical_hash"] = cached
    return str(cached)


def policies_equal(a: Policy, b: Policy) -> bool:
    """Same meaning (same canonical form), regardless of uids, blank nodes, syntax and order."""
    return canonical_hash(a) == canonical_hash(b)


# ------------------------------------------------------------------------------------------ strictness


def _implies(req: Canon, off: Canon) -> bool:
    """Does requested constraint ``req`` admit only situations that offered constraint ``off`` admits?"""
    if _dumps(req) == _dumps(off):
        return True
    if "logical" in req or "logical" in off:
        if "logical" in off and off["logical"] in ("and", "andSequence"):
            return all(_implies(req, o) for o in off["operands"])
        if "logical" in off and off["logical"] == "or":
            return any(_implies(req, o) for o in off["operands"])
        if "logical" in req and req["logical"] in ("and", "andSequence"):
            return any(_implies(r, off) for r in req["operands"])
        return False
    if req["leftOperand"] != off["leftOperand"] or req.get("unit") != off.get("unit"):
        return False
    r_op, o_op = operator_name(req["operator"]), operator_name(off["operator"])
    r_vals, o_vals = _values(req), _values(off)
    if r_op is None or o_op is None or r_vals is None or o_vals is None:
        return False
    try:
        if o_op in ("lt", "lteq", "gt", "gteq") and len(o_vals) == 1:
            if r_op in ("lt", "lteq", "gt", "gteq") and len(r_vals) == 1:
                same_side = (r_op in ("lt", "lteq")) == (o_op in ("lt", "lteq"))
                if not same_side:
                    return False
                if r_vals[0] == o_vals[0]:
                    return r_op == o_op or r_op in ("lt", "gt")
                return bool(r_vals[0] < o_vals[0]) if o_op in ("lt", "lteq") else bool(r_vals[0] > o_vals[0])
            if r_op == "eq" and len(r_vals) == 1:
                return apply_operator(o_op, r_vals[0], tuple(o_vals), is_list=False, broader=lambda v: ()) is True
            return False
        if o_op in ("isAnyOf", "isPartOf", "isA", "eq") and r_op in ("isAnyOf", "isPartOf", "isA", "eq"):
            return (r_op == o_op or r_op == "eq" or (r_op, o_op) == ("isAnyOf", "eq")) and set(
                map(str, r_vals)) <= set(map(str, o_vals)) and (o_op != "eq" or len(r_vals) == 1)
        if o_op == "isNoneOf" and r_op == "isNoneOf":
            return set(map(str, r_vals)) >= set(map(str, o_vals))
        if o_op == "isAllOf" and r_op == "isAllOf":
            return set(map(str, r_vals)) >= set(map(str, o_vals))
    except TypeError:
        return False
    return False


def _values(c: Canon) -> list[Any] | None:
    out = []
    for v in c["rightOperand"]:
        if "@id" in v:
            out.append(v["@id"])
            continue
        term = Term(value=v["@value"], datatype=v.get("@type"))
        try:
            out.append(normalise_right(term_to_python(term)))
        except Exception:
            return None
    return out


def _constraints_at_least(req: list[Canon], off: list[Canon]) -> bool:
    """Every offered constraint is implied by some requested constraint."""
    return all(any(_implies(r, o) for r in req) for o in off)


def _duties_at_least(req: list[Canon], off: list[Canon]) -> bool:
    req_keys = {_dumps(d) for d in req}
    return all(_dumps(d) in req_keys for d in off)


def _covers(req: Canon, off: Canon) -> bool:
    """Requested permission ``req`` asks for no more than offered permission ``off`` grants."""
    if off["action"] is not None:
        if req["action"] is None:
            return False
        if off["action"]["action"] not in action_ancestors(req["action"]["action"]):
            return False
        if not _constraints_at_least(req["action"].get("refinement", []), off["action"].get("refinement", [])):
            return False
    for key in ("target", "assigner", "assignee"):
        if off[key] is not None and _dumps(req[key]) != _dumps(off[key]):
            return False
    return _constraints_at_least(req["constraint"], off["constraint"]) and _duties_at_least(req["duty"], off["duty"])


def _restricts(req: Canon, off: Canon) -> bool:
    """Requested prohibition/obligation ``req`` forbids or demands at least what ``off`` does."""
    if _dumps(req) == _dumps(off):
        return True
    if req["kind"] != off["kind"] or req["kind"] != "prohibition":
        return False
    if req["action"] is not None and (off["action"] is None or req["action"]["action"] not in
                                      action_ancestors(off["action"]["action"])):
        return False
    for key in ("target", "assigner", "assignee"):
        if req[key] is not None and _dumps(req[key]) != _dumps(off[key]):
            return False
    # a prohibition with fewer/looser conditions forbids more
    return _constraints_at_least(off["constraint"], req["constraint"]) and _duties_at_least(req["remedy"],
                                                                                           off["remedy"])


def is_at_least_as_strict(requested: Policy, offered: Policy) -> bool:
    """True when ``requested`` grants nothing ``offered`` does not, and keeps every prohibition and duty.

    Used by the provider during negotiation: a consumer may narrow an offer (fewer actions, tighter
    constraints, extra duties) but never widen it.
    """
    if sorted(requested.profiles) != sorted(offered.profiles) and not set(offered.profiles) <= set(
            requested.profiles):
        return False
    req_rules = canonical_form(requested)["rules"]
    off_rules = canonical_form(offered)["rules"]
    req_perms = [r for r in req_rules if r["kind"] == "permission"]
    off_perms = [r for r in off_rules if r["kind"] == "permission"]
    if not all(any(_covers(r, o) for o in off_perms) for r in req_perms):
        return False
    for o in off_rules:
        if o["kind"] in ("prohibition", "obligation") and not any(_restricts(r, o) for r in req_rules):
            return False
    offered_conflict = offered.conflict or "invalid"
    requested_conflict = requested.conflict or "invalid"
    return not (requested_conflict == "perm" and offered_conflict != "perm")


__all__ = ["canonical_form", "canonical_hash", "is_at_least_as_strict", "policies_equal"]
