"""The evaluation report: decision, per-rule results and binding duties, as JSON, Turtle and text.

Turtle follows the ODRL Compliance Report Model (https://w3id.org/force/compliance-report#). The readable
objects are built lazily from the evaluator's raw tuples, so callers that only need ``.decision`` pay
nothing for the explanation.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal

from policies.facts import DEFERRED, MISSING, Request, StateOfWorld
from policies.values import format_duration
from policies.vocab import REPORT, XSD, short

if TYPE_CHECKING:
    from policies.compile import CConstraint, CDuty, CompiledPolicy, CRule, Record

# (duty, state, active, consequences)
RawDuty = tuple["CDuty", str, bool, tuple[Any, ...]]
# (rule, status, premises, constraints_ok, records, duties, unknown terms)
RawRule = tuple["CRule", str, list[tuple[str, "bool | None"]], "bool | None", list["Record"],
                tuple[RawDuty, ...], tuple[str, ...]]

PACTUM_REPORT = "https://w3id.org/pactum/report#"


def _jsonable(value: Any) -> Any:
    if value is MISSING:
        return None
    if value is DEFERRED:
        return "deferred"
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, timedelta):
        return format_duration(value)
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() and "." not in str(value) else float(value)
    if isinstance(value, frozenset | set | tuple | list):
        return sorted((_jsonable(v) for v in value), key=str)
    return value


def _state_word(value: bool | None) -> str:
    return "satisfied" if value is True else "unsatisfied" if value is False else "indeterminate"


@dataclass(frozen=True)
class ConstraintResult:
    """One constraint's outcome: operands, the actual value found, and whether it holds."""

    uid: str | None
    satisfied: bool | None
    left_operand: str | None = None
    operator: str | None = None
    right_operand: Any = None
    actual: Any = None
    logical: str | None = None
    children: tuple[ConstraintResult, ...] = ()
    unknown: tuple[str, ...] = ()
    deferred: bool = False  # not decided in this evaluation (evaluate's ``defer``); counts as satisfied

    def to_json(self) -> dict[str, Any]:
        state = "deferred" if self.deferred else _state_word(self.satisfied)
        out: dict[str, Any] = {"id": self.uid, "satisfied": self.satisfied, "state": state}
        if self.logical is not None:
            out["logical"] = self.logical
            out["constraints"] = [c.to_json() for c in self.children]
        else:
            out.update(leftOperand=self.left_operand, operator=self.operator, rightOperand=self.right_operand,
                       actual=self.actual)
        if self.unknown:
            out["notUnderstood"] = list(self.unknown)
        return out


@dataclass(frozen=True)
class DutyReport:
    """A duty that binds now (or was checked): its action, state and parameters."""

    action: str
    state: Literal["fulfilled", "unfulfilled", "violated"]
    parameters: dict[str, Any]
    rule_uid: str | None
    uid: str | None = None
    kind: str = "duty"  # duty | remedy | obligation | consequence
    consequences: tuple[DutyReport, ...] = ()

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.uid, "kind": self.kind, "action": self.action, "state": self.state,
                               "parameters": self.parameters, "rule": self.rule_uid}
        if self.consequences:
            out["consequences"] = [c.to_json() for c in self.consequences]
        return out


@dataclass(frozen=True)
class RuleReport:
    """One rule's evaluation."""

    id: str
    uid: str | None
    kind: str
    activation: Literal["active", "inactive", "indeterminate"]
    attempted: bool
    premises: dict[str, bool | None]
    constraints: tuple[ConstraintResult, ...]
    duties: tuple[DutyReport, ...] = ()
    unknown_terms: tuple[str, ...] = ()

    @property
    def active(self) -> bool:
        return self.activation == "active"

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id, "kind": self.kind, "activation": self.activation, "attempted": self.attempted,
            "premises": {k: _state_word(v) for k, v in self.premises.items()},
            "constraints": [c.to_json() for c in self.constraints],
            "duties": [d.to_json() for d in self.duties],
        }
        if self.unknown_terms:
            out["notUnderstood"] = list(self.unknown_terms)
        return out


