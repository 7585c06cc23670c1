"""The connector's adapter to the policy engine: parse what DSP carries, match offers, decide, explain.

WHY an adapter: the state machines must not know ODRL details; they ask three questions (is this the offer
I made? does the contract hold for this verified party now? what is the canonical hash to store?) and get
plain answers, with every engine error turned into a ``ConnectorError`` the HTTP edge can report.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from connector.errors import ConnectorError
from policies import Constraint, Policy, Request, StateOfWorld, canonical_hash, evaluate, parse_policy, policies_equal
from policies import policy_to_jsonld as _policy_to_jsonld
from policies.errors import PolicyError

ODRL_PREFIX = "http://www.w3.org/ns/odrl/2/"
# Conditions the consumer accepts by agreeing and that are enforced when the data is used (transfer start,
# every data-plane request); the negotiation decision leaves them to those later checks.
RETENTION = "https://w3id.org/pactum/xborder/v1#retention"
USE_TIME_OPERANDS = ("purpose", "count", "elapsedTime", "event", RETENTION)
# At transfer start nothing is used yet: counted uses are decided by the data plane on every request.
TRANSFER_START_DEFERRED = ("count",)
_DELETE = ODRL_PREFIX + "delete"
_ELAPSED = ODRL_PREFIX + "elapsedTime"
_UPPER_BOUNDS = {ODRL_PREFIX + "lteq", ODRL_PREFIX + "lt", ODRL_PREFIX + "eq"}
# How a consumer states its purpose in a DSP TransferRequestMessage (an extension property).
PURPOSE_PROPERTY = "https://w3id.org/pactum/ns/purpose"
DSP_CONTEXT = "https://w3id.org/dspace/2025/1/context.jsonld"
ODRL_PROFILE_CONTEXT = "https://w3id.org/dspace/2025/1/odrl-profile.jsonld"


class PolicyGateError(ConnectorError):
    """A policy in a message cannot be read or does not match what was offered."""

    code = "policy_invalid"
    status = 400


@dataclass(frozen=True)
class Decision:
    """The engine's answer reduced to what a state machine needs."""

    permitted: bool
    reasons: tuple[str, ...]
    explanation: str
    duties: tuple[dict[str, Any], ...] = field(default=())

    @property
    def reason(self) -> str:
        """One line for a DSP ``reason`` / termination message."""
        text = "; ".join(self.reasons) if self.reasons else self.explanation
        return text or ("permitted" if self.permitted else "denied by policy")


def parse_offer(data: Mapping[str, Any]) -> Policy:
    """An ODRL Offer/Agreement as DSP carries it (compact JSON-LD with the DSP context, or plain JSON).

    WHY cached: JSON-LD parsing costs tens of milliseconds, and one negotiation reads the same offer several
    times (catalog trace, match, agreement); a policy is immutable, so equal documents share one parse.
    Agreements differ from each other only in their ``urn:uuid`` @id and their ``timestamp``: see
    :func:`_template` for how those still share one parse.
    """
    template = _template(data)
    if template is None:
        return _parse_cached(json.dumps(data, sort_keys=True, default=str))
    shared = _parse_cached(template)
    # a copy with the real uid; only the uid-independent canonical hash may be carried over. It is computed
    # on the shared parse (once per template), else every agreement would hash its own copy again.
    return replace(shared, uid=str(data["@id"]), _cache={"canonical_hash": canonical_hash(shared)})


