"""Policy model -> fast evaluator. Done once per policy (cached on the Policy object).

Everything that does not depend on the request is decided here: right operands become Python values,
each left operand gets its resolver, each operator its function, each rule the closed set of actions it
covers (read is a use), and rules are indexed by action so a request only looks at rules that can apply.
Unknown profiles, left operands and operators are recorded here, so evaluation can name them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from policies.errors import PolicyError
from policies.facts import DEFERRED, MISSING, EvalContext
from policies.model import Asset, Constraint, ConstraintNode, Duty, LogicalConstraint, Party, Policy, Rule
from policies.profiles import registry
from policies.profiles.registry import UnknownTermError
from policies.values import FastCheck, apply_operator, make_fast_check, normalise_right, operator_name, term_to_python
from policies.vocab import ODRL, action_ancestors, action_parents

# A record of one constraint's evaluation: (compiled constraint, actual value, result)
Record = tuple["CConstraint", Any, "bool | None"]
Recorder = list[Record]


class CConstraint:
    """A compiled atomic or logical constraint. ``check`` appends records and answers True/False/None."""

    __slots__ = ("node", "left", "op", "rights", "is_list", "resolve", "groups", "rank", "unknown",
                 "children", "logical", "reference", "broader", "fast")

    def __init__(self, node: ConstraintNode) -> None:
        self.node = node
        self.unknown: tuple[str, ...] = ()
        self.children: tuple[CConstraint, ...] = ()
        self.logical: str | None = None
        self.reference: str | None = None
        self.fast: FastCheck | None = None
        if isinstance(node, LogicalConstraint):
            self.logical = node.operator
            self.children = tuple(CConstraint(c) for c in node.operands)
            self.unknown = tuple(dict.fromkeys(t for c in self.children for t in c.unknown))
            return
        self.left = node.left_operand
        spec = registry.left_operand(node.left_operand)
        unknown = []
        if spec is None:
            unknown.append(node.left_operand)
            self.resolve: Callable[[EvalContext], Any] = lambda ctx: MISSING
            self.groups: dict[str, frozenset[str]] = {}
            rank = None
        else:
            self.resolve = spec.resolve
            self.groups = dict(spec.groups)
            rank = {v: i for i, v in enumerate(spec.ordering)} if spec.ordering else None
        self.rank = rank
        op = operator_name(node.operator)
        if op is None:
            unknown.append(node.operator)
        self.op = op or ""
        self.reference = node.right_operand_reference
        try:
            self.rights = tuple(normalise_right(term_to_python(t, node.data_type)) for t in node.right_operand)
        except PolicyError:
            self.rights = ()
            unknown.append(f"right operand of {node.left_operand} ({', '.join(t.value for t in node.right_operand)})")
        self.is_list = node.right_operand_is_list
        self.unknown = tuple(unknown)
        if not unknown and self.reference is None:
            self.fast = make_fast_check(self.op, self.rights, is_list=self.is_list, rank=rank, groups=self.groups)
        groups = self.groups

        def broader(value: Any) -> Iterable[Any]:
            return groups.get(value, ())

        self.broader = broader

    def check(self, ctx: EvalContext, rec: Recorder) -> bool | None:
        if ctx.deferred and self.logical is None and self.left in ctx.deferred:
            rec.append((self, DEFERRED, True))
            return True
        fast = self.fast
        if fast is not None and not ctx.has_memberships:
            value = self.resolve(ctx)
            if value is MISSING:
                rec.append((self, MISSING, None))
                return None
            quick = fast(value)
            if quick is not NotImplemented:
                rec.append((self, value, quick))
                return quick  # type: ignore[no-any-return]
            return self._check_general(ctx, rec, value)
        if self.logical is not None:
            return self._check_logical(ctx, rec)
        if self.unknown:
            rec.append((self, MISSING, None))
            return None
        value = self.resolve(ctx)
        if value is MISSING:
            rec.append((self, MISSING, None))
            return None
        return self._check_general(ctx, rec, value)

    def _check_general(self, ctx: EvalContext, rec: Recorder, value: Any) -> bool | None:
        rights = self.rights
        if self.reference is not None and not rights:
            ref = ctx.lookup(self.reference)
            if ref is MISSING:
                rec.append((self, value, None))
                return None
            rights = tuple(ref) if isinstance(ref, list | tuple | set | frozenset) else (ref,)
        groups = self.groups
        state_members = ctx.state.memberships

        def broader(v: Any) -> Iterable[Any]:
            found = groups.get(v, ())
            if state_members and isinstance(v, str):
                return set(found) | ctx.memberships(v)
            return found

        result = apply_operator(self.op, value, rights, is_list=self.is_list, broader=broader, rank=self.rank)
        rec.append((self, value, result))
        return result

    def _check_logical(self, ctx: EvalContext, rec: Recorder) -> bool | None:
        results = [c.check(ctx, rec) for c in self.children]
        op = self.logical
        result: bool | None
        if op in ("and", "andSequence"):
            result = False if False in results else (None if None in results else True)
        elif op == "or":
            result = True if True in results else (None if None in results else False)
        else:  # xone
            result = None if None in results else results.count(True) == 1
        rec.append((self, MISSING, result))
        return result


def check_all(constraints: tuple[CConstraint, ...], ctx: EvalContext, rec: Recorder) -> bool | None:
    """AND over constraints (all evaluated, so the report shows each one)."""
    result: bool | None = True
    for c in constraints:
        r = c.check(ctx, rec)
        if r is False:
            result = False
        elif r is None and result is True:
            result = None
    return result


def _compile_all(nodes: tuple[ConstraintNode, ...]) -> tuple[CConstraint, ...]:
    return tuple(CConstraint(n) for n in nodes)


def _unknowns(constraints: Iterable[CConstraint]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(t for c in constraints for t in c.unknown))


class CEntity:
    """Matches a request's target (or party) against a rule's assets (or parties)."""

    __slots__ = ("entities", "iris", "refined", "unknown")

    def __init__(self, entities: tuple[Asset, ...] | tuple[Party, ...]) -> None:
        self.entities = entities
        self.iris = frozenset(e.iri for e in entities if e.iri is not None and not e.refinements)
        self.refined = tuple((e.iri, _compile_all(e.refinements)) for e in entities if e.refinements)
        self.unknown = _unknowns(c for _iri, cs in self.refined for c in cs)

    def match(self, value: str | None, ctx: EvalContext, rec: Recorder) -> bool | None:
        if value is None:
            return False
        if value in self.iris:
            return True
        members = ctx.memberships(value)
        if members and not members.isdisjoint(self.iris):
            return True
        result: bool | None = False
        for iri, constraints in self.refined:
            if iri is not None and iri != value and iri not in members:
                continue
            r = check_all(constraints, ctx, rec)
            if r:
                return True
            if r is None:
                result = None
        return result


_TIME_LIMIT_OPS = ("lt", "lteq", "eq")


class CDuty:
    """A compiled duty: activation conditions, a deadline, fulfilment test, consequences."""

    __slots__ = ("duty", "uid", "actions", "covered", "conditions", "refinements", "deadline_at",
                 "deadline_after", "consequences", "unknown", "parameters")

    def __init__(self, duty: Duty) -> None:
        self.duty = duty
        self.uid = duty.uid
        self.actions = tuple(a.iri for a in duty.actions)
        self.covered = frozenset(self.actions)
        conditions: list[CConstraint] = []
        refinements: list[CConstraint] = []
        deadline_at: datetime | None = None
        deadline_after: timedelta | None = None
        for source, nodes in (("constraint", duty.constraints),
                              ("refinement", tuple(r for a in duty.actions for r in a.refinements))):
            for node in nodes:
                limit = _time_limit(node)
                if isinstance(limit, datetime):
                    deadline_at = limit if deadline_at is None else min(deadline_at, limit)
                    continue
                if isinstance(limit, timedelta):
                    deadline_after = limit if deadline_after is None else min(deadline_after, limit)
                    continue
                (conditions if source == "constraint" else refinements).append(CConstraint(node))
        self.conditions = tuple(conditions)
        self.refinements = tuple(refinements)
        self.deadline_at = deadline_at
        self.deadline_after = deadline_after
        self.consequences = tuple(CDuty(c) for c in duty.consequences)
        self.unknown = _unknowns(self.conditions) + _unknowns(self.refinements)
        self.parameters = _duty_parameters(duty)

    def deadline(self, ctx: EvalContext) -> datetime | None:
        found = self.deadline_at
        start = ctx.state.agreement_time
        if self.deadline_after is not None and start is not None:
            rel = start + self.deadline_after
            found = rel if found is None else min(found, rel)
        return found


def _time_limit(node: ConstraintNode) -> datetime | timedelta | None:
    """A dateTime/elapsedTime upper bound on a duty is its deadline, not an activation condition."""
    if not isinstance(node, Constraint):
        return None
    op = operator_name(node.operator)
    if op not in _TIME_LIMIT_OPS or len(node.right_operand) != 1:
        return None
    try:
        value = normalise_right(term_to_python(node.right_operand[0], node.data_type))
    except PolicyError:
        return None
    if node.left_operand == ODRL + "dateTime" and isinstance(value, datetime):
        return value
    if node.left_operand == ODRL + "elapsedTime" and isinstance(value, timedelta):
        return value
    return None


def _duty_parameters(duty: Duty) -> dict[str, Any]:
    from policies.vocab import short

    params: dict[str, Any] = {}
    for node in list(duty.constraints) + [r for a in duty.actions for r in a.refinements]:
        for c in _atoms(node):
            values = [t.value for t in c.right_operand]
            params[short(c.left_operand)] = values if c.right_operand_is_list or len(values) > 1 else (
                values[0] if values else c.right_operand_reference)
            if c.unit:
                params[short(c.left_operand) + ".unit"] = c.unit
    for name, value in duty.functions:
        params[name] = value
    if duty.targets:
        params.setdefault("target", duty.targets[0].iri)
    return params


def _atoms(node: ConstraintNode) -> Iterable[Constraint]:
    if isinstance(node, LogicalConstraint):
        for child in node.operands:
            yield from _atoms(child)
    else:
        yield node


class CRule:
    """A compiled rule."""

    __slots__ = ("rule", "index", "uid", "label", "kind", "actions", "action_refinements", "targets",
                 "assignees", "assigners", "constraints", "duties", "remedies", "unknown")

    def __init__(self, rule: Rule, index: int) -> None:
        self.rule = rule
        self.index = index
        self.uid = rule.uid
        self.kind = rule.kind
        self.label = rule.uid or f"{rule.kind}[{index}]"
        self.actions = frozenset(a.iri for a in rule.actions)
        self.action_refinements = {a.iri: _compile_all(a.refinements) for a in rule.actions if a.refinements}
        self.targets = CEntity(rule.targets) if rule.targets else None
        self.assignees = CEntity(rule.assignees) if rule.assignees else None
        self.assigners = CEntity(rule.assigners) if rule.assigners else None
        self.constraints = _compile_all(rule.constraints)
        self.duties: tuple[CDuty, ...]
        if rule.kind == "obligation":
            # the obligation itself is a duty of its assignee; its constraints are its conditions/deadline
            self.duties = (CDuty(Duty(actions=rule.actions, uid=rule.uid, targets=rule.targets,
                                      assigners=rule.assigners, assignees=rule.assignees,
                                      constraints=rule.constraints, consequences=rule.consequences)),)
        else:
            self.duties = tuple(CDuty(d) for d in rule.duties)
        self.remedies = tuple(CDuty(d) for d in rule.remedies)
        unknown: list[str] = []
        for part in (self.targets, self.assignees, self.assigners):
            if part is not None:
                unknown.extend(part.unknown)
        unknown.extend(_unknowns(c for cs in self.action_refinements.values() for c in cs))
        unknown.extend(_unknowns(self.constraints))
        for d in self.duties:
            unknown.extend(d.unknown)
        self.unknown = tuple(dict.fromkeys(unknown))


@dataclass(frozen=True)
class CompiledPolicy:
    """The evaluator's view of a policy; built once by compile_policy()."""

    policy: Policy
    rules: tuple[CRule, ...]
    by_action: dict[str, tuple[CRule, ...]]
    any_action: tuple[CRule, ...]  # rules without an action
    obligations: tuple[CRule, ...]
    problems: tuple[str, ...]  # policy-level reasons to deny (unknown profile, missing parent)
    unknown_profiles: tuple[str, ...]
    members: dict[str, tuple[str, ...]]  # odrl:partOf statements of the policy document
    _cand_cache: dict[str, tuple[CRule, ...]] = field(default_factory=dict, compare=False, repr=False)

    def candidates(self, action: str) -> tuple[CRule, ...]:
        """Rules whose action covers ``action`` (the action itself or any action it is included in)."""
        hit = self._cand_cache.get(action)
        if hit is not None:
            return hit
        found: dict[int, CRule] = {}
        for a in action_ancestors(action):
            for r in self.by_action.get(a, ()):
                found[r.index] = r
        for r in self.any_action:
            found[r.index] = r
        result = tuple(found[i] for i in sorted(found))
        if len(self._cand_cache) < 10_000:
            self._cand_cache[action] = result
        return result