def _constraint_results(constraints: tuple[CConstraint, ...], records: dict[int, tuple[Any, Any]]
                        ) -> tuple[ConstraintResult, ...]:
    out = []
    for c in constraints:
        value, result = records.get(id(c), (MISSING, None))
        node = c.node
        if c.logical is not None:
            out.append(ConstraintResult(uid=node.uid, satisfied=result, logical=c.logical,
                                        children=_constraint_results(c.children, records), unknown=c.unknown))
        else:
            rights = [t.value for t in node.right_operand]  # type: ignore[union-attr]
            right: Any = rights if node.right_operand_is_list or len(rights) != 1 else rights[0]  # type: ignore[union-attr]
            if not rights and c.reference:
                right = {"reference": c.reference}
            out.append(ConstraintResult(
                uid=node.uid, satisfied=result, left_operand=short(c.left), operator=short(node.operator),  # type: ignore[union-attr]
                right_operand=right, actual=_jsonable(value), unknown=c.unknown, deferred=value is DEFERRED))
    return tuple(out)


def _duty_report(raw: RawDuty, rule_uid: str | None, kind: str) -> DutyReport:
    duty, state, _active, consequences = raw
    return DutyReport(
        action=short(duty.actions[0]) if duty.actions else "", state=state,  # type: ignore[arg-type]
        parameters=dict(duty.parameters), rule_uid=rule_uid, uid=duty.uid, kind=kind,
        consequences=tuple(_duty_report(c, rule_uid, "consequence") for c in consequences
                           if c[1] != "inactive"),
    )