_UUID_URN = re.compile(r"urn:uuid:[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_UID_PLACEHOLDER = "urn:uuid:00000000-0000-4000-8000-000000000000"


def _template(data: Mapping[str, Any]) -> str | None:
    """The document with its uid replaced by a placeholder and its DSP ``timestamp`` left out, or None.

    WHY this is the same policy: the parsed model reads the policy node's ``@id`` only as its ``uid`` and
    never reads ``timestamp`` (a DSP literal on the agreement). So only a ``urn:uuid`` @id that occurs
    nowhere else in the document is replaced (nothing else can refer to it), and only a string timestamp is
    dropped. Every agreement of one offer then parses once, instead of once per negotiation on each side.
    "Nowhere else" is checked on the template itself and on the dropped timestamp (one serialisation, not two).
    """
    uid = data.get("@id")
    if not isinstance(uid, str) or not _UUID_URN.fullmatch(uid):
        return None
    timestamp = data.get("timestamp")
    dropped = isinstance(timestamp, str)
    if isinstance(timestamp, str) and uid in timestamp:
        return None
    doc = {k: v for k, v in data.items() if not (dropped and k == "timestamp")}
    doc["@id"] = _UID_PLACEHOLDER
    template = json.dumps(doc, sort_keys=True, default=str)
    return None if uid in template else template


def parse_document(document: Mapping[str, Any]) -> Policy:
    """A policy from a JSON-LD document as it stands (its own ``@context``), parsed once per distinct document.

    Raises the engine's PolicyError like ``policies.parse_policy``.
    """
    return _parse_document_cached(json.dumps(document, sort_keys=True, default=str))


@lru_cache(maxsize=1024)
def _parse_document_cached(canonical: str) -> Policy:
    return parse_policy(json.loads(canonical), format="json-ld")


@lru_cache(maxsize=2048)
def _parse_cached(canonical: str) -> Policy:
    doc = dict(json.loads(canonical))
    if doc.get("@context") in (None, DSP_CONTEXT, [DSP_CONTEXT]):
        # ODRL terms are scoped to DSP message types in the DSP context; a bare policy needs the profile too
        doc["@context"] = [DSP_CONTEXT, ODRL_PROFILE_CONTEXT]
    if "@type" not in doc:
        doc["@type"] = "Offer"
    try:
        return parse_policy(doc, format="json-ld")
    except PolicyError as exc:
        raise PolicyGateError(f"the policy cannot be read: {exc}", code=f"policy_{exc.code}") from exc


def policy_to_jsonld(policy: Policy, *, with_context: bool = False) -> dict[str, Any]:
    """Compact ODRL JSON-LD; without ``@context`` when embedded in a DSP message that has its own."""
    out = _policy_to_jsonld(policy)
    if not with_context:
        out.pop("@context", None)
    return out


def policy_hash(policy: Policy) -> str:
    return canonical_hash(policy)


def same_policy(a: Policy, b: Policy) -> bool:
    """Same meaning regardless of uid, syntax and order (what an offer match needs)."""
    return policies_equal(a, b)


def with_type(document: Mapping[str, Any], odrl_type: str, **fields: Any) -> dict[str, Any]:
    """A copy of a policy JSON with another ``@type`` (Offer -> Agreement) and extra fields set."""
    out = {k: v for k, v in document.items() if k != "@context"}
    out["@type"] = odrl_type
    out.update({k: v for k, v in fields.items() if v is not None})
    return out


def decide(policy: Policy, *, action: str = "use", target: str | None, assignee: str | None,
           assigner: str | None, credentials: Sequence[Mapping[str, Any]] = (), facts: Mapping[str, Any] | None = None,
           agreement_time: datetime | None = None, counters: Mapping[str, int] | None = None,
           now: datetime | None = None, asset: Mapping[str, Any] | None = None, purpose: str | None = None,
           defer: Sequence[str] = ()) -> Decision:
    """Evaluate ``policy`` for this party and these verified credentials; a pure decision.

    ``asset`` carries the target's properties (data class, category, origin) that cross-border terms read;
    ``defer`` names left operands this decision leaves to later checks (``USE_TIME_OPERANDS`` at negotiation).
    """
    try:
        state = StateOfWorld(now=now or datetime.now(UTC), facts=dict(facts or {}), credentials=tuple(credentials),
                             counters=dict(counters or {}), agreement_time=agreement_time, asset=dict(asset or {}))
        request = Request(action=action, target=target, assignee=assignee, assigner=assigner, purpose=purpose)
        report = evaluate(policy, request, state, defer=defer)
    except PolicyError as exc:
        raise PolicyGateError(f"the policy cannot be evaluated: {exc}", code=f"policy_{exc.code}") from exc
    duties = tuple(
        {"action": d.action, "state": d.state, "parameters": dict(d.parameters or {}), "rule": d.rule_uid}
        for d in report.duties
    )
    return Decision(report.decision == "permit", tuple(report.reasons), report.explain(), duties)


def promised_retention(policy: Policy) -> str | None:
    """How long the consumer keeps the data, as the agreement itself guarantees: its delete duty's deadline.

    WHY: a cross-border ``xb:retention`` bound is met by an agreement whose ``delete`` duty (refined by
    ``elapsedTime``) the consumer's connector executes and reports; without such a duty it stays unknown.
    """
    for rule in policy.permissions:
        for duty in rule.duties:
            for action in duty.actions:
                if action.iri != _DELETE:
                    continue
                for refinement in action.refinements:
                    if (isinstance(refinement, Constraint) and refinement.left_operand == _ELAPSED
                            and refinement.operator in _UPPER_BOUNDS and refinement.right_operand):
                        return str(refinement.right_operand[0].value)
    return None


def agreement_facts(policy: Policy, facts: Mapping[str, Any]) -> dict[str, Any]:
    """The party's facts plus what the agreement itself establishes (the promised retention)."""
    out = dict(facts)
    retention = promised_retention(policy)
    if retention is not None:
        out.setdefault(RETENTION, retention)
    return out


def policy_target(policy: Policy, fallback: str | None) -> str | None:
    """The target as the engine reads it (a bare asset id becomes an IRI against the JSON-LD base)."""
    for rule in policy.rules:
        for target in rule.targets:
            return target.iri
    return fallback


class PolicyGate:
    """Stateless today; an object so the context can carry it and tests can swap the clock (``now``)."""

    def __init__(self, now: Any = None) -> None:
        self._now = now

    def now(self) -> datetime:
        return self._now() if callable(self._now) else datetime.now(UTC)

    def decide(self, policy: Policy, **kwargs: Any) -> Decision:
        kwargs.setdefault("now", self.now())
        return decide(policy, **kwargs)