def _members(policy: Policy) -> dict[str, tuple[str, ...]]:
    members: dict[str, list[str]] = {}
    for member, collection in policy.part_of:
        members.setdefault(member, []).append(collection)
    return {k: tuple(v) for k, v in members.items()}


def compile_policy(policy: Policy, *, strict: bool = False) -> CompiledPolicy:
    """Compile (once; cached on the policy). ``strict`` raises UnknownTermError on terms not understood."""
    cached = policy._cache.get("compiled")
    if cached is None:
        action_parents()  # load the vocabulary outside the hot path
        rules = tuple(CRule(r, i) for i, r in enumerate(policy.rules))
        by_action: dict[str, list[CRule]] = {}
        any_action = []
        obligations = []
        for r in rules:
            if r.kind == "obligation":
                obligations.append(r)
                continue
            if not r.actions:
                any_action.append(r)
            for a in r.actions:
                by_action.setdefault(a, []).append(r)
        unknown_profiles = tuple(p for p in policy.profiles if registry.find(p) is None)
        problems = [f"ODRL profile {p} is not understood" for p in unknown_profiles]
        problems += [f"parent policy {p} (inheritFrom) is not available" for p in policy.unresolved_parents]
        cached = CompiledPolicy(
            policy=policy, rules=rules, by_action={k: tuple(v) for k, v in by_action.items()},
            any_action=tuple(any_action), obligations=tuple(obligations), problems=tuple(problems),
            unknown_profiles=unknown_profiles, members=_members(policy),
        )
        policy._cache["compiled"] = cached
    if strict:
        terms = list(cached.unknown_profiles) + [t for r in cached.rules for t in r.unknown]
        if terms:
            raise UnknownTermError(f"policy {policy.uid} uses terms Pactum does not understand: "
                                   + ", ".join(dict.fromkeys(terms)), term=terms[0])
    return cached
