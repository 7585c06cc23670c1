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


def evaluate(policy: Policy, request: Request, state: StateOfWorld) -> Report:
    """Decide whether ``request`` is permitted by ``policy`` in ``state``, with the full explanation."""
    compiled = compile_policy(policy)
    ctx = EvalContext(request, state)
    action = _expand_action(request.action)
    raws = [_evaluate_rule(rule, ctx, action) for rule in compiled.candidates(action)]
    obligations = [_evaluate_obligation(rule, ctx) for rule in compiled.obligations]
    decision, reasons = _decide(compiled, raws, obligations)

    def late(rule: CRule) -> RawRule:
        # rules the requested action cannot match are only evaluated if someone reads the full report
        return _evaluate_rule(rule, EvalContext(request, state), action)

    return Report(compiled, request, state, action, raws, obligations, decision, reasons, late)


def _evaluate_rule(rule: CRule, ctx: EvalContext, action: str) -> RawRule:
    ctx.rule_uid = rule.uid
    rec: Recorder = []
    request = ctx.request
    premises: list[tuple[str, bool | None]] = []
    if rule.actions:
        ok: bool | None = True
        if rule.action_refinements or action not in rule.actions:
            ancestors = action_ancestors(action)
            ok = False
            for iri in rule.actions & ancestors:
                refinements = rule.action_refinements.get(iri)
                r = True if refinements is None else check_all(refinements, ctx, rec)
                if r:
                    ok = True
                    break
                if r is None:
                    ok = None
        premises.append(("action", ok))
    if rule.targets is not None:
        premises.append(("target", True if request.target is None else
                         rule.targets.match(request.target, ctx, rec)))
    if rule.assignees is not None:
        premises.append(("party", rule.assignees.match(request.assignee, ctx, rec)))
    if rule.assigners is not None and request.assigner is not None:
        premises.append(("assigner", rule.assigners.match(request.assigner, ctx, rec)))
    constraints_ok = check_all(rule.constraints, ctx, rec) if rule.constraints else True
    matched = all(p is not False for _n, p in premises)
    duties: list[RawDuty] = []
    violated = False
    if rule.kind == "permission" and matched:
        for duty in rule.duties:
            raw = _duty_state(duty, ctx, rule)
            duties.append(raw)
            if raw[1] == "violated":
                violated = True
    elif rule.kind == "prohibition" and matched:
        duties = [(d, "unfulfilled", False, ()) for d in rule.remedies]
    values = [p for _n, p in premises] + [constraints_ok]
    if False in values or violated:
        status = INACTIVE
    elif None in values:
        status = INDETERMINATE
    else:
        status = ACTIVE
    unknown = rule.unknown if matched else ()
    if unknown and status == ACTIVE:
        status = INDETERMINATE
    ctx.rule_uid = None
    return (rule, status, tuple(premises), constraints_ok, rec, tuple(duties), unknown)


def _evaluate_obligation(rule: CRule, ctx: EvalContext) -> RawRule:
    ctx.rule_uid = rule.uid
    rec: Recorder = []
    duty = rule.duties[0]
    if duty.conditions:
        check_all(duty.conditions, ctx, rec)
    raw = _duty_state(duty, ctx, rule)
    status = INACTIVE if raw[1] == "inactive" else ACTIVE
    ctx.rule_uid = None
    return (rule, status, (), True, rec, (raw,) if raw[1] != "inactive" else (), rule.unknown)


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


def _decide(compiled: CompiledPolicy, raws: list[RawRule], obligations: list[RawRule]) -> tuple[str, list[str]]:
    reasons: list[str] = list(compiled.problems)
    if reasons:
        return "deny", reasons
    unknown = [t for raw in raws for t in raw[6]]
    if unknown:
        terms = ", ".join(short(t) for t in dict.fromkeys(unknown))
        return "deny", [f"term not understood: {terms}"]
    permits = [raw for raw in raws if raw[0].kind == "permission" and raw[1] == ACTIVE]
    prohibits = [raw for raw in raws if raw[0].kind == "prohibition" and raw[1] == ACTIVE]
    if prohibits:
        if permits and compiled.policy.conflict == "perm":
            return "permit", []
        labels = ", ".join(raw[0].label for raw in prohibits)
        if permits and compiled.policy.conflict != "prohibit":
            return "deny", [f"conflict between permission and prohibition ({labels}): the policy is void "
                            "(conflict strategy 'invalid')"]
        return "deny", [f"prohibited by {labels}"]
    undecided = [raw for raw in raws if raw[0].kind == "prohibition" and raw[1] == INDETERMINATE]
    if undecided:
        return "deny", [f"prohibition {raw[0].label} cannot be ruled out: {_missing(raw)}" for raw in undecided]
    broken = [raw for raw in obligations if any(d[1] == "violated" for d in raw[5])]
    if broken:
        return "deny", [f"obligation {raw[0].label} is violated" for raw in broken]
    if permits:
        return "permit", []
    if not raws:
        return "deny", ["no rule of the policy covers this action"]
    for raw in raws:
        if raw[0].kind == "permission":
            reasons.append(f"permission {raw[0].label} is {raw[1]}: {_why_not(raw)}")
    return "deny", reasons or ["no permission grants this request"]


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
