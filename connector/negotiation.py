"""Contract negotiation (DSP 2025-1) for provider and consumer: pure transitions, then effects via the outbox.

``next_state`` is the whole state machine of the spec (who may send what from which state). The service
functions below load a process, ask ``next_state``, apply the change and enqueue the outgoing message in
one transaction. Steps this connector takes itself (agree, accept, verify, finalize, counter-offer,
terminate) are recorded as ``pending`` and run at once in ``auto`` approval, or wait for the operator in
``manual`` approval (management API); either way :func:`run_step` performs them.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, cast

from sqlalchemy import Table, bindparam, insert, select
from sqlalchemy.orm import Session

from connector.assets import AssetStore
from connector.errors import ConflictError, ConnectorError, NotFoundError
from connector.policy_gate import (
    USE_TIME_OPERANDS,
    Decision,
    parse_offer,
    policy_hash,
    policy_target,
    policy_to_jsonld,
    same_policy,
    with_type,
)
from connector.protocol.errors import InvalidTransition, MessageInvalid, ProcessNotFound
from connector.protocol.jsonld import DSP_CONTEXT
from connector.protocol.processing import (
    Answer,
    check_callback,
    iso,
    new_pid,
    party_from_json,
    party_to_json,
    peer_pid_hook,
    utcnow,
)
from connector.protocol.schemas import validate_message
from connector.storage.tables_protocol import AgreementRow, NegotiationRow, OutboxRow
from connector.trust import Party

if TYPE_CHECKING:
    from connector.context import ConnectorContext

log = logging.getLogger("pactum.connector.negotiation")

Role = Literal["provider", "consumer"]
REQUESTED, OFFERED, ACCEPTED, AGREED = "REQUESTED", "OFFERED", "ACCEPTED", "AGREED"
VERIFIED, FINALIZED, TERMINATED = "VERIFIED", "FINALIZED", "TERMINATED"
STATES = (REQUESTED, OFFERED, ACCEPTED, AGREED, VERIFIED, FINALIZED, TERMINATED)
FINAL = frozenset({FINALIZED, TERMINATED})

# event -> (who sends it, {state before (None = new process): state after})
TRANSITIONS: dict[str, tuple[Role, dict[str | None, str]]] = {
    "request": ("consumer", {None: REQUESTED, OFFERED: REQUESTED}),
    "offer": ("provider", {None: OFFERED, REQUESTED: OFFERED}),
    "accept": ("consumer", {OFFERED: ACCEPTED}),
    "agree": ("provider", {REQUESTED: AGREED, ACCEPTED: AGREED}),
    "verify": ("consumer", {AGREED: VERIFIED}),
    "finalize": ("provider", {VERIFIED: FINALIZED}),
}
TERMINABLE: dict[Role, frozenset[str]] = {
    "consumer": frozenset({REQUESTED, OFFERED, AGREED}),
    "provider": frozenset({REQUESTED, OFFERED, ACCEPTED, VERIFIED}),
}
# operator step names (management API) -> event; a consumer's "offer" is its counter-request
STEP_EVENTS: dict[Role, dict[str, str]] = {
    "provider": {"offer": "offer", "agree": "agree", "finalize": "finalize", "terminate": "terminate"},
    "consumer": {"offer": "request", "request": "request", "accept": "accept", "verify": "verify",
                 "terminate": "terminate"},
}


def next_state(state: str | None, event: str, sender: Role) -> str:
    """The state after ``sender`` sends ``event`` in ``state``; InvalidTransition (400) when not allowed."""
    if event == "terminate":
        if state in TERMINABLE[sender]:
            return TERMINATED
    else:
        who, moves = TRANSITIONS[event]
        if who == sender and state in moves:
            return moves[state]
    allowed = allowed_events(state, sender)
    raise InvalidTransition(
        f"{sender} may not send '{event}' in state {state or '(new)'}"
        + (f"; allowed: {', '.join(allowed)}" if allowed else "; the negotiation is over"),
        allowed=allowed)


def allowed_events(state: str | None, sender: Role) -> tuple[str, ...]:
    out = [e for e, (who, moves) in TRANSITIONS.items() if who == sender and state in moves]
    if state in TERMINABLE[sender]:
        out.append("terminate")
    return tuple(out)


def allowed_steps(row: NegotiationRow) -> tuple[str, ...]:
    """Operator steps possible now for this negotiation (409 answers list them)."""
    role: Role = row.role  # type: ignore[assignment]
    events = set(allowed_events(row.state, role))
    return tuple(step for step, event in STEP_EVENTS[role].items() if event in events)


# ------------------------------------------------------------------------------------------ messages


def negotiation_body(row: NegotiationRow) -> dict[str, Any]:
    """The DSP ``ContractNegotiation`` view of a process."""
    return {"@context": [DSP_CONTEXT], "@type": "ContractNegotiation", "providerPid": row.provider_pid or "",
            "consumerPid": row.consumer_pid or "", "state": row.state}


def _message(message_type: str, row: NegotiationRow, **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"@context": [DSP_CONTEXT], "@type": message_type}
    if row.provider_pid:
        body["providerPid"] = row.provider_pid
    if row.consumer_pid:
        body["consumerPid"] = row.consumer_pid
    body.update({k: v for k, v in fields.items() if v is not None})
    return validate_message(body, message_type)  # never send what the schema forbids


def _peer_url(row: NegotiationRow, suffix: str) -> str:
    """Where the counterparty receives messages about this negotiation."""
    base = row.counterparty_address.rstrip("/")
    if row.role == "provider":
        return f"{base}/negotiations/{row.consumer_pid}/{suffix}"
    return f"{base}/negotiations/{row.provider_pid}/{suffix}"


def _send(ctx: ConnectorContext, session: Session, row: NegotiationRow, message: dict[str, Any], url: str) -> None:
    ctx.outbox.enqueue(session, process_id=row.id, kind="negotiation", message=message, url=url,
                       recipient_did=row.counterparty_did, correlation_id=row.correlation_id)


# ------------------------------------------------------------------------------------------ lookups


# WHY statements built once with bound parameters: every DSP message and every step reads one process;
# building the SELECT (column comparisons, coercions) cost more CPU than running it.
_BY_ID_AND_ROLE = select(NegotiationRow).where(NegotiationRow.id == bindparam("pid"),
                                               NegotiationRow.role == bindparam("role"))
_BY_ID_AND_ROLE_FOR_UPDATE = _BY_ID_AND_ROLE.with_for_update()
_BY_ID_FOR_UPDATE = select(NegotiationRow).where(NegotiationRow.id == bindparam("pid")).with_for_update()
_BY_CONSUMER_PID = select(NegotiationRow).where(NegotiationRow.role == "provider",
                                                NegotiationRow.consumer_pid == bindparam("consumer_pid"),
                                                NegotiationRow.counterparty_did == bindparam("did"))


def load(session: Session, pid: str, *, role: Role, party: Party | None = None,
         for_update: bool = True) -> NegotiationRow:
    """Our process ``pid`` in ``role``; 404 when unknown or when ``party`` is not its counterparty."""
    stmt = _BY_ID_AND_ROLE_FOR_UPDATE if for_update else _BY_ID_AND_ROLE
    row = session.scalars(stmt, {"pid": pid, "role": role}).first()
    if row is None or (party is not None and row.counterparty_did != party.did):
        raise ProcessNotFound(f"no contract negotiation {pid!r} here for this caller", code="negotiation_not_found")
    return row


def get_negotiation(ctx: ConnectorContext, negotiation_id: str) -> NegotiationRow:
    with ctx.sessions() as session:
        row = session.get(NegotiationRow, negotiation_id)
    if row is None:
        raise NotFoundError(f"no contract negotiation {negotiation_id!r}", code="negotiation_not_found")
    return row


# ------------------------------------------------------------------------------------------ offers


@dataclass(frozen=True)
class OfferedContract:
    """An offer this provider made to a caller: the policy (catalog form), its asset and approval mode."""

    offer: dict[str, Any]
    asset_id: str
    approval: str


def find_offer(ctx: ConnectorContext, party: Party, offer_id: str, session: Session | None = None) -> OfferedContract:
    """The offer ``offer_id`` if this provider made it to ``party`` (access policy still permits), or 400.

    ``session``: read in this open session (the request's transaction) instead of new ones."""
    try:
        catalog = importlib.import_module("connector.catalog")
    except ModuleNotFoundError as exc:
        raise ConnectorError("this connector offers no contracts yet", code="catalog_unavailable",
                             status=503) from exc
    found = catalog.find_offer(ctx, party, offer_id, session)
    if found is None:
        raise MessageInvalid(f"offer {offer_id!r} is not (or no longer) offered to {party.did}",
                             code="offer_unknown")
    if isinstance(found[0], dict):  # (offer in catalog form, asset id, approval)
        offer_doc, asset_id, approval = found[0], str(found[1]), found[2]
    else:  # (contract definition, asset, parsed offer)
        definition, asset, policy = found
        offer_doc, asset_id, approval = policy_to_jsonld(policy), str(asset.id), getattr(definition, "approval", None)
    offer = {k: v for k, v in offer_doc.items() if k != "@context"}
    offer.update({"@id": offer_id, "@type": "Offer", "target": asset_id, "assigner": ctx.did})
    return OfferedContract(offer, asset_id, str(approval or ctx.settings.approval))


def _offer_with_target(offer: Mapping[str, Any], target: str, assigner: str | None = None) -> dict[str, Any]:
    out = {k: v for k, v in offer.items() if k != "@context"}
    out["@type"] = "Offer"
    out["target"] = target
    if assigner:
        out["assigner"] = assigner
    return out


def offers_match(requested: Mapping[str, Any], offered: Mapping[str, Any], target: str) -> bool:
    """Same offer id and the same policy meaning (canonical equality via the policy engine)."""
    if requested.get("@id") != offered.get("@id"):
        return False
    mine = parse_offer(_offer_with_target(offered, target, offered.get("assigner")))
    theirs = parse_offer(_offer_with_target(requested, target, offered.get("assigner")))
    return same_policy(mine, theirs)


# ------------------------------------------------------------------------------------------ inbound


_INSERT_NEGOTIATION = insert(cast(Table, NegotiationRow.__table__))
_NEGOTIATION_FIELDS = tuple(c.key for c in NegotiationRow.__table__.c)


def _new_row(role: Role, **fields: Any) -> NegotiationRow:
    now = utcnow()
    return NegotiationRow(role=role, created_at=now, updated_at=now, **fields)


def _set_state(row: NegotiationRow, state: str, *, pending: str | None = None) -> None:
    row.state = state
    row.pending = pending
    row.updated_at = utcnow()


def provider_receive_request(ctx: ConnectorContext, session: Session, party: Party, message: dict[str, Any],
                             provider_pid: str | None, correlation_id: str | None) -> Answer:
    """ContractRequestMessage: a new negotiation (201) or the consumer's counter-request (200)."""
    offer = message["offer"]
    if provider_pid is None:
        callback = check_callback(message.get("callbackAddress"))
        consumer_pid = message["consumerPid"]
        existing = session.scalars(_BY_CONSUMER_PID, {"consumer_pid": consumer_pid, "did": party.did}).first()
        if existing is not None:
            raise InvalidTransition(f"a negotiation with consumerPid {consumer_pid!r} already exists "
                                    f"(state {existing.state})", code="duplicate_consumer_pid")
        offered = find_offer(ctx, party, offer["@id"], session)
        if not offers_match(offer, offered.offer, offered.asset_id):
            raise MessageInvalid(f"the requested policy differs from offer {offer['@id']!r} as offered",
                                 code="offer_mismatch")
        pid = new_pid()
        row = _new_row("provider", id=pid, state=next_state(None, "request", "consumer"), consumer_pid=consumer_pid,
                       provider_pid=pid, counterparty_did=party.did, counterparty_address=callback,
                       offer_id=offer["@id"], asset_id=offered.asset_id,
                       policy=json.dumps(_offer_with_target(offered.offer, offered.asset_id, ctx.did)),
                       approval=offered.approval, pending="agree", party=party_to_json(party),
                       correlation_id=correlation_id or pid)
        session.add(row)
        session.flush()
        log.info("negotiation %s requested by %s for offer %s", pid, party.did, offer["@id"])
        return Answer(201, negotiation_body(row), pid)
    row = load(session, provider_pid, role="provider", party=party)
    _check_pids(row, message)
    new_state = next_state(row.state, "request", "consumer")
    target = offer.get("target") or row.asset_id
    if row.consumer_pid is None:  # a provider-initiated negotiation whose offer answer carried no pid
        row.consumer_pid = message.get("consumerPid")
    proposal = _offer_with_target(offer, str(target), ctx.did)
    if row.policy and not same_policy(parse_offer(proposal), parse_offer(json.loads(row.policy))):
        row.approval = "manual"  # auto approves what we offered; another policy waits for the operator
    row.policy = json.dumps(proposal)
    row.offer_id = offer.get("@id", row.offer_id)
    row.party = party_to_json(party)
    _set_state(row, new_state, pending="agree")
    return Answer(200, negotiation_body(row), row.id)


def _check_pids(row: NegotiationRow, message: Mapping[str, Any]) -> None:
    """The pids in a message must be this process's (once known)."""
    for key, mine in (("providerPid", row.provider_pid), ("consumerPid", row.consumer_pid)):
        theirs = message.get(key)
        if theirs is not None and mine is not None and theirs != mine:
            raise ProcessNotFound(f"{key} {theirs!r} does not belong to this negotiation", code="pid_mismatch")


def provider_receive_event(ctx: ConnectorContext, session: Session, party: Party, message: dict[str, Any],
                           provider_pid: str) -> Answer:
    row = load(session, provider_pid, role="provider", party=party)
    _check_pids(row, message)
    if row.consumer_pid is None:
        row.consumer_pid = message.get("consumerPid")
    if message.get("eventType") != "ACCEPTED":
        raise InvalidTransition(f"a consumer may only send the ACCEPTED event, not {message.get('eventType')!r}",
                                allowed=allowed_events(row.state, "consumer"))
    _set_state(row, next_state(row.state, "accept", "consumer"), pending="agree")
    row.party = party_to_json(party)
    return Answer(200, None, row.id)


def provider_receive_verification(ctx: ConnectorContext, session: Session, party: Party, message: dict[str, Any],
                                  provider_pid: str) -> Answer:
    row = load(session, provider_pid, role="provider", party=party)
    _check_pids(row, message)
    _set_state(row, next_state(row.state, "verify", "consumer"), pending="finalize")
    return Answer(200, None, row.id)


def receive_termination(ctx: ConnectorContext, session: Session, party: Party, message: dict[str, Any],
                        pid: str, role: Role) -> Answer:
    row = load(session, pid, role=role, party=party)
    _check_pids(row, message)
    sender: Role = "consumer" if role == "provider" else "provider"
    _set_state(row, next_state(row.state, "terminate", sender))
    row.error_code = str(message.get("code") or "terminated")
    row.error_reason = "; ".join(str(r) for r in message.get("reason", [])) or f"terminated by the {sender}"
    log.info("negotiation %s terminated by the %s: %s", row.id, sender, row.error_reason)
    return Answer(200, None, row.id)


def consumer_receive_offer(ctx: ConnectorContext, session: Session, party: Party, message: dict[str, Any],
                           consumer_pid: str | None, correlation_id: str | None) -> Answer:
    """ContractOfferMessage: a provider-initiated negotiation (201) or a counter-offer (200)."""
    offer = message["offer"]
    if consumer_pid is None:
        callback = check_callback(message.get("callbackAddress"))
        pid = new_pid()
        row = _new_row("consumer", id=pid, state=next_state(None, "offer", "provider"), consumer_pid=pid,
                       provider_pid=message["providerPid"], counterparty_did=party.did,
                       counterparty_address=callback, offer_id=offer.get("@id"), asset_id=offer.get("target"),
                       policy=json.dumps(offer), approval=ctx.settings.approval, pending="accept",
                       party=party_to_json(party), correlation_id=correlation_id or pid)
        session.add(row)
        session.flush()
        return Answer(201, negotiation_body(row), pid)
    row = load(session, consumer_pid, role="consumer", party=party)
    _check_pids(row, message)
    if row.provider_pid is None:
        row.provider_pid = message.get("providerPid")
    _set_state(row, next_state(row.state, "offer", "provider"), pending="accept")
    counter = {**offer, "target": offer.get("target") or row.asset_id}
    if row.policy and not same_policy(parse_offer(_offer_with_target(counter, str(counter["target"]),
                                                                     offer.get("assigner"))),
                                      parse_offer(json.loads(row.policy) | {"assigner": offer.get("assigner")})):
        row.approval = "manual"  # a counter-offer we did not ask for waits for the operator
    row.policy = json.dumps(counter)
    row.offer_id = offer.get("@id", row.offer_id)
    return Answer(200, None, row.id)


def consumer_receive_agreement(ctx: ConnectorContext, session: Session, party: Party, message: dict[str, Any],
                               consumer_pid: str) -> Answer:
    row = load(session, consumer_pid, role="consumer", party=party)
    _check_pids(row, message)
    new_state = next_state(row.state, "agree", "provider")
    if row.provider_pid is None:
        row.provider_pid = message.get("providerPid")
    agreement = message["agreement"]
    problem = _agreement_problem(ctx, row, agreement)
    if problem:
        raise MessageInvalid(problem, code="agreement_mismatch")
    policy = parse_offer(with_type(agreement, "Agreement"))
    session.add(AgreementRow(
        id=agreement["@id"], negotiation_id=row.id, role="consumer", asset_id=agreement["target"],
        assigner=agreement["assigner"], assignee=agreement["assignee"], policy=json.dumps(agreement),
        policy_hash=policy_hash(policy), signed_at=_timestamp(agreement.get("timestamp")),
        counterparty_address=row.counterparty_address, counterparty_did=row.counterparty_did))
    row.agreement_id = agreement["@id"]
    _set_state(row, new_state, pending="verify")
    return Answer(200, None, row.id)


def _timestamp(value: Any) -> Any:
    from datetime import datetime

    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            pass
    return utcnow()


def _agreement_problem(ctx: ConnectorContext, row: NegotiationRow, agreement: Mapping[str, Any]) -> str | None:
    """Why the agreement is not what we negotiated (None when it is)."""
    if agreement.get("assignee") != ctx.did:
        return f"agreement assignee {agreement.get('assignee')!r} is not this connector ({ctx.did})"
    if agreement.get("assigner") != row.counterparty_did:
        return f"agreement assigner {agreement.get('assigner')!r} is not the provider {row.counterparty_did}"
    if row.asset_id and agreement.get("target") != row.asset_id:
        return f"agreement target {agreement.get('target')!r} differs from the negotiated {row.asset_id!r}"
    if row.policy:
        expected = json.loads(row.policy)
        target, assigner = str(agreement.get("target")), agreement.get("assigner")
        ours = parse_offer(_offer_with_target(expected, target, assigner))
        theirs = parse_offer(_offer_with_target(
            {k: v for k, v in agreement.items() if k not in ("assignee", "timestamp")}, target, assigner))
        if not same_policy(ours, theirs):
            return "the agreement's policy differs from the offer this connector requested or accepted"
    return None


def consumer_receive_event(ctx: ConnectorContext, session: Session, party: Party, message: dict[str, Any],
                           consumer_pid: str) -> Answer:
    row = load(session, consumer_pid, role="consumer", party=party)
    _check_pids(row, message)
    if message.get("eventType") != "FINALIZED":
        raise InvalidTransition(f"a provider may only send the FINALIZED event, not {message.get('eventType')!r}",
                                allowed=allowed_events(row.state, "provider"))
    _set_state(row, next_state(row.state, "finalize", "provider"))
    log.info("negotiation %s finalized; agreement %s", row.id, row.agreement_id)
    return Answer(200, None, row.id)


# ------------------------------------------------------------------------------------------ local steps


class StepNotAllowed(ConflictError):
    """An operator step that the negotiation's state does not allow now (409 with the allowed steps)."""

    code = "step_not_allowed"

    def __init__(self, message: str, allowed: tuple[str, ...]) -> None:
        super().__init__(message)
        self.allowed = allowed


def start_negotiation(ctx: ConnectorContext, *, counterparty_address: str, counterparty_did: str,
                      offer: Mapping[str, Any], approval: str | None = None,
                      correlation_id: str | None = None) -> NegotiationRow:
    """Consumer: send a ContractRequestMessage for ``offer`` (which must carry ``@id`` and ``target``)."""
    address = check_callback(counterparty_address, "counterPartyAddress")
    if not offer.get("@id") or not offer.get("target"):
        raise MessageInvalid("the offer needs '@id' and 'target' (the dataset id)", code="offer_incomplete")
    offer_json = _offer_with_target(offer, str(offer["target"]), offer.get("assigner"))
    parse_offer(offer_json)  # refuse an unreadable policy before anything is sent
    pid = new_pid()
    row = _new_row("consumer", id=pid, state=next_state(None, "request", "consumer"), consumer_pid=pid,
                   provider_pid=None, counterparty_did=counterparty_did, counterparty_address=address,
                   offer_id=str(offer["@id"]), asset_id=str(offer["target"]), policy=json.dumps(offer_json),
                   approval=approval or ctx.settings.approval, correlation_id=correlation_id or pid)
    with ctx.sessions.begin() as session:
        # WHY Core: the ORM unit of work (flush) cost ~0.4 ms of a ~1.3 ms start; the returned row is the
        # same values, never attached to a session (as before: the session was closed when it was returned)
        session.execute(_INSERT_NEGOTIATION, {c: getattr(row, c) for c in _NEGOTIATION_FIELDS})
        message = _message("ContractRequestMessage", row, offer=offer_json, callbackAddress=ctx.settings.protocol_url)
        _send(ctx, session, row, message, f"{address}/negotiations/request")
    return row


def offer_to(ctx: ConnectorContext, *, counterparty_address: str, counterparty_did: str,
             offer: Mapping[str, Any], correlation_id: str | None = None) -> NegotiationRow:
    """Provider: start a negotiation with a ContractOfferMessage to a consumer (provider-initiated offer)."""
    address = check_callback(counterparty_address, "counterPartyAddress")
    if not offer.get("target"):
        raise MessageInvalid("a provider's offer needs 'target' (the dataset id)", code="offer_incomplete")
    offer_json = _offer_with_target({"@id": offer.get("@id") or new_pid(), **offer}, str(offer["target"]), ctx.did)
    parse_offer(offer_json)
    pid = new_pid()
    with ctx.sessions.begin() as session:
        row = _new_row("provider", id=pid, state=next_state(None, "offer", "provider"), consumer_pid=None,
                       provider_pid=pid, counterparty_did=counterparty_did, counterparty_address=address,
                       offer_id=offer_json["@id"], asset_id=offer_json["target"], policy=json.dumps(offer_json),
                       approval=ctx.settings.approval, correlation_id=correlation_id or pid)
        session.add(row)
        message = _message("ContractOfferMessage", row, offer=offer_json, callbackAddress=ctx.settings.protocol_url)
        _send(ctx, session, row, message, f"{address}/negotiations/offers")
    return row


def run_step(ctx: ConnectorContext, negotiation_id: str, step: str, *, body: Mapping[str, Any] | None = None,
             operator: bool = False) -> NegotiationRow:
    """Perform one of this connector's own steps (auto approval, or the operator via management)."""
    with ctx.extras["locks"](negotiation_id), ctx.sessions.begin() as session:
        row = _locked_row(session, negotiation_id)
        if row is None:
            raise NotFoundError(f"no contract negotiation {negotiation_id!r}", code="negotiation_not_found")
        _take_step(ctx, session, row, step, dict(body or {}), operator)
    return row


def _locked_row(session: Session, negotiation_id: str) -> NegotiationRow | None:
    return session.scalars(_BY_ID_FOR_UPDATE, {"pid": negotiation_id}).first()


def _take_step(ctx: ConnectorContext, session: Session, row: NegotiationRow, step: str, body: dict[str, Any],
               operator: bool) -> None:
    role: Role = row.role  # type: ignore[assignment]
    event = STEP_EVENTS[role].get(step)
    allowed = allowed_steps(row)
    if event is None or step not in allowed:
        raise StepNotAllowed(f"'{step}' is not possible for this {role} negotiation in state {row.state}"
                             + (f"; allowed now: {', '.join(allowed)}" if allowed else ""), allowed)
    if not operator and row.pending != step:
        return  # someone else already moved it on
    _STEPS[event](ctx, session, row, body)


def _lent(session: Session) -> Any:
    """The step's own session, lent to a store that reads (see connector.catalog.LentSession)."""
    from connector.catalog import LentSession

    return LentSession(session)


def _step_agree(ctx: ConnectorContext, session: Session, row: NegotiationRow, body: dict[str, Any]) -> None:
    """Provider: evaluate the contract policy on the caller's verified claims; agree, or terminate with why."""
    policy_json = json.loads(row.policy or "{}")
    policy = parse_offer(policy_json)
    party = party_from_json(row.party, row.counterparty_did)
    asset = AssetStore(_lent(session), ctx.settings).find(row.asset_id) if row.asset_id else None
    decision: Decision = ctx.policy_gate.decide(policy, target=policy_target(policy, row.asset_id),
                                                assignee=row.counterparty_did,
                                                assigner=ctx.did, credentials=party.credentials, facts=party.facts,
                                                asset=asset.policy_facts() if asset else None,
                                                defer=USE_TIME_OPERANDS)
    if not decision.permitted:
        _terminate(ctx, session, row, "policy_denied", f"contract policy not satisfied: {decision.reason}")
        return
    agreement_id = new_pid()
    now = utcnow()
    agreement = with_type(policy_json, "Agreement", **{
        "@id": agreement_id, "target": row.asset_id, "assigner": ctx.did, "assignee": row.counterparty_did,
        "timestamp": iso(now)})
    agreement_policy = parse_offer(agreement)
    session.add(AgreementRow(id=agreement_id, negotiation_id=row.id, role="provider", asset_id=str(row.asset_id),
                             assigner=ctx.did, assignee=row.counterparty_did, policy=json.dumps(agreement),
                             policy_hash=policy_hash(agreement_policy), signed_at=now,
                             counterparty_address=row.counterparty_address, counterparty_did=row.counterparty_did))
    row.agreement_id = agreement_id
    _set_state(row, next_state(row.state, "agree", "provider"))
    _send(ctx, session, row, _message("ContractAgreementMessage", row, agreement=agreement),
          _peer_url(row, "agreement"))


def _step_offer(ctx: ConnectorContext, session: Session, row: NegotiationRow, body: dict[str, Any]) -> None:
    """Provider counter-offer: a new ODRL offer (from the operator's body) for the consumer."""
    offer = body.get("policy") or body.get("offer")
    if not isinstance(offer, dict):
        raise MessageInvalid("a counter-offer needs its ODRL policy in 'policy'", code="policy_missing")
    offer_json = _offer_with_target({"@id": offer.get("@id") or new_pid(), **offer}, str(row.asset_id), ctx.did)
    parse_offer(offer_json)
    row.policy = json.dumps(offer_json)
    row.offer_id = offer_json["@id"]
    _set_state(row, next_state(row.state, "offer", "provider"))
    _send(ctx, session, row, _message("ContractOfferMessage", row, offer=offer_json), _peer_url(row, "offers"))


def _step_request(ctx: ConnectorContext, session: Session, row: NegotiationRow, body: dict[str, Any]) -> None:
    """Consumer counter-request: propose another policy for the offered dataset."""
    offer = body.get("policy") or body.get("offer")
    if not isinstance(offer, dict):
        raise MessageInvalid("a counter-request needs its ODRL policy in 'policy'", code="policy_missing")
    current = json.loads(row.policy or "{}")
    offer_json = _offer_with_target({"@id": offer.get("@id") or current.get("@id") or new_pid(), **offer},
                                    str(row.asset_id), current.get("assigner"))
    parse_offer(offer_json)
    row.policy = json.dumps(offer_json)
    _set_state(row, next_state(row.state, "request", "consumer"))
    _send(ctx, session, row, _message("ContractRequestMessage", row, offer=offer_json), _peer_url(row, "request"))


def _step_accept(ctx: ConnectorContext, session: Session, row: NegotiationRow, body: dict[str, Any]) -> None:
    _set_state(row, next_state(row.state, "accept", "consumer"))
    _send(ctx, session, row, _message("ContractNegotiationEventMessage", row, eventType="ACCEPTED"),
          _peer_url(row, "events"))


def _step_verify(ctx: ConnectorContext, session: Session, row: NegotiationRow, body: dict[str, Any]) -> None:
    _set_state(row, next_state(row.state, "verify", "consumer"))
    _send(ctx, session, row, _message("ContractAgreementVerificationMessage", row),
          _peer_url(row, "agreement/verification"))


def _step_finalize(ctx: ConnectorContext, session: Session, row: NegotiationRow, body: dict[str, Any]) -> None:
    _set_state(row, next_state(row.state, "finalize", "provider"))
    _send(ctx, session, row, _message("ContractNegotiationEventMessage", row, eventType="FINALIZED"),
          _peer_url(row, "events"))
    log.info("negotiation %s finalized; agreement %s", row.id, row.agreement_id)


def _step_terminate(ctx: ConnectorContext, session: Session, row: NegotiationRow, body: dict[str, Any]) -> None:
    reason = str(body.get("reason") or "terminated by the operator")
    _terminate(ctx, session, row, str(body.get("code") or "terminated"), reason)


def _terminate(ctx: ConnectorContext, session: Session, row: NegotiationRow, code: str, reason: str) -> None:
    role: Role = row.role  # type: ignore[assignment]
    _set_state(row, next_state(row.state, "terminate", role))
    row.error_code, row.error_reason = code, reason
    peer_pid = row.consumer_pid if role == "provider" else row.provider_pid
    if peer_pid:  # a consumer that never learnt the providerPid has nobody to tell
        _send(ctx, session, row, _message("ContractNegotiationTerminationMessage", row, code=code, reason=[reason]),
              _peer_url(row, "termination"))
    log.info("negotiation %s terminated by this %s: %s", row.id, role, reason)


_STEPS = {"agree": _step_agree, "offer": _step_offer, "request": _step_request, "accept": _step_accept,
          "verify": _step_verify, "finalize": _step_finalize, "terminate": _step_terminate}


# ------------------------------------------------------------------------------------------ automation


async def advance(ctx: ConnectorContext, negotiation_id: str) -> None:
    """Run the pending step of an ``auto`` negotiation right away (no polling), in one worker-thread hop."""
    await asyncio.to_thread(advance_now, ctx, negotiation_id)


def advance_now(ctx: ConnectorContext, negotiation_id: str) -> None:
    """The pending automatic step, if any, read and taken under the process lock in one transaction."""
    with ctx.extras["locks"](negotiation_id), ctx.sessions.begin() as session:
        row = _locked_row(session, negotiation_id)
        if row is not None:
            take_automatic_step(ctx, session, row)


def take_automatic_step(ctx: ConnectorContext, session: Session, row: NegotiationRow) -> None:
    """Take ``row``'s pending step now if it is ``auto``, in the caller's transaction.

    WHY in the caller's transaction: an inbound message that makes a step due (a request the provider agrees
    to, an agreement the consumer verifies) takes it in the same transaction, with no second transaction,
    thread hop or lock of its own. A savepoint keeps a failing step from undoing what led to it: the step
    stays pending and inspectable, and the failure is logged.
    """
    if not row.pending or row.approval != "auto" or row.state in FINAL:
        return
    step = row.pending
    try:
        with session.begin_nested():
            _take_step(ctx, session, row, step, {}, operator=False)
    except ConnectorError as exc:
        log.warning("automatic step %s of negotiation %s failed: %s", step, row.id, exc)


def step_after_message(ctx: ConnectorContext, session: Session, negotiation_id: str) -> None:
    """:func:`take_automatic_step` for the process an inbound message just changed (already in ``session``)."""
    row = session.get(NegotiationRow, negotiation_id)
    if row is not None:
        take_automatic_step(ctx, session, row)


async def resume_all(ctx: ConnectorContext) -> None:
    """After a restart: run every automatic step that was decided but not yet taken."""
    def pending_ids() -> list[str]:
        with ctx.sessions() as session:
            return list(session.scalars(select(NegotiationRow.id).where(
                NegotiationRow.pending.is_not(None), NegotiationRow.approval == "auto",
                NegotiationRow.state.not_in(FINAL))))

    for negotiation_id in await asyncio.to_thread(pending_ids):
        await advance(ctx, negotiation_id)


def _on_failed(ctx: ConnectorContext) -> Any:
    """A message that could not be delivered for good ends the negotiation locally, with the reason."""
    def hook(row: OutboxRow, status: int | None, detail: str) -> None:
        reason = _remote_reason(detail) or detail[:500]
        with ctx.extras["locks"](row.process_id), ctx.sessions.begin() as session:
            neg = session.get(NegotiationRow, row.process_id)
            if neg is None or neg.state in FINAL:
                return
            neg.state, neg.pending = TERMINATED, None
            neg.error_code = "delivery_failed" if status is None else f"counterparty_{status}"
            neg.error_reason = f"{row.message_type} was refused or undeliverable: {reason}"
            neg.updated_at = utcnow()
    return hook


def _remote_reason(detail: str) -> str | None:
    try:
        body = json.loads(detail)
    except ValueError:
        return None
    if isinstance(body, dict) and isinstance(body.get("reason"), list):
        return "; ".join(str(r) for r in body["reason"])
    return None


def register(ctx: ConnectorContext) -> None:
    """Hook this module into the outbox (called once when the context is built)."""
    ctx.outbox.on_delivered("ContractRequestMessage", peer_pid_hook(NegotiationRow, "consumer", "providerPid"))
    ctx.outbox.on_delivered("ContractOfferMessage", peer_pid_hook(NegotiationRow, "provider", "consumerPid"))
    ctx.outbox.on_failed("negotiation", _on_failed(ctx))
