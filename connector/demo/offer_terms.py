"""Read what an offer in a received catalog says, the way a consumer's operator would before spending it.

WHY from the catalog: the demo must not know the library policies' numbers in advance; it spends exactly
the uses the published offer grants (``count lteq N`` -> N, ``count lt N`` -> N-1), so the library policy
stays as written and the demo still shows the refusal of use N+1.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

ODRL = "http://www.w3.org/ns/odrl/2/"


def _local(term: Any) -> str:
    """``odrl:count``, ``count`` and the full IRI all name the same term."""
    text = str(term.get("@id", "") if isinstance(term, Mapping) else term)
    return text.removeprefix(ODRL).removeprefix("odrl:")


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _atomic_constraints(node: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    """Constraints of a rule; ``and`` groups are looked into (every part binds), ``or``/``xone`` are not."""
    for constraint in _as_list(node.get("constraint") or node.get("odrl:constraint")):
        if not isinstance(constraint, Mapping):
            continue
        if "leftOperand" in constraint or "odrl:leftOperand" in constraint:
            yield constraint
        elif "and" in constraint:
            yield from _atomic_constraints({"constraint": constraint["and"]})


def _number(value: Any) -> int | None:
    for item in _as_list(value):
        raw = item.get("@value") if isinstance(item, Mapping) else item
        try:
            return int(Decimal(str(raw)))
        except (InvalidOperation, ValueError):
            continue
    return None


def use_limit(offer: Mapping[str, Any]) -> int | None:
    """The number of uses the offer's permissions allow in all (the smallest bound), or None if unbounded."""
    limits = []
    for permission in _as_list(offer.get("permission") or offer.get("odrl:permission")):
        if not isinstance(permission, Mapping):
            continue
        for constraint in _atomic_constraints(permission):
            if _local(constraint.get("leftOperand", constraint.get("odrl:leftOperand"))) != "count":
                continue
            value = _number(constraint.get("rightOperand", constraint.get("odrl:rightOperand")))
            operator = _local(constraint.get("operator", constraint.get("odrl:operator")))
            if value is None:
                continue
            if operator in ("lteq", "eq"):
                limits.append(value)
            elif operator == "lt":
                limits.append(value - 1)
    return max(min(limits), 0) if limits else None
