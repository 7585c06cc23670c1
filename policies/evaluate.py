"""evaluate(policy, request, state) -> Report: the decision procedure, as one pure function.

Per rule: the premises (action incl. refinements, target, assignee, assigner) and constraints are
checked with three-valued logic (satisfied / unsatisfied / indeterminate). A permission is active when
all hold and none of its duties is violated; a prohibition is active when all hold. Then:

1. a policy-level problem (unknown profile, missing inheritFrom parent) -> deny;
2. a rule that matches the request but uses a term Pactum does not understand -> deny;
3. an active prohibition -> deny, unless an active permission overrides it under conflict ``perm``;
4. an indeterminate prohibition (a fact it needs is missing) -> deny (fail closed);
5. a violated obligation -> deny;
6. an active permission -> permit; otherwise deny (nothing permits it: fail closed).

The hot path allocates little: raw results are tuples; the Report builds its readable objects lazily.
"""

from __future__ import annotations

from collections.abc import Collection
from functools import lru_cache
from typing import Any

from policies.compile import CDuty, CompiledPolicy, CRule, Recorder, check_all, compile_policy
from policies.facts import EvalContext, Request, StateOfWorld
from policies.model import Policy
from policies.report import RawDuty, RawRule, Report
from policies.vocab import action_ancestors, expand, short

ACTIVE, INACTIVE, INDETERMINATE = "active", "inactive", "indeterminate"


@lru_cache(maxsize=4096)
def _expand_action(action: str) -> str:
    return expand(action)


def evaluate(policy: Policy, request: Request, state: StateOfWorld, *, defer: Collection[str] = ()) -> Report:
    """Decide whether ``request`` is permitted by ``policy`` in ``state``, with the full explanation.

    ``defer`` names left operands (short names such as ``purpose`` or IRIs) that this evaluation must not
    decide: their constraints count as satisfied and are reported as deferred. A connector uses it at
    contract negotiation for use-time conditions (purpose, count, elapsed time) the consumer commits to and
    that are enforced when the data is used.
    """
    compiled = policy._cache.get("compiled") or compile_policy(policy)
    deferred = _deferred(tuple(defer)) if defer else frozenset()
    ctx = EvalContext(request, state, compiled.members, deferred)
    action = _expand_action(request.action)
    raws = [_evaluate_rule(rule, ctx, action) for rule in compiled.candidates(action)]
    obligations = [_evaluate_obligation(rule, ctx) for rule in compiled.obligations] if compiled.obligations else []
    decision = _decide(compiled, raws, obligations, None)
    return Report(compiled, request, state, action, raws, obligations, decision, _evaluate_rule, _reasons, deferred)


@lru_cache(maxsize=256)
def _deferred(terms: tuple[str, ...]) -> frozenset[str]:
    return frozenset(expand(t) for t in terms)


def _reasons(compiled: CompiledPolicy, raws: list[RawRule], obligations: list[RawRule]) -> list[str]:
    reasons: list[str] = []
    _decide(compiled, raws, obligations, reasons)
    return reasons


def _evaluate_rule(rule: CRule, ctx: EvalContext, action: str) -> RawRule:
    ctx.rule_uid = rule.uid
    rec: Recorder = []
    request = ctx.request
    premises: list[tuple[str, bool | None]] = []
    failed = False
    unsure = False
    if rule.actions:
        ok: bool | None = True
        if rule.action_refinements or action not in rule.actions:
            ok = False
            for iri in rule.actions & action_ancestors(action):
                refinements = rule.action_refinements.get(iri)
                r = True if refinements is None else check_all(refinements, ctx, rec)
                if r:
                    ok = True
                    break
                if r is None:
                    ok = None
        premises.append(("action", ok))
        failed = ok is False
        unsure = ok is None
    if rule.targets is not None:
        ok = True if request.target is None else rule.targets.match(request.target, ctx, rec)
        premises.append(("target", ok))
        failed = failed or ok is False
        unsure = unsure or ok is None
    if rule.assignees is not None:
        ok = rule.assignees.match(request.assignee, ctx, rec)
        premises.append(("party", ok))
        failed = failed or ok is False
        unsure = unsure or ok is None
    if rule.assigners is not None and request.assigner is not None:
        ok = rule.assigners.match(request.assigner, ctx, rec)
        premises.append(("assigner", ok))
        failed = failed or ok is False
        unsure = unsure or ok is None
    matched = not failed
    constraints_ok = check_all(rule.constraints, ctx, rec) if rule.constraints else True
    duties: tuple[RawDuty, ...] = ()
    if matched:
        if rule.kind == "permission":
            if rule.duties:
                states = [_duty_state(duty, ctx, rule) for duty in rule.duties]
                for raw in states:
                    if raw[1] == "violated":
                        failed = True
                duties = tuple(states)
        elif rule.remedies:
            duties = tuple((d, "unfulfilled", False, ()) for d in rule.remedies)
    if failed or constraints_ok is False:
        status = INACTIVE
    elif unsure or constraints_ok is None or (rule.unknown and matched):
        status = INDETERMINATE
    else:
        status = ACTIVE
    return (rule, status, premises, constraints_ok, rec, duties, rule.unknown if matched else ())


