"""Left operands: where each value comes from. Core ODRL operands here; profiles add their own.

A resolver takes the evaluation context and returns the value, or ``MISSING`` when the request and the
state of the world do not say; a missing value never satisfies a constraint.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from policies.facts import MISSING, EvalContext
from policies.vocab import CORE_LEFT_OPERANDS, ODRL

Resolver = Callable[[EvalContext], Any]


@dataclass(frozen=True)
class LeftOperandSpec:
    """How one left operand is decided: its resolver, and optional value groups and ordering.

    ``groups`` maps a value to the named groups it belongs to ("DE" -> {"EU", "EEA", "adequate"}),
    which makes isPartOf / isAnyOf / isA work on group names. ``ordering`` lists values from low to
    high, which makes lt/gt meaningful on ordinal values ("general" < "important" < "core").
    """

    iri: str
    resolve: Resolver
    groups: Mapping[str, frozenset[str]] = field(default_factory=lambda: MappingProxyType({}))
    ordering: tuple[str, ...] = ()
    description: str = ""


def _fact(name: str) -> Resolver:
    def resolve(ctx: EvalContext) -> Any:
        return ctx.lookup(name)

    return resolve


def _date_time(ctx: EvalContext) -> Any:
    value = ctx.lookup("dateTime")
    return ctx.now if value is MISSING else value


def _elapsed_time(ctx: EvalContext) -> Any:
    value = ctx.lookup("elapsedTime")
    if value is not MISSING:
        return value
    start = ctx.state.agreement_time
    return MISSING if start is None else ctx.now - start


def _count(ctx: EvalContext) -> Any:
    value = ctx.lookup("count")
    if value is not MISSING:
        return value
    counters = ctx.state.counters
    rule_uid = ctx.rule_uid
    if rule_uid is not None and rule_uid in counters:
        return counters[rule_uid]
    target = ctx.request.target
    if target is not None and target in counters:
        return counters[target]
    return MISSING


def _purpose(ctx: EvalContext) -> Any:
    value = ctx.lookup("purpose")
    if value is MISSING and ctx.request.purpose is not None:
        return ctx.request.purpose
    return value


def _recipient(ctx: EvalContext) -> Any:
    value = ctx.lookup("recipient")
    if value is MISSING and ctx.request.assignee is not None:
        return ctx.request.assignee
    return value


_SPECIAL: dict[str, tuple[Resolver, str]] = {
    "dateTime": (_date_time, "state.now (or a dateTime fact)"),
    "elapsedTime": (_elapsed_time, "now - state.agreement_time (or an elapsedTime fact)"),
    "count": (_count, "state.counters[rule uid] or [target] (or a count fact)"),
    "purpose": (_purpose, "request.purpose (or a purpose fact)"),
    "recipient": (_recipient, "request.assignee (or a recipient fact)"),
}


def _core_specs() -> dict[str, LeftOperandSpec]:
    specs = {}
    for iri in CORE_LEFT_OPERANDS:
        name = iri[len(ODRL):]
        resolver, where = _SPECIAL.get(name, (_fact(name), f"request.extra / state.facts ['{name}']"))
        specs[iri] = LeftOperandSpec(iri=iri, resolve=resolver, description=where)
    return specs


CORE_SPECS: Mapping[str, LeftOperandSpec] = MappingProxyType(_core_specs())
