"""Pure readings of an agreement policy that the data plane acts on: count limits, field rules, deadlines.

WHY separate and pure: these decide what gets released and when a duty falls due; keeping them free of
I/O makes each rule testable on its own and lets the monitor and the request path share them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from connector.dataplane.transform import FieldRule
from policies import Constraint, DutyReport, LogicalConstraint, Policy
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


def _param(parameters: Mapping[str, Any], name: str) -> Any:
    for key, value in parameters.items():
        if _local(key) == name:
            return value
    return None


def field_rule(duties: Iterable[DutyReport], asset_properties: Mapping[str, Any]) -> FieldRule | None:
    """Fields the provider must anonymise before release, from the binding ``anonymize`` duties."""
    fields: set[str] = set()
    for duty in duties:
        if duty.action not in ANONYMIZE:
            continue
        value = _param(duty.parameters, "fields")
        if isinstance(value, str):
            fields.add(value)
        elif isinstance(value, list | tuple | set | frozenset):
            fields.update(str(v) for v in value)
    if not fields:
        return None
    mode = str(asset_properties.get("pactum:anonymization") or asset_properties.get("anonymization") or "mask")
    return FieldRule(frozenset(fields), "drop" if mode == "drop" else "mask")


def delete_deadline(duties: Iterable[DutyReport], agreement_time: datetime) -> datetime | None:
    """When the received copy must be gone: the earliest elapsedTime/dateTime bound of a ``delete`` duty."""
    deadlines: list[datetime] = []
    for duty in duties:
        if duty.action not in DELETE:
            continue
        elapsed = _param(duty.parameters, "elapsedTime")
        if elapsed is not None:
            try:
                deadlines.append(agreement_time + (elapsed if isinstance(elapsed, timedelta)
                                                   else parse_duration(str(elapsed))))
            except (ValueError, TypeError, ArithmeticError):
                pass
        when = _param(duty.parameters, "dateTime")
        if when is not None:
            try:
                deadlines.append(when if isinstance(when, datetime) else parse_datetime(str(when)))
            except (ValueError, TypeError):
                pass
    return min(deadlines) if deadlines else None


def inform_duties(duties: Iterable[DutyReport]) -> list[DutyReport]:
    """Duties to inform/notify the provider of a use (fulfilled by the consumer's signed receipt)."""
    return [d for d in duties if d.action in INFORM]


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
