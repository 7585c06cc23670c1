"""Pactum's ODRL 2.2 policy engine: parse, validate, evaluate and explain usage policies.

This package stands alone: it never imports ``connector`` or ``identity``.

    policy = parse_policy(text)                       # Turtle or JSON-LD, pinned contexts only
    report = evaluate(policy, Request(action="use", target=..., assignee=...), StateOfWorld(now=...))
    report.decision, report.reasons, report.duties, report.explain(), report.to_turtle()
"""

from policies.compile import compile_policy
from policies.evaluate import evaluate
from policies.facts import Event, Request, StateOfWorld
from policies.match import canonical_hash, is_at_least_as_strict, policies_equal
from policies.model import Action, Asset, Constraint, Duty, LogicalConstraint, Party, Policy, Rule, Term
from policies.parse import PolicyParseError, load_policy_file, parse_policies, parse_policy
from policies.profiles.registry import UnknownTermError
from policies.report import ConstraintResult, DutyReport, Report, RuleReport
from policies.serialize import policy_to_jsonld

__all__ = [
    "Action", "Asset", "Constraint", "ConstraintResult", "Duty", "DutyReport", "Event", "LogicalConstraint",
    "Party", "Policy", "PolicyParseError", "Report", "Request", "Rule", "RuleReport", "StateOfWorld", "Term",
    "UnknownTermError", "canonical_hash", "compile_policy", "evaluate", "is_at_least_as_strict",
    "load_policy_file", "parse_policies", "parse_policy", "policies_equal", "policy_to_jsonld",
]
