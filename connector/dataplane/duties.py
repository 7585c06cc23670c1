"""Pure readings of an agreement policy that the data plane acts on: count limits, field rules, deadlines.

WHY separate and pure: these decide what gets released and when a duty falls due; keeping them free of
I/O makes each rule testable on its own and lets the monitor and the request path share them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from connector.dataplane.transform import FieldRule
from policies import Constraint, Duty, LogicalConstraint, Policy
from policies.values import parse_datetime, parse_duration

ODRL = "http://www.w3.org/ns/odrl/2/"
ANONYMIZE = ("anonymize", "odrl:anonymize", ODRL + "anonymize")
DELETE = ("delete", "odrl:delete", ODRL + "delete")
INFORM = ("inform", "odrl:inform", ODRL + "inform", "notify", "odrl:notify")


def _local(name: str) -> str:
    return name.rsplit("#", 1)[-1].rsplit("/", 1)[-1].rsplit(":", 1)[-1]


def _atomic(nodes: Iterable[Constraint | LogicalConstraint]) -> Iterable[tuple[Constraint, bool]]:
    """Atomic constraints with whether they bind unconditionally (not under or/xone)."""
    for node in nodes:
        if isinstance(node, LogicalConstraint):
            binding = node.operator in ("and", "andSequence")
            for child, child_binding in _atomic(node.operands):
                yield child, binding and child_binding
        else:
            yield node, True


def count_limit(policy: Policy) -> int | None:
    """The smallest number of uses the permissions allow (``count lteq N`` -> N, ``lt N`` -> N-1), if any."""
    limits: list[int] = []
    for rule in policy.permissions:
        for constraint, binding in _atomic(rule.constraints):
            if not binding or _local(constraint.left_operand) != "count" or not constraint.right_operand:
                continue
            try:
                value = int(Decimal(constraint.right_operand[0].value))
            except (InvalidOperation, ValueError):
                continue
            op = _local(constraint.operator)
            if op in ("lteq", "eq"):
                limits.append(value)
            elif op == "lt":
                limits.append(value - 1)
    return max(min(limits), 0) if limits else None


def duties_of(policy: Policy, actions: tuple[str, ...]) -> list[Duty]:
    """Every duty (of a permission) or obligation in the policy whose action is one of ``actions``.

    Read from the policy itself, not from an evaluation, so a duty is known even while the state of the
    world would not permit use (a deadline stays a deadline).
    """
    wanted = {_local(a) for a in actions}
    found: list[Duty] = []
    for rule in policy.rules:
        for duty in rule.duties:
            if _local(duty.action) in wanted:
                found.append(duty)
        if rule.kind == "obligation" and _local(rule.action) in wanted:
            found.append(Duty(actions=rule.actions, uid=rule.uid, constraints=rule.constraints))
    return found


def duty_parameters(duty: Duty) -> dict[str, list[str]]:
    """Left operand (local name) -> right operand values, from the action's refinements and the duty's
    constraints (``xb:fields isAllOf ("name" "email")`` -> ``{"fields": ["name", "email"]}``)."""
    params: dict[str, list[str]] = {}
    nodes: list[Constraint | LogicalConstraint] = list(duty.constraints)
    for action in duty.actions:
        nodes.extend(action.refinements)
    for constraint, _binding in _atomic(nodes):
        params.setdefault(_local(constraint.left_operand), []).extend(t.value for t in constraint.right_operand)
    return params


def field_rule(policy: Policy, asset_properties: Mapping[str, Any]) -> FieldRule | None:
    """Fields the provider must anonymise before release, from the policy's ``anonymize`` duties."""
    fields: set[str] = set()
    for duty in duties_of(policy, ANONYMIZE):
        fields.update(duty_parameters(duty).get("fields", []))
    if not fields:
        return None
    mode = str(asset_properties.get("pactum:anonymization") or asset_properties.get("anonymization") or "mask")
    return FieldRule(frozenset(fields), "drop" if mode == "drop" else "mask")


def delete_deadline(policy: Policy, agreement_time: datetime) -> datetime | None:
    """When the received copy must be gone: the earliest elapsedTime/dateTime bound of a ``delete`` duty."""
    deadlines: list[datetime] = []
    for duty in duties_of(policy, DELETE):
        params = duty_parameters(duty)
        for raw in params.get("elapsedTime", []):
            try:
                deadlines.append(agreement_time + parse_duration(raw))
            except (ValueError, TypeError, ArithmeticError):
                continue
        for raw in params.get("dateTime", []):
            try:
                deadlines.append(parse_datetime(raw))
            except (ValueError, TypeError):
                continue
    return min(deadlines) if deadlines else None


def inform_duties(policy: Policy) -> list[Duty]:
    """Duties to inform/notify the provider of a use (fulfilled by the consumer's signed receipt)."""
    return duties_of(policy, INFORM)


def time_bounds(policy: Policy, agreement_time: datetime) -> list[datetime]:
    """Every instant at which the permissions may stop holding: dateTime upper bounds, elapsedTime ends.

    The policy monitor sleeps until the earliest future one instead of polling.
    """
    bounds: list[datetime] = []
    for rule in policy.permissions:
        for constraint, _binding in _atomic(rule.constraints):
            name, op = _local(constraint.left_operand), _local(constraint.operator)
            if op not in ("lt", "lteq", "eq") or not constraint.right_operand:
                continue
            raw = constraint.right_operand[0].value
            try:
                if name == "dateTime":
                    bounds.append(parse_datetime(raw))
                elif name == "elapsedTime":
                    bounds.append(agreement_time + parse_duration(raw))
            except (ValueError, TypeError, ArithmeticError):
                continue
    return bounds