class Report:
    """The result of evaluate(): ``decision`` and ``reasons`` now, everything else on demand."""

    __slots__ = ("_compiled", "request", "state", "_action", "_raws", "_obligations", "decision", "_reasons",
                 "_rules", "_duties", "_id", "_late", "_explain", "_deferred")

    def __init__(self, compiled: CompiledPolicy, request: Request, state: StateOfWorld, action: str,
                 raws: list[RawRule], obligations: list[RawRule], decision: str,
                 late: Callable[[CRule, Any, str], RawRule] | None = None,
                 explain: Callable[[CompiledPolicy, list[RawRule], list[RawRule]], list[str]] | None = None,
                 deferred: frozenset[str] = frozenset()) -> None:
        self._deferred = deferred
        self._compiled = compiled
        self.request = request
        self.state = state
        self._action = action
        self._raws = raws
        self._obligations = obligations
        self.decision: Literal["permit", "deny"] = decision  # type: ignore[assignment]
        self._late = late
        self._explain = explain
        self._reasons: list[str] | None = None
        self._rules: list[RuleReport] | None = None
        self._duties: list[DutyReport] | None = None
        self._id: str | None = None

    @property
    def reasons(self) -> list[str]:
        """Short reasons for a deny (empty for a permit); used as the DSP termination reason."""
        if self._reasons is None:
            self._reasons = [] if self._explain is None else self._explain(self._compiled, self._raws,
                                                                           self._obligations)
        return self._reasons

    @property
    def permitted(self) -> bool:
        return self.decision == "permit"

    @property
    def policy_uid(self) -> str:
        return self._compiled.policy.uid

    # ------------------------------------------------------------------------------------ objects
    @property
    def rules(self) -> list[RuleReport]:
        """One report per rule of the policy, in policy order."""
        if self._rules is None:
            by_index = {raw[0].index: raw for raw in self._raws + self._obligations}
            out = []
            for rule in self._compiled.rules:
                raw = by_index.get(rule.index)
                out.append(self._rule_report(rule, raw))
            self._rules = out
        return self._rules

    def _rule_report(self, rule: CRule, raw: RawRule | None) -> RuleReport:
        if raw is None and self._late is not None:
            # rules the requested action cannot match are evaluated only when the full report is read
            from policies.facts import EvalContext

            raw = self._late(rule, EvalContext(self.request, self.state, self._compiled.members, self._deferred),
                             self._action)
        if raw is None:  # the rule's action does not cover the requested action
            return RuleReport(id=rule.label, uid=rule.uid, kind=rule.kind, activation="inactive", attempted=True,
                              premises={"action": False}, constraints=())
        _rule, status, premises, _ok, records, duties, unknown = raw
        recs = {id(c): (value, result) for c, value, result in records}
        kind_of = {"permission": "duty", "prohibition": "remedy", "obligation": "obligation"}[rule.kind]
        constraints = rule.constraints if rule.kind != "obligation" else rule.duties[0].conditions
        return RuleReport(
            id=rule.label, uid=rule.uid, kind=rule.kind, activation=status, attempted=True,  # type: ignore[arg-type]
            premises=dict(premises), constraints=_constraint_results(constraints, recs),
            duties=tuple(_duty_report(d, rule.uid, kind_of) for d in duties if d[1] != "inactive"),
            unknown_terms=tuple(short(t) for t in unknown),
        )

    @property
    def duties(self) -> list[DutyReport]:
        """Duties that bind now: those of active permissions, active obligations, and due consequences."""
        if self._duties is None:
            out: list[DutyReport] = []
            for report in self.rules:
                if report.kind == "permission" and (
                        report.activation == "active" or any(d.state == "violated" for d in report.duties)):
                    # duties bind through a granting permission; a violated one is shown so it can be acted on
                    out.extend(report.duties)
                elif report.kind == "obligation" and report.activation == "active":
                    out.extend(report.duties)
                for d in report.duties:
                    out.extend(c for c in d.consequences if c.state != "fulfilled")
            self._duties = out
        return self._duties

    # ------------------------------------------------------------------------------------ outputs
    def to_json(self) -> dict[str, Any]:
        """Plain JSON: decision, reasons, request, and one entry per rule."""
        r = self.request
        return {
            "policy": self.policy_uid,
            "decision": self.decision,
            "reasons": list(self.reasons),
            "request": {"action": short(self._action), "target": r.target, "assignee": r.assignee,
                        "assigner": r.assigner, "purpose": r.purpose},
            "evaluatedAt": _jsonable(self.state.now),
            "rules": [rule.to_json() for rule in self.rules],
            "duties": [d.to_json() for d in self.duties],
        }

    def explain(self) -> str:
        """A short human tree: decision, reasons, then each rule with its premises and constraints."""
        lines = [f"{self.decision.upper()}  policy {self.policy_uid}  "
                 f"(request: {short(self._action)} {self.request.target or '-'} by {self.request.assignee or '-'})"]
        for reason in self.reasons:
            lines.append(f"  reason: {reason}")
        rules = self.rules
        for i, rule in enumerate(rules):
            last = i == len(rules) - 1
            branch, cont = ("└─ ", "   ") if last else ("├─ ", "│  ")
            lines.append(f"{branch}{rule.kind} {rule.id}: {rule.activation}")
            items: list[str] = [f"{name}: {_state_word(v)}" for name, v in rule.premises.items()]
            for c in rule.constraints:
                items.extend(_constraint_lines(c, 0))
            for d in rule.duties:
                params = ", ".join(f"{k}={v}" for k, v in d.parameters.items())
                items.append(f"{d.kind} {d.action}: {d.state}" + (f" ({params})" if params else ""))
            if rule.unknown_terms:
                items.append("not understood: " + ", ".join(rule.unknown_terms))
            for j, item in enumerate(items):
                lines.append(cont + ("└─ " if j == len(items) - 1 else "├─ ") + item)
        return "\n".join(lines)

    def to_turtle(self) -> str:
        """The report as Turtle in the ODRL Compliance Report Model."""
        return self.to_graph().serialize(format="turtle")

    def to_graph(self) -> Any:
        """The report as an rdflib Graph (Compliance Report Model)."""
        import rdflib
        from rdflib import RDF, BNode, Literal, URIRef

        R = rdflib.Namespace(REPORT)
        P = rdflib.Namespace(PACTUM_REPORT)
        g = rdflib.Graph()
        g.bind("report", R)
        g.bind("odrl", "http://www.w3.org/ns/odrl/2/")
        g.bind("pactum", P)
        g.bind("dct", "http://purl.org/dc/terms/")
        if self._id is None:
            self._id = f"urn:uuid:{uuid.uuid4()}"
        root = URIRef(self._id)
        g.add((root, RDF.type, R.PolicyReport))
        g.add((root, URIRef("http://purl.org/dc/terms/created"),
               Literal(_jsonable(self.state.now), datatype=URIRef(XSD + "dateTime"))))
        g.add((root, R.policy, URIRef(self.policy_uid)))
        g.add((root, P.decision, Literal(self.decision)))

        def node(uid: str | None) -> URIRef | BNode:
            return URIRef(uid) if uid else BNode()

        def sat(v: bool | None) -> URIRef:
            return R.Satisfied if v is True else R.Unsatisfied if v is False else P.Indeterminate

        def add_constraint(parent: Any, c: ConstraintResult) -> None:
            cr = BNode()
            g.add((parent, R.premiseReport, cr))
            g.add((cr, RDF.type, R.ConstraintReport))
            if c.uid:
                g.add((cr, R.constraint, URIRef(c.uid)))
            g.add((cr, R.satisfactionState, sat(c.satisfied)))
            if c.logical:
                g.add((cr, R.constraintLogicalOperand, URIRef("http://www.w3.org/ns/odrl/2/" + c.logical)))
                for child in c.children:
                    add_constraint(cr, child)
            else:
                if c.actual is not None:
                    g.add((cr, R.constraintLeftOperand, Literal(str(c.actual))))
                if c.operator:
                    g.add((cr, R.constraintOperator, URIRef(_expand(c.operator))))
                if c.right_operand is not None:
                    for v in c.right_operand if isinstance(c.right_operand, list) else [c.right_operand]:
                        g.add((cr, R.constraintRightOperand, Literal(str(v))))

        def add_duty(parent: Any, d: DutyReport) -> None:
            dr = BNode()
            g.add((parent, R.conditionReport, dr))
            g.add((dr, RDF.type, R.DutyReport))
            if d.uid:
                g.add((dr, R.rule, URIRef(d.uid)))
            g.add((dr, R.activationState, R.Active))
            g.add((dr, R.performanceState, R.Performed if d.state == "fulfilled" else
                   R.Unperformed if d.state == "violated" else R.Unknown))
            g.add((dr, R.deonticState, R.Fulfilled if d.state == "fulfilled" else
                   R.Violated if d.state == "violated" else R.NonSet))
            for c in d.consequences:
                add_duty(dr, c)

        kinds = {"permission": R.PermissionReport, "prohibition": R.ProhibitionReport, "obligation": R.DutyReport}
        premise_types = {"action": R.ActionReport, "target": R.TargetReport, "party": R.PartyReport,
                         "assigner": R.PartyReport}
        for rule in self.rules:
            rr = BNode()
            g.add((root, R.ruleReport, rr))
            g.add((rr, RDF.type, kinds[rule.kind]))
            g.add((rr, R.rule, node(rule.uid)))
            g.add((rr, R.attemptState, R.Attempted if rule.attempted else R.NotAttempted))
            g.add((rr, R.activationState, R.Active if rule.activation == "active" else R.Inactive))
            if rule.activation == "indeterminate":
                g.add((rr, P.indeterminate, Literal(True)))
            for name, value in rule.premises.items():
                pr = BNode()
                g.add((rr, R.premiseReport, pr))
                g.add((pr, RDF.type, premise_types[name]))
                g.add((pr, R.satisfactionState, sat(value)))
            for c in rule.constraints:
                add_constraint(rr, c)
            for d in rule.duties:
                add_duty(rr, d)
            for term in rule.unknown_terms:
                g.add((rr, P.notUnderstood, Literal(term)))
        return g


def _expand(name: str) -> str:
    from policies.vocab import expand

    return expand(name)


def _constraint_lines(c: ConstraintResult, depth: int) -> list[str]:
    pad = "  " * depth
    if c.logical:
        out = [f"{pad}{c.logical}: {_state_word(c.satisfied)}"]
        for child in c.children:
            out.extend(_constraint_lines(child, depth + 1))
        return out
    if c.deferred:
        return [f"{pad}{c.left_operand} {c.operator} {c.right_operand!r}: deferred (enforced when the data is used)"]
    actual = "no value" if c.actual is None else repr(c.actual)
    extra = f" [not understood: {', '.join(c.unknown)}]" if c.unknown else ""
    return [f"{pad}{c.left_operand} {c.operator} {c.right_operand!r}: {_state_word(c.satisfied)} "
            f"(actual {actual}){extra}"]


__all__ = ["ConstraintResult", "DutyReport", "Report", "RuleReport"]
