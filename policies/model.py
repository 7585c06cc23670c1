"""The immutable policy model: what an ODRL 2.2 policy says, independent of how it was written.

Everything here is a frozen dataclass of tuples and strings, so a parsed policy can be shared between
threads, hashed, cached, and compared without ever touching RDF again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

RuleKind = Literal["permission", "prohibition", "obligation"]


@dataclass(frozen=True)
class Term:
    """One RDF term as written in the policy: an IRI or a literal with its datatype (lexical form kept)."""

    value: str
    datatype: str | None = None  # None for IRIs
    language: str | None = None
    is_iri: bool = False

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class Constraint:
    """An atomic constraint (or refinement): ``leftOperand operator rightOperand``."""

    left_operand: str
    operator: str
    right_operand: tuple[Term, ...] = ()
    right_operand_is_list: bool = False  # written as a list/array (matters for set operators)
    right_operand_reference: str | None = None
    unit: str | None = None
    data_type: str | None = None
    status: Term | None = None
    uid: str | None = None


@dataclass(frozen=True)
class LogicalConstraint:
    """``or`` / ``xone`` / ``and`` / ``andSequence`` over other constraints."""

    operator: Literal["or", "xone", "and", "andSequence"]
    operands: tuple[ConstraintNode, ...]
    uid: str | None = None


ConstraintNode = Constraint | LogicalConstraint


@dataclass(frozen=True)
class Action:
    """An action IRI with its refinements (constraints that narrow the action itself)."""

    iri: str
    refinements: tuple[ConstraintNode, ...] = ()


@dataclass(frozen=True)
class Asset:
    """A target: a single asset or an AssetCollection (possibly refined)."""

    iri: str | None
    is_collection: bool = False
    part_of: tuple[str, ...] = ()
    source: str | None = None
    refinements: tuple[ConstraintNode, ...] = ()


@dataclass(frozen=True)
class Party:
    """An assigner/assignee: a single party or a PartyCollection (possibly refined)."""

    iri: str | None
    is_collection: bool = False
    part_of: tuple[str, ...] = ()
    source: str | None = None
    refinements: tuple[ConstraintNode, ...] = ()


@dataclass(frozen=True)
class Duty:
    """A duty of a permission, a remedy of a prohibition, or a consequence of a duty."""

    actions: tuple[Action, ...]
    uid: str | None = None
    targets: tuple[Asset, ...] = ()
    assigners: tuple[Party, ...] = ()
    assignees: tuple[Party, ...] = ()
    constraints: tuple[ConstraintNode, ...] = ()
    consequences: tuple[Duty, ...] = ()
    functions: tuple[tuple[str, str], ...] = ()  # (informedParty, <iri>), (compensatedParty, ...)

    @property
    def action(self) -> str:
        return self.actions[0].iri if self.actions else ""


@dataclass(frozen=True)
class Rule:
    """A permission, prohibition or (policy-level) obligation."""

    kind: RuleKind
    actions: tuple[Action, ...]
    uid: str | None = None
    targets: tuple[Asset, ...] = ()
    assigners: tuple[Party, ...] = ()
    assignees: tuple[Party, ...] = ()
    constraints: tuple[ConstraintNode, ...] = ()
    duties: tuple[Duty, ...] = ()  # permission duties
    remedies: tuple[Duty, ...] = ()  # prohibition remedies
    consequences: tuple[Duty, ...] = ()  # obligation consequences

    @property
    def action(self) -> str:
        return self.actions[0].iri if self.actions else ""


@dataclass(frozen=True)
class Policy:
    """An ODRL policy (Set, Offer, Agreement, Request, ...) with its rules; policy-level
    target/assigner/assignee/action have already been pushed down into every rule."""

    uid: str
    type: str
    rules: tuple[Rule, ...]
    profiles: tuple[str, ...] = ()
    conflict: str | None = None  # "perm" | "prohibit" | "invalid" | None (ODRL default: invalid)
    inherit_from: tuple[str, ...] = ()
    unresolved_parents: tuple[str, ...] = ()  # inheritFrom targets not present when parsing
    part_of: tuple[tuple[str, str], ...] = ()  # (member, collection) odrl:partOf statements in the document
    _cache: dict[str, Any] = field(default_factory=dict, compare=False, hash=False, repr=False)

    @property
    def permissions(self) -> tuple[Rule, ...]:
        return tuple(r for r in self.rules if r.kind == "permission")

    @property
    def prohibitions(self) -> tuple[Rule, ...]:
        return tuple(r for r in self.rules if r.kind == "prohibition")

    @property
    def obligations(self) -> tuple[Rule, ...]:
        return tuple(r for r in self.rules if r.kind == "obligation")
