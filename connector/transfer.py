"""Transfer process (DSP 2025-1) for provider and consumer: pure transitions, effects via outbox and data plane.

``next_state`` is the spec's state machine. A provider re-evaluates the agreement's policy on the consumer's
verified claims before it starts (or resumes) a transfer and refuses (terminates) when it no longer holds;
the data plane (engineer G) then issues the EDR (PULL) or streams the data (PUSH). The data plane calls back
(``dataplane_hooks``) to complete a PUSH, or to suspend/terminate transfers whose agreement stopped holding.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC
from typing import TYPE_CHECKING, Any, Literal, cast

from sqlalchemy import Table, bindparam, insert, select
from sqlalchemy.orm import Session

from connector.assets import AssetStore
from connector.audit import FastStatement
from connector.errors import ConflictError, ConnectorError, NotFoundError
from connector.policy_gate import (
    PURPOSE_PROPERTY,
    TRANSFER_START_DEFERRED,
    agreement_facts,
    parse_offer,
    policy_target,
)
from connector.protocol.errors import InvalidTransition, MessageInvalid, ProcessNotFound
from connector.protocol.jsonld import DSP_CONTEXT
from connector.protocol.processing import (
    Answer,
    check_callback,
    new_pid,
    party_from_json,
    party_to_json,
    peer_pid_hook,
    utcnow,
)
from connector.protocol.schemas import validate_message
from connector.storage.tables_protocol import AgreementRow, NegotiationRow, OutboxRow, TransferRow
from connector.trust import Party

if TYPE_CHECKING:
    from connector.context import ConnectorContext

log = logging.getLogger("pactum.connector.transfer")

Role = Literal["provider", "consumer"]
REQUESTED, STARTED, SUSPENDED, COMPLETED, TERMINATED = "REQUESTED", "STARTED", "SUSPENDED", "COMPLETED", "TERMINATED"
STATES = (REQUESTED, STARTED, SUSPENDED, COMPLETED, TERMINATED)
FINAL = frozenset({COMPLETED, TERMINATED})
TRANSFER_TYPES = ("HttpData-PULL", "HttpData-PUSH")

# event -> {sender: {state before (None = new): state after}}
TRANSITIONS: dict[str, dict[Role, dict[str | None, str]]] = {
    "request": {"consumer": {None: REQUESTED}},
    "start": {"provider": {REQUESTED: STARTED, SUSPENDED: STARTED}, "consumer": {SUSPENDED: STARTED}},
    "complete": {"provider": {STARTED: COMPLETED}, "consumer": {STARTED: COMPLETED}},
    "suspend": {"provider": {STARTED: SUSPENDED}, "consumer": {STARTED: SUSPENDED}},
    "terminate": {"provider": {REQUESTED: TERMINATED, STARTED: TERMINATED, SUSPENDED: TERMINATED},
                  "consumer": {REQUESTED: TERMINATED, STARTED: TERMINATED, SUSPENDED: TERMINATED}},
}
# operator steps -> event (``resume`` is a start from SUSPENDED)
STEPS = ("start", "complete", "suspend", "resume", "terminate")
MESSAGE_PATHS = {"start": "start", "complete": "completion", "suspend": "suspension", "terminate": "termination"}
# consumer, PULL: we resumed (sent TransferStartMessage); the provider's own TransferStartMessage with a fresh
# dataAddress is expected next (our old EDR's tokens were revoked when the transfer was suspended)
AWAITING_ADDRESS = "await_data_address"


def next_state(state: str | None, event: str, sender: Role) -> str:
    """The state after ``sender`` sends ``event`` in ``state``; InvalidTransition (400) when not allowed."""
    moves = TRANSITIONS.get(event, {}).get(sender, {})
    if state in moves:
        return moves[state]
    allowed = allowed_events(state, sender)
    raise InvalidTransition(f"{sender} may not send '{event}' in state {state or '(new)'}"
                            + (f"; allowed: {', '.join(allowed)}" if allowed else "; the transfer is over"),
                            allowed=allowed)


def allowed_events(state: str | None, sender: Role) -> tuple[str, ...]:
    return tuple(e for e, by in TRANSITIONS.items() if state in by.get(sender, {}))


def allowed_steps(row: TransferRow) -> tuple[str, ...]:
    role: Role = row.role  # type: ignore[assignment]
    events = allowed_events(row.state, role)
    out = []
    for step in STEPS:
        if step == "start" and "start" in events and row.state == REQUESTED:
            out.append(step)
        elif step == "resume" and "start" in events and row.state == SUSPENDED:
            out.append(step)
        elif step in events and step not in ("start", "resume"):
            out.append(step)
    return tuple(out)


# ------------------------------------------------------------------------------------------ messages


def process_body(row: TransferRow) -> dict[str, Any]:
    return {"@context": [DSP_CONTEXT], "@type": "TransferProcess", "providerPid": row.provider_pid or "",
            "consumerPid": row.consumer_pid or "", "state": row.state}


def _message(message_type: str, row: TransferRow, **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"@context": [DSP_CONTEXT], "@type": message_type}
    if row.provider_pid:
        body["providerPid"] = row.provider_pid
    if row.consumer_pid:
        body["consumerPid"] = row.consumer_pid
    body.update({k: v for k, v in fields.items() if v is not None})
    return validate_message(body, message_type)


def _peer_url(row: TransferRow, suffix: str) -> str:
    base = row.counterparty_address.rstrip("/")
    pid = row.consumer_pid if row.role == "provider" else row.provider_pid
    return f"{base}/transfers/{pid}/{suffix}"


def _send(ctx: ConnectorContext, session: Session, row: TransferRow, message: dict[str, Any], url: str) -> None:
    ctx.outbox.enqueue(session, process_id=row.id, kind="transfer", message=message, url=url,
                       recipient_did=row.counterparty_did, correlation_id=row.correlation_id)


def _set_state(row: TransferRow, state: str, *, pending: str | None = None) -> None:
    row.state, row.pending, row.updated_at = state, pending, utcnow()


def load(session: Session, pid: str, *, party: Party | None = None, for_update: bool = True) -> TransferRow:
    stmt = select(TransferRow).where(TransferRow.id == pid)
    if for_update:
        stmt = stmt.with_for_update()
    row = session.scalars(stmt).first()
    if row is None or (party is not None and row.counterparty_did != party.did):
        raise ProcessNotFound(f"no transfer process {pid!r} here for this caller", code="transfer_not_found")
    return row


def get_transfer(ctx: ConnectorContext, transfer_id: str) -> TransferRow:
    with ctx.sessions() as session:
        row = session.get(TransferRow, transfer_id)
    if row is None:
        raise NotFoundError(f"no transfer process {transfer_id!r}", code="transfer_not_found")
    return row


def _usable_agreement(session: Session, agreement_id: str, *, role: Role, counterparty: str) -> AgreementRow:
    """An agreement of ours in ``role`` with ``counterparty`` whose negotiation is FINALIZED."""
    agreement = session.get(AgreementRow, agreement_id)
    if agreement is None or agreement.role != role or agreement.counterparty_did != counterparty:
        raise ProcessNotFound(f"no contract agreement {agreement_id!r} with {counterparty}",
                              code="agreement_not_found")
    negotiation = session.get(NegotiationRow, agreement.negotiation_id)
    if negotiation is None or negotiation.state != "FINALIZED":
        state = negotiation.state if negotiation is not None else "unknown"
        raise InvalidTransition(f"agreement {agreement_id!r} is not finalized (negotiation state {state})",
                                code="agreement_not_finalized")
    return agreement


def _check_type(transfer_type: Any) -> str:
    if transfer_type not in TRANSFER_TYPES:
        raise MessageInvalid(f"transfer type {transfer_type!r} is not supported; use {' or '.join(TRANSFER_TYPES)}",
                             code="transfer_type_unsupported")
    return str(transfer_type)


# ------------------------------------------------------------------------------------------ inbound


def provider_receive_request(ctx: ConnectorContext, session: Session, party: Party, message: dict[str, Any],
                             correlation_id: str | None) -> Answer:
    """TransferRequestMessage: 201 with the new process; the same consumerPid again gives the same process."""
    consumer_pid = message["consumerPid"]
    existing = session.scalars(select(TransferRow).where(
        TransferRow.role == "provider", TransferRow.consumer_pid == consumer_pid,
        TransferRow.counterparty_did == party.did)).first()
    if existing is not None:
        if existing.agreement_id != message["agreementId"]:
            raise InvalidTransition(f"consumerPid {consumer_pid!r} already names a transfer of another agreement",
                                    code="duplicate_consumer_pid")
        return Answer(201, process_body(existing), existing.id)
    callback = check_callback(message.get("callbackAddress"))
    transfer_type = _check_type(message.get("format"))
    agreement = _usable_agreement(session, message["agreementId"], role="provider", counterparty=party.did)
    if transfer_type.endswith("PUSH") and not message.get("dataAddress"):
        raise MessageInvalid("a PUSH transfer needs the consumer's dataAddress", code="data_address_missing")
    negotiation = session.get(NegotiationRow, agreement.negotiation_id)
    approval = negotiation.approval if negotiation is not None else ctx.settings.approval  # the definition's
    pid = new_pid()
    row = TransferRow(id=pid, role="provider", state=next_state(None, "request", "consumer"),
                      consumer_pid=consumer_pid, provider_pid=pid, agreement_id=agreement.id,
                      transfer_type=transfer_type, counterparty_did=party.did, counterparty_address=callback,
                      data_address=json.dumps(message.get("dataAddress")) if message.get("dataAddress") else None,
                      approval=approval, pending="start", party=party_to_json(party),
                      request=json.dumps({"purpose": _purpose_of(message)}),
                      correlation_id=correlation_id or pid, created_at=utcnow(), updated_at=utcnow())
    session.add(row)
    session.flush()
    log.info("transfer %s requested by %s under agreement %s (%s)", pid, party.did, agreement.id, transfer_type)
    return Answer(201, process_body(row), pid)


def _receive_fresh_address(row: TransferRow, message: Mapping[str, Any]) -> Answer:
    """Consumer: the provider's TransferStartMessage answering our resume of a PULL, with a fresh dataAddress.

    WHY accepted in STARTED: DSP 2025-1 lets the consumer move SUSPENDED -> STARTED with its own
    TransferStartMessage, but only the provider's TransferStartMessage carries the dataAddress a pull needs
    ("MUST be provided if the current transfer is a pull transfer"); its resulting state, STARTED, is the state
    we are already in. We take it only while waiting for it (after our own resume), never otherwise.
    """
    address = message.get("dataAddress")
    if not isinstance(address, Mapping) or not address.get("endpoint"):
        raise MessageInvalid("a TransferStartMessage answering a resumed pull transfer must carry the dataAddress",
                             code="data_address_missing")
    row.data_address = json.dumps(address)
    _set_state(row, STARTED, pending="store_edr")
    log.info("transfer %s: fresh dataAddress from the provider after our resume", row.id)
    return Answer(200, None, row.id)


def _purpose_of(message: Mapping[str, Any]) -> str | None:
    """The purpose a consumer stated in its TransferRequestMessage (Pactum's extension property)."""
    purpose = message.get(PURPOSE_PROPERTY)
    if isinstance(purpose, dict):  # expanded JSON-LD value object
        purpose = purpose.get("@value") or purpose.get("@id")
    if purpose is not None and not isinstance(purpose, str):
        raise MessageInvalid(f"{PURPOSE_PROPERTY} must be a string", code="purpose_invalid")
    return purpose


def _requested_purpose(row: TransferRow) -> str | None:
    data = json.loads(row.request) if row.request else None
    return data.get("purpose") if isinstance(data, dict) else None


def receive_message(ctx: ConnectorContext, session: Session, party: Party, message: dict[str, Any],
                    pid: str, event: str) -> Answer:
    """Start, completion, suspension or termination from the counterparty."""
    row = load(session, pid, party=party)
    for key, mine in (("providerPid", row.provider_pid), ("consumerPid", row.consumer_pid)):
        theirs = message.get(key)
        if theirs is not None and mine is not None and theirs != mine:
            raise ProcessNotFound(f"{key} {theirs!r} does not belong to this transfer", code="pid_mismatch")
    sender: Role = "consumer" if row.role == "provider" else "provider"
    if event == "start" and row.role == "consumer" and row.state == STARTED and row.pending == AWAITING_ADDRESS:
        return _receive_fresh_address(row, message)
    new_state = next_state(row.state, event, sender)
    if row.provider_pid is None:
        row.provider_pid = message.get("providerPid")
    pending = None
    if event == "start" and row.role == "consumer":
        if message.get("dataAddress"):
            row.data_address = json.dumps(message["dataAddress"])
        pending = "store_edr" if row.transfer_type.endswith("PULL") and message.get("dataAddress") else None
    elif event == "start" and row.role == "provider":
        pending = "reactivate"  # the consumer resumed: check the agreement again and re-open the data plane
    if event in ("suspend", "terminate"):
        row.error_code = str(message.get("code") or event)
        row.error_reason = "; ".join(str(r) for r in message.get("reason", [])) or f"{event} by the {sender}"
    _set_state(row, new_state, pending=pending)
    log.info("transfer %s: %s by the %s -> %s", row.id, event, sender, new_state)
    return Answer(200, None, row.id)


# ------------------------------------------------------------------------------------------ local steps


class StepNotAllowed(ConflictError):
    code = "step_not_allowed"

    def __init__(self, message: str, allowed: tuple[str, ...]) -> None:
        super().__init__(message)
        self.allowed = allowed


_INSERT_TRANSFER = insert(cast(Table, TransferRow.__table__))
_TRANSFER_FIELDS = tuple(c.key for c in TransferRow.__table__.c)


def start_transfer(ctx: ConnectorContext, *, agreement_id: str, counterparty_address: str | None,
                   transfer_type: str, data_destination: Mapping[str, Any] | None = None,
                   approval: str | None = None, correlation_id: str | None = None,
                   purpose: str | None = None) -> TransferRow:
    """Consumer: send a TransferRequestMessage under a finalized agreement of ours."""
    transfer_type = _check_type(transfer_type)
    pid = new_pid()
    with ctx.sessions.begin() as session:
        agreement = session.get(AgreementRow, agreement_id)
        if agreement is None or agreement.role != "consumer":
            raise NotFoundError(f"no contract agreement {agreement_id!r} held as consumer", code="agreement_not_found")
        _usable_agreement(session, agreement_id, role="consumer", counterparty=agreement.counterparty_did)
        address = check_callback(counterparty_address or agreement.counterparty_address, "counterPartyAddress")
        destination: dict[str, Any] | None = dict(data_destination) if data_destination else None
        if transfer_type.endswith("PUSH"):
            if destination is None or destination.get("type") in (None, "inbox", "pactum:inbox"):
                if ctx.dataplane is None:
                    raise ConnectorError("this connector has no data plane to receive a PUSH", code="no_dataplane",
                                         status=503)
                destination = ctx.dataplane.consumer_address(pid, agreement_id=agreement_id,
                                                             provider_did=agreement.counterparty_did)
        row = TransferRow(id=pid, role="consumer", state=next_state(None, "request", "consumer"), consumer_pid=pid,
                          provider_pid=None, agreement_id=agreement_id, transfer_type=transfer_type,
                          counterparty_did=agreement.counterparty_did, counterparty_address=address,
                          approval=approval or ctx.settings.approval, request=json.dumps(destination),
                          correlation_id=correlation_id or pid, created_at=utcnow(), updated_at=utcnow())
        # WHY Core: no ORM unit of work (flush) for one new row; the returned row holds the same values
        session.execute(_INSERT_TRANSFER, {c: getattr(row, c) for c in _TRANSFER_FIELDS})
        message = _message("TransferRequestMessage", row, agreementId=agreement_id, format=transfer_type,
                           dataAddress=destination if transfer_type.endswith("PUSH") else None,
                           callbackAddress=ctx.settings.protocol_url, **{PURPOSE_PROPERTY: purpose})
        _send(ctx, session, row, message, f"{address}/transfers/request")
    return row


@dataclass(frozen=True)
class _Plan:
    row: TransferRow
    event: str


def _plan(ctx: ConnectorContext, transfer_id: str, step: str, operator: bool) -> _Plan | None:
    with ctx.sessions() as session:
        row = session.get(TransferRow, transfer_id)
    if row is None:
        raise NotFoundError(f"no transfer process {transfer_id!r}", code="transfer_not_found")
    if step in ("store_edr", "reactivate"):
        return _Plan(row, step) if row.pending == step else None
    if step == AWAITING_ADDRESS:
        return None  # nothing to do here: the provider's message moves it on
    allowed = allowed_steps(row)
    if step not in allowed:
        raise StepNotAllowed(f"'{step}' is not possible for this {row.role} transfer in state {row.state}"
                             + (f"; allowed now: {', '.join(allowed)}" if allowed else ""), allowed)
    if not operator and row.pending != step:
        return None
    return _Plan(row, "start" if step == "resume" else step)


def _agreement_decision(ctx: ConnectorContext, row: TransferRow) -> tuple[bool, str, AgreementRow]:
    """Does the agreement still hold for the consumer (time, count, credentials)? Pure apart from reads."""
    with ctx.sessions() as session:
        agreement = session.get(AgreementRow, row.agreement_id)
    if agreement is None:
        return False, f"agreement {row.agreement_id} is gone", None  # type: ignore[return-value]
    policy = parse_offer(json.loads(agreement.policy))
    party = party_from_json(row.party, row.counterparty_did)
    asset = AssetStore(ctx.sessions, ctx.settings).find(agreement.asset_id)
    decision = ctx.policy_gate.decide(policy, target=policy_target(policy, agreement.asset_id),
                                      assignee=row.counterparty_did, assigner=ctx.did,
                                      credentials=party.credentials, facts=agreement_facts(policy, party.facts),
                                      asset=asset.policy_facts() if asset else None,
                                      purpose=_requested_purpose(row), defer=TRANSFER_START_DEFERRED,
                                      agreement_time=agreement.signed_at.replace(tzinfo=agreement.signed_at.tzinfo
                                                                                 or UTC))
    return decision.permitted, decision.reason, agreement


def _transfer_info(ctx: ConnectorContext, row: TransferRow, agreement: AgreementRow) -> Any:
    from connector.dataplane import AssetInfo, TransferInfo

    asset = AssetStore(ctx.sessions, ctx.settings).get(agreement.asset_id)
    party = party_from_json(row.party, row.counterparty_did)
    policy = parse_offer(json.loads(agreement.policy))
    # the engine compares targets as it parsed them (a bare asset id becomes an IRI): hand it that form
    target = policy_target(policy, asset.id) or asset.id
    return TransferInfo(
        transfer_id=row.id, agreement_id=agreement.id, policy=policy,
        agreement_time=agreement.signed_at.replace(tzinfo=agreement.signed_at.tzinfo or UTC),
        asset=AssetInfo(target, asset.data_address, asset.policy_facts()), consumer_did=row.counterparty_did,
        transfer_type=row.transfer_type,
        consumer_data_address=json.loads(row.data_address) if row.data_address else None,
        credentials=party.credentials, consumer_pid=row.consumer_pid, facts=agreement_facts(policy, party.facts),
        purpose=_requested_purpose(row))


async def run_step(ctx: ConnectorContext, transfer_id: str, step: str, *, body: Mapping[str, Any] | None = None,
                   operator: bool = False) -> TransferRow:
    """Perform one of this connector's own steps (auto approval, the data plane, or the operator)."""
    plan = await asyncio.to_thread(_plan, ctx, transfer_id, step, operator)
    if plan is None:
        return await asyncio.to_thread(get_transfer, ctx, transfer_id)
    row, event = plan.row, plan.event
    args = dict(body or {})
    if event == "store_edr":
        await asyncio.to_thread(_store_edr, ctx, row)
        return await asyncio.to_thread(_clear_pending, ctx, transfer_id, "store_edr")
    data_address: dict[str, Any] | None = None
    if row.role == "provider" and event in ("start", "reactivate"):
        permitted, reason, agreement = await asyncio.to_thread(_agreement_decision, ctx, row)
        if not permitted:
            verb = "terminate" if row.state == REQUESTED else "suspend"
            return await asyncio.to_thread(_commit, ctx, transfer_id, verb,
                                           {"code": "policy_denied", "reason": f"agreement no longer holds: {reason}"})
        if ctx.dataplane is None:
            raise ConnectorError("this connector has no data plane", code="no_dataplane", status=503)
        info = await asyncio.to_thread(_transfer_info, ctx, row, agreement)
        if row.transfer_type.endswith("PUSH") and event == "start":
            # the state is STARTED before the first byte moves, so a quick push can complete it
            started = await asyncio.to_thread(_commit, ctx, transfer_id, "start", args, None)
            try:
                await ctx.dataplane.start(info)
            except ConnectorError as exc:
                return await asyncio.to_thread(_commit, ctx, transfer_id, "terminate",
                                               {"code": exc.code, "reason": f"the data plane failed: {exc}"})
            return started
        data_address = await ctx.dataplane.start(info)
        if event == "reactivate":
            if data_address is not None:  # PULL: the consumer needs the fresh EDR (the old tokens are revoked)
                return await asyncio.to_thread(_send_fresh_address, ctx, transfer_id, data_address)
            return await asyncio.to_thread(_clear_pending, ctx, transfer_id, "reactivate")
    return await asyncio.to_thread(_commit, ctx, transfer_id, event, args, data_address)


def _commit(ctx: ConnectorContext, transfer_id: str, event: str, args: Mapping[str, Any],
            data_address: dict[str, Any] | None = None) -> TransferRow:
    with ctx.extras["locks"](transfer_id), ctx.sessions.begin() as session:
        row = load(session, transfer_id)
        role: Role = row.role  # type: ignore[assignment]
        new_state = next_state(row.state, event, role)
        fields: dict[str, Any] = {}
        if event == "start" and data_address is not None:
            fields["dataAddress"] = data_address
        if event in ("suspend", "terminate"):
            code = str(args.get("code") or event)
            reason = str(args.get("reason") or f"{event} by the {role}'s operator")
            row.error_code, row.error_reason = code, reason
            fields.update(code=code, reason=[reason])
        message_type = {"start": "TransferStartMessage", "complete": "TransferCompletionMessage",
                        "suspend": "TransferSuspensionMessage", "terminate": "TransferTerminationMessage"}[event]
        resumed_pull = (event == "start" and role == "consumer" and row.state == SUSPENDED
                        and row.transfer_type.endswith("PULL"))
        _set_state(row, new_state, pending=AWAITING_ADDRESS if resumed_pull else None)
        peer_pid = row.consumer_pid if role == "provider" else row.provider_pid
        if peer_pid:
            _send(ctx, session, row, _message(message_type, row, **fields), _peer_url(row, MESSAGE_PATHS[event]))
        log.info("transfer %s: %s by this %s -> %s", row.id, event, role, new_state)
    if role == "provider" and event in ("suspend", "terminate", "complete"):
        _dataplane_follow(ctx, row)
    return row


def _send_fresh_address(ctx: ConnectorContext, transfer_id: str, data_address: dict[str, Any]) -> TransferRow:
    """Provider: after the consumer resumed a PULL, send our TransferStartMessage with the fresh dataAddress."""
    with ctx.extras["locks"](transfer_id), ctx.sessions.begin() as session:
        row = load(session, transfer_id)
        if row.pending == "reactivate":
            row.pending = None
        if row.state != STARTED:  # suspended or ended again meanwhile: the address is of no use any more
            return row
        _send(ctx, session, row, _message("TransferStartMessage", row, dataAddress=data_address),
              _peer_url(row, MESSAGE_PATHS["start"]))
        log.info("transfer %s: fresh dataAddress sent to the consumer after its resume", row.id)
    return row


def _clear_pending(ctx: ConnectorContext, transfer_id: str, pending: str) -> TransferRow:
    with ctx.sessions.begin() as session:
        row = load(session, transfer_id)
        if row.pending == pending:
            row.pending = None
    return row


def _store_edr(ctx: ConnectorContext, row: TransferRow) -> None:
    """Consumer: hand the provider's dataAddress (EDR) to our data plane so the data can be pulled."""
    if ctx.dataplane is None or not row.data_address:
        return
    with ctx.sessions() as session:
        agreement = session.get(AgreementRow, row.agreement_id)
    policy = parse_offer(json.loads(agreement.policy)) if agreement is not None else None
    ctx.dataplane.store_edr(row.id, json.loads(row.data_address), agreement_id=row.agreement_id, policy=policy,
                            agreement_time=agreement.signed_at if agreement is not None else None,
                            provider_did=row.counterparty_did,
                            asset_id=agreement.asset_id if agreement is not None else None)


def _dataplane_follow(ctx: ConnectorContext, row: TransferRow) -> None:
    """Provider: make the data plane follow the process state (no data after suspend/terminate/complete)."""
    dataplane = ctx.dataplane
    if dataplane is None:
        return
    reason = row.error_reason or row.state.lower()
    try:
        if row.state == SUSPENDED:
            dataplane.suspend(row.id, reason)
        elif row.state == TERMINATED:
            dataplane.terminate(row.id, reason)
        elif row.state == COMPLETED:
            dataplane.complete(row.id)
    except ConnectorError as exc:  # a transfer the data plane never saw (refused before start)
        log.info("data plane has nothing to %s for %s: %s", row.state.lower(), row.id, exc)


# ------------------------------------------------------------------------------------------ automation


async def advance(ctx: ConnectorContext, transfer_id: str) -> None:
    """Take the pending step now: automatic ones always, operator ones in ``auto`` approval."""
    row = await asyncio.to_thread(get_transfer, ctx, transfer_id)
    if row.role == "provider" and row.state in (SUSPENDED, TERMINATED, COMPLETED):
        await asyncio.to_thread(_dataplane_follow, ctx, row)
    step = row.pending
    if not step or row.state in FINAL:
        return
    if step == AWAITING_ADDRESS or (step not in ("store_edr", "reactivate") and row.approval != "auto"):
        return
    try:
        await run_step(ctx, transfer_id, step)
    except (ConnectorError, Exception) as exc:  # noqa: BLE001 - a failed automatic step stays inspectable
        log.warning("automatic step %s of transfer %s failed: %s", step, transfer_id, exc)


async def resume_all(ctx: ConnectorContext) -> None:
    def pending_ids() -> list[str]:
        with ctx.sessions() as session:
            return list(session.scalars(select(TransferRow.id).where(
                TransferRow.pending.is_not(None), TransferRow.state.not_in(FINAL))))

    for transfer_id in await asyncio.to_thread(pending_ids):
        await advance(ctx, transfer_id)


def _on_failed(ctx: ConnectorContext) -> Any:
    def hook(row: OutboxRow, status: int | None, detail: str) -> None:
        try:
            body = json.loads(detail)
            reason = "; ".join(str(r) for r in body.get("reason", [])) or detail[:500]
        except (ValueError, AttributeError):
            reason = detail[:500]
        with ctx.extras["locks"](row.process_id), ctx.sessions.begin() as session:
            tp = session.get(TransferRow, row.process_id)
            if tp is None or tp.state in FINAL:
                return
            tp.state, tp.pending, tp.updated_at = TERMINATED, None, utcnow()
            tp.error_code = "delivery_failed" if status is None else f"counterparty_{status}"
            tp.error_reason = f"{row.message_type} was refused or undeliverable: {reason}"
    return hook


def register(ctx: ConnectorContext) -> None:
    ctx.outbox.on_delivered("TransferRequestMessage", peer_pid_hook(TransferRow, "consumer", "providerPid"))
    ctx.outbox.on_failed("transfer", _on_failed(ctx))


# ------------------------------------------------------------------------------------------ data plane hooks


class ProcessStates:
    """The data plane's ``TransferStates``: the DSP state of a transfer by id.

    ``state_statement`` lets the data plane read the state inside the transaction that counts a use (same
    database), so every data request re-checks STARTED at the cost of one indexed read.
    """

    state_statement = FastStatement(select(TransferRow.state).where(TransferRow.id == bindparam("transfer")))

    def __init__(self, ctx: Any) -> None:
        self.ctx = ctx

    def state_of(self, transfer_id: str) -> str | None:
        with self.ctx.sessions() as session:
            row = session.get(TransferRow, transfer_id)
        return row.state if row is not None else None


def dataplane_hooks(ctx: ConnectorContext) -> dict[str, Any]:
    """Callbacks for ``DataPlane.from_context``: states, PUSH completion, suspend/terminate by agreement."""
    async def on_complete(transfer_id: str, _digest: str, _size: int) -> None:
        row = await asyncio.to_thread(get_transfer, ctx, transfer_id)
        if row.state == STARTED:
            await run_step(ctx, transfer_id, "complete", operator=True)

    async def for_agreement(agreement_id: str, step: str, reason: str) -> None:
        def running() -> list[str]:
            with ctx.sessions() as session:
                return list(session.scalars(select(TransferRow.id).where(
                    TransferRow.agreement_id == agreement_id, TransferRow.role == "provider",
                    TransferRow.state.in_((STARTED, SUSPENDED) if step == "terminate" else (STARTED,)))))

        for transfer_id in await asyncio.to_thread(running):
            try:
                await run_step(ctx, transfer_id, step, body={"code": "policy_violation", "reason": reason},
                               operator=True)
            except ConnectorError as exc:
                log.warning("could not %s transfer %s: %s", step, transfer_id, exc)

    async def suspend_transfers(agreement_id: str, reason: str) -> None:
        await for_agreement(agreement_id, "suspend", reason)

    async def terminate_transfers(agreement_id: str, reason: str) -> None:
        await for_agreement(agreement_id, "terminate", reason)

    async def fail_transfer(transfer_id: str, step: str, code: str, reason: str) -> None:
        """The data plane could not serve this transfer (e.g. a PUSH the agreement refused): end it properly,
        which tells the consumer (DSP message with code and reason) and keeps the reason on both sides."""
        row = await asyncio.to_thread(get_transfer, ctx, transfer_id)
        if row.state != STARTED:
            return  # already moved on (completed, suspended or terminated by someone else)
        await run_step(ctx, transfer_id, step, body={"code": code, "reason": reason}, operator=True)

    return {"states": ProcessStates(ctx), "on_complete": on_complete, "suspend_transfers": suspend_transfers,
            "terminate_transfers": terminate_transfers, "fail_transfer": fail_transfer}