def _evaluate_obligation(rule: CRule, ctx: EvalContext) -> RawRule:
    ctx.rule_uid = rule.uid
    rec: Recorder = []
    duty = rule.duties[0]
    if duty.conditions:
        check_all(duty.conditions, ctx, rec)
    raw = _duty_state(duty, ctx, rule)
    status = INACTIVE if raw[1] == "inactive" else ACTIVE
    ctx.rule_uid = None
    return (rule, status, [], True, rec, (raw,) if raw[1] != "inactive" else (), rule.unknown)


def _event_matches(duty: CDuty, event: Any, ctx: EvalContext) -> bool:
    if event.duty is not None:
        return duty.uid is not None and event.duty == duty.uid
    if duty.covered.isdisjoint(action_ancestors(_expand_action(event.action))):
        return False
    targets = duty.duty.targets
    if targets and event.target is not None and event.target not in {t.iri for t in targets}:
        return False
    if event.time is not None and event.time > ctx.now:
        return False
    if duty.refinements:
        ctx.event = event
        try:
            return check_all(duty.refinements, ctx, []) is True
        finally:
            ctx.event = None
    return True


def _duty_state(duty: CDuty, ctx: EvalContext, rule: CRule) -> RawDuty:
    """(duty, state, active, consequences) with state fulfilled / unfulfilled / violated / inactive."""
    if duty.conditions:
        active = check_all(duty.conditions, ctx, [])
        if active is False:
            return (duty, "inactive", False, ())
    fulfilled = False
    violated = False
    for event in ctx.state.events:
        if not _event_matches(duty, event, ctx):
            continue
        if event.outcome == "unperformed":
            violated = True
        else:
            fulfilled = True
    if fulfilled and not violated:
        return (duty, "fulfilled", True, ())
    deadline = duty.deadline(ctx)
    if deadline is not None and deadline < ctx.now:
        violated = True
    if not violated:
        return (duty, "unfulfilled", True, ())
    consequences = tuple(_duty_state(c, ctx, rule) for c in duty.consequences)
    if consequences and all(c[1] == "fulfilled" for c in consequences):
        return (duty, "fulfilled", True, consequences)
    return (duty, "violated", True, consequences)


def _decide(compiled: CompiledPolicy, raws: list[RawRule], obligations: list[RawRule],
            reasons: list[str] | None) -> str:
    """The decision; when ``reasons`` is a list, the short reasons for a deny are appended to it."""
    if compiled.problems:
        if reasons is not None:
            reasons.extend(compiled.problems)
        return "deny"
    permits = False
    prohibits = []
    undecided = []
    unknown: list[str] = []
    for raw in raws:
        status = raw[1]
        if raw[6]:
            unknown.extend(raw[6])
        if status == ACTIVE:
            if raw[0].kind == "permission":
                permits = True
            else:
                prohibits.append(raw)
        elif status == INDETERMINATE and raw[0].kind == "prohibition":
            undecided.append(raw)
    if unknown:
        if reasons is not None:
            reasons.append("term not understood: " + ", ".join(short(t) for t in dict.fromkeys(unknown)))
        return "deny"
    if prohibits:
        if permits and compiled.policy.conflict == "perm":
            return "permit"
        if reasons is not None:
            labels = ", ".join(raw[0].label for raw in prohibits)
            if permits and compiled.policy.conflict != "prohibit":
                reasons.append(f"conflict between permission and prohibition ({labels}): the policy is void "
                               "(conflict strategy 'invalid')")
            else:
                reasons.append(f"prohibited by {labels}")
        return "deny"
    if undecided:
        if reasons is not None:
            reasons.extend(f"prohibition {raw[0].label} cannot be ruled out: {_missing(raw)}" for raw in undecided)
        return "deny"
    broken = [raw for raw in obligations if any(d[1] == "violated" for d in raw[5])]
    if broken:
        if reasons is not None:
            reasons.extend(f"obligation {raw[0].label} is violated" for raw in broken)
        return "deny"
    if permits:
        return "permit"
    if reasons is not None:
        if not raws:
            reasons.append("no rule of the policy covers this action")
        else:
            reasons.extend(f"permission {raw[0].label} is {raw[1]}: {_why_not(raw)}" for raw in raws
                           if raw[0].kind == "permission")
            if not reasons:
                reasons.append("no permission grants this request")
    return "deny"


def _missing(raw: RawRule) -> str:
    names = [short(c.left) for c, value, result in raw[4] if result is None and c.logical is None]
    return "no value for " + ", ".join(dict.fromkeys(names)) if names else "undecidable constraint"


def _why_not(raw: RawRule) -> str:
    for name, ok in raw[2]:
        if ok is False:
            return f"{name} does not match"
    for duty, state, _active, _cons in raw[5]:
        if state == "violated":
            return f"duty {short(duty.actions[0]) if duty.actions else '?'} is violated"
    failed = [short(c.left) for c, _v, result in raw[4] if result is False and c.logical is None]
    if failed:
        return "constraint not satisfied: " + ", ".join(dict.fromkeys(failed))
    missing = [short(c.left) for c, _v, result in raw[4] if result is None and c.logical is None]
    if missing:
        return "no value for " + ", ".join(dict.fromkeys(missing))
    return "premises not met"


__all__ = ["Request", "StateOfWorld", "evaluate"]
