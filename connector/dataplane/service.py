"""The data plane as a service object: what the transfer state machine calls, and what the data port serves.

Provider side: :meth:`DataPlane.start` registers a transfer and issues an EDR (PULL) or streams to the
consumer (PUSH); every data request then goes through :meth:`DataPlane.authorize`, which re-checks the
token, the transfer state, the counterparty's credentials and the agreement policy, and counts the use
atomically. Consumer side: :meth:`store_edr`, :meth:`pull` (with a signed receipt sent back), and the push
inbox. Every decision lands in the audit trail.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import bindparam, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from connector.audit import (
    AuditLog,
    ChainConflict,
    FastStatement,
    ReceiptInvalid,
    audit_for,
    read_receipt,
    sign_receipt,
)
from connector.config import DataSource
from connector.dataplane.duties import count_limit, delete_deadline, field_rule, inform_duties
from connector.dataplane.errors import (
    AccessRefused,
    DataPlaneError,
    PathRefused,
    SinkError,
    TokenInvalid,
    TransferNotActive,
    UnknownTransfer,
    UsageExhausted,
)
from connector.dataplane.sinks import Digest, FileSink, Sink, digesting
from connector.dataplane.sources import SourceBody, open_source, resolve_address, safe_join
from connector.dataplane.tokens import TokenService
from connector.dataplane.transform import FieldRule, Transform, transform_for
from connector.dataplane.types import (
    HTTP_ENDPOINT_TYPE,
    STARTED,
    AssetInfo,
    FailHook,
    OnComplete,
    RevocationCheck,
    SuspendHook,
    TerminateHook,
    TransferInfo,
    TransferResult,
    TransferStates,
)
from connector.errors import ConnectorError
from connector.logs import CORRELATION_HEADER, current_correlation_id
from connector.storage.tables_audit import AuditEntryRow
from connector.storage.tables_dataplane import (
    DpDutyRow,
    DpEdrRow,
    DpEventRow,
    DpTransferRow,
    DpUsageRow,
)
from identity.credentials.errors import CredentialError
from identity.credentials.jws import parse_compact
from identity.keys import KeyPair
from policies import (
    Event,
    Policy,
    Report,
    Request,
    StateOfWorld,
    canonical_hash,
    evaluate,
    parse_policy,
    policy_to_jsonld,
)

log = logging.getLogger("pactum.dataplane")

KeyResolver = Callable[[str], Awaitable[KeyPair]]
PROP_RECEIPT = "https://w3id.org/pactum/receiptEndpoint"
PROP_DUTY = "https://w3id.org/pactum/dutyEndpoint"
PROP_TRANSFER = "https://w3id.org/pactum/transferId"
DUTY_HEADER = "X-Pactum-Duty-Endpoint"
FULFILMENT_TYP = "pactum-duty-fulfilment+jwt"
FULFILMENT_TYPE = "PactumDutyFulfilment"


SMALL_BODY = 64 * 1024
# built once: the hot path only binds the agreement id
_COUNT_USE = FastStatement(update(DpUsageRow)
              .where(DpUsageRow.agreement_id == bindparam("agreement"),
                     (DpUsageRow.use_limit.is_(None)) | (DpUsageRow.used < DpUsageRow.use_limit))
              .values(used=DpUsageRow.used + 1)
              .returning(DpUsageRow.used))
_BYTES_SENT = FastStatement(update(DpTransferRow)
               .where(DpTransferRow.transfer_id == bindparam("transfer"))
               .values(bytes_sent=DpTransferRow.bytes_sent + bindparam("size"), last_digest=bindparam("digest")))


async def _close(chunks: AsyncIterator[bytes]) -> None:
    aclose = getattr(chunks, "aclose", None)
    if aclose is not None:
        await aclose()


@dataclass(frozen=True)
class Grant:
    """A data request that passed every check; ``uses`` is the agreement's use count including this one."""

    transfer: TransferInfo
    uses: int
    fields: FieldRule | None
    report: Report


@dataclass
class Release:
    """A granted request ready to answer: ``data`` (small bodies, already logged) or ``stream``."""

    grant: Grant
    body: SourceBody
    transformed: bool
    data: bytes | None = None
    stream: AsyncIterator[bytes] | None = None


async def _maybe_await(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value


def _props(data_address: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for prop in data_address.get("endpointProperties") or []:
        if isinstance(prop, Mapping) and isinstance(prop.get("name"), str):
            out[prop["name"]] = prop.get("value")
    return out


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _jwt_claims_unverified(token: str) -> dict[str, Any]:
    try:
        return parse_compact(token, max_bytes=8192).payload
    except CredentialError:
        return {}


class DataPlane:
    """Provider and consumer data plane of one connector (see module docstring)."""

    def __init__(
        self,
        *,
        sessions: sessionmaker[Session],
        key: KeyPair,
        kid: str,
        did: str,
        data_url: str,
        audit: AuditLog,
        http: httpx.AsyncClient,
        data_folder: Path,
        data_sources: tuple[DataSource, ...] | list[DataSource] = (),
        states: TransferStates | None = None,
        revocation: RevocationCheck | None = None,
        key_resolver: KeyResolver | None = None,
        on_complete: OnComplete | None = None,
        suspend_transfers: SuspendHook | None = None,
        terminate_transfers: TerminateHook | None = None,
        fail_transfer: FailHook | None = None,
        token_lifetime: int = 600,
        fulfilment_grace: timedelta = timedelta(minutes=15),
    ) -> None:
        self.sessions = sessions
        self.key = key
        self.kid = kid
        self.did = did
        self.data_url = data_url.rstrip("/")
        self.audit = audit
        self.http = http
        self.data_folder = Path(data_folder)
        self.data_sources = tuple(data_sources)
        self.states = states
        self.revocation = revocation
        self.key_resolver = key_resolver
        self.on_complete = on_complete
        self.suspend_transfers = suspend_transfers
        self.terminate_transfers = terminate_transfers
        self.fail_transfer = fail_transfer
        self.fulfilment_grace = fulfilment_grace
        self.tokens = TokenService(sessions, key, kid=kid, issuer=did, access_lifetime=token_lifetime)
        self._transfers: dict[str, TransferInfo] = {}
        self._local_state: dict[str, tuple[str, str | None]] = {}
        self._fields: dict[str, FieldRule | None] = {}
        self._locations: dict[str, dict[str, Any]] = {}
        self._counters: dict[str, tuple[str, ...]] = {}
        self._events: dict[str, tuple[Event, ...]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self.monitor_wakeup: Callable[[], None] | None = None  # set by the policy monitor

    @classmethod
    def from_context(cls, ctx: Any, **overrides: Any) -> DataPlane:
        """Build from E's ConnectorContext: wallet key, database, http client, resolver, settings."""
        settings = ctx.settings
        audit = audit_for(ctx)
        resolver = ctx.resolver

        async def resolve_key(kid: str) -> KeyPair:
            return await resolver.verification_key(kid, "assertionMethod")

        from connector.context import loopback_http_hosts
        from connector.dataplane.revocation import StatusListRevocation

        kwargs: dict[str, Any] = dict(
            sessions=ctx.sessions, key=ctx.wallet.key, kid=ctx.wallet.kid, did=ctx.wallet.did,
            data_url=settings.data_url, audit=audit, http=ctx.http,
            data_folder=ctx.extras.get("data_folder") or Path(settings.keystore.path).parent / "received",
            data_sources=tuple(settings.data_sources), key_resolver=resolve_key,
            revocation=StatusListRevocation(resolver, ctx.http, allow_http_hosts=loopback_http_hosts(settings),
                                            ttl=float(settings.trust.claims_cache_seconds)),
        )
        kwargs.update(overrides)
        return cls(**kwargs)

    # ================================================================================ provider: lifecycle
    async def start(self, transfer: TransferInfo, on_complete: OnComplete | None = None) -> dict[str, Any] | None:
        """Register a STARTED transfer; PULL returns the DSP dataAddress (EDR), PUSH starts streaming."""
        self._register(transfer)
        self.audit.record("transfer.dataplane.start", process_id=transfer.transfer_id,
                          agreement_id=transfer.agreement_id, counterparty=transfer.consumer_did,
                          transfer_type=transfer.transfer_type, asset=transfer.asset.id,
                          agreement_hash=canonical_hash(transfer.policy))
        self._track_provider_duties(transfer)
        if transfer.is_push:
            if not transfer.consumer_data_address:
                raise DataPlaneError("a PUSH transfer needs the consumer's dataAddress", code="push_no_address")
            task = asyncio.get_running_loop().create_task(self._push(transfer, on_complete or self.on_complete))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            return None
        issued = self.tokens.issue(transfer.transfer_id, transfer.agreement_id, transfer.consumer_did)
        return self._data_address(transfer.transfer_id, issued.access, issued.refresh,
                                  issued.expires_at)

    def _data_address(self, transfer_id: str, access: str, refresh: str, expires_at: int) -> dict[str, Any]:
        return {
            "@type": "DataAddress",
            "endpointType": HTTP_ENDPOINT_TYPE,
            "endpoint": f"{self.data_url}/data/{transfer_id}",
            "endpointProperties": [
                {"@type": "EndpointProperty", "name": "authorization", "value": access},
                {"@type": "EndpointProperty", "name": "authType", "value": "bearer"},
                {"@type": "EndpointProperty", "name": "refreshToken", "value": refresh},
                {"@type": "EndpointProperty", "name": "refreshEndpoint", "value": f"{self.data_url}/token"},
                {"@type": "EndpointProperty", "name": "expiresIn",
                 "value": str(max(0, expires_at - int(datetime.now(UTC).timestamp())))},
                {"@type": "EndpointProperty", "name": PROP_TRANSFER, "value": transfer_id},
                {"@type": "EndpointProperty", "name": PROP_RECEIPT,
                 "value": f"{self.data_url}/receipts/{transfer_id}"},
                {"@type": "EndpointProperty", "name": PROP_DUTY,
                 "value": f"{self.data_url}/duties/{transfer_id}/fulfilment"},
            ],
        }

    def _register(self, transfer: TransferInfo) -> None:
        row = DpTransferRow(
            transfer_id=transfer.transfer_id, agreement_id=transfer.agreement_id,
            policy=json.dumps(policy_to_jsonld(transfer.policy)), agreement_time=_aware(transfer.agreement_time),
            asset=json.dumps({"id": transfer.asset.id, "dataAddress": dict(transfer.asset.data_address),
                              "properties": dict(transfer.asset.properties)}),
            consumer_did=transfer.consumer_did, transfer_type=transfer.transfer_type,
            credentials=json.dumps([dict(c) for c in transfer.credentials], default=str),
            state="active", created_at=datetime.now(UTC))
        extra = {"facts": dict(transfer.facts), "purpose": transfer.purpose, "consumerPid": transfer.consumer_pid,
                 "consumerDataAddress": dict(transfer.consumer_data_address or {})}
        with self.sessions.begin() as session:
            existing = session.get(DpTransferRow, transfer.transfer_id)
            if existing is not None:  # resumed after a suspension
                existing.state, existing.reason = "active", None
            else:
                session.add(row)
            session.add(DpEventRow(agreement_id=transfer.agreement_id, action="pactum:registered",
                                     target=transfer.transfer_id, time=datetime.now(UTC), outcome="performed",
                                     parameters=json.dumps(extra, default=str)))
        limit = count_limit(transfer.policy)
        try:
            with self.sessions.begin() as session:
                if session.get(DpUsageRow, transfer.agreement_id) is None:
                    session.add(DpUsageRow(agreement_id=transfer.agreement_id, used=0, use_limit=limit))
        except IntegrityError:
            pass  # another transfer of the same agreement created it first
        self._transfers[transfer.transfer_id] = transfer
        self._local_state[transfer.transfer_id] = ("active", None)
        self._fields.pop(transfer.transfer_id, None)
        self._locations.pop(transfer.transfer_id, None)
        self._counters.pop(transfer.transfer_id, None)
        if self.monitor_wakeup:
            self.monitor_wakeup()

    def _set_state(self, transfer_id: str, state: str, reason: str) -> None:
        with self.sessions.begin() as session:
            session.execute(update(DpTransferRow).where(DpTransferRow.transfer_id == transfer_id)
                            .values(state=state, reason=reason))
        self._local_state[transfer_id] = (state, reason)
        revoked = self.tokens.revoke_transfer(transfer_id, f"transfer {state}: {reason}")
        info = self._transfers.get(transfer_id)
        self.audit.record(f"transfer.dataplane.{state}", process_id=transfer_id,
                          agreement_id=info.agreement_id if info else None,
                          counterparty=info.consumer_did if info else None, reason=reason, tokens_revoked=revoked)

    def suspend(self, transfer_id: str, reason: str) -> None:
        """Stop serving at once (tokens revoked); a later :meth:`start` resumes with fresh tokens."""
        self._set_state(transfer_id, "suspended", reason)

    def terminate(self, transfer_id: str, reason: str) -> None:
        """Stop serving for good: tokens revoked at once, a replay is refused with this reason."""
        self._set_state(transfer_id, "terminated", reason)

    def complete(self, transfer_id: str) -> None:
        """The transfer is done: tokens revoked at once."""
        self._set_state(transfer_id, "completed", "completed")

    async def suspend_agreement(self, agreement_id: str, reason: str) -> list[str]:
        """Suspend every running transfer of an agreement here at once, then through the state machine's hook
        (DSP suspension messages); returns the transfers suspended here."""
        with self.sessions() as session:
            ids = list(session.execute(select(DpTransferRow.transfer_id).where(
                DpTransferRow.agreement_id == agreement_id, DpTransferRow.state == "active")).scalars())
        for tid in ids:
            self.suspend(tid, reason)
        if self.suspend_transfers is not None:
            hook = self.suspend_transfers

            async def notify() -> None:
                try:
                    await _maybe_await(hook(agreement_id, reason))
                except ConnectorError as exc:
                    log.warning("suspending the transfers of %s failed: %s", agreement_id, exc)

            task = asyncio.get_running_loop().create_task(notify())  # the refused request need not wait
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return ids

    def running_transfers(self) -> list[TransferInfo]:
        """Transfers the provider is currently serving (state active)."""
        with self.sessions() as session:
            ids = session.execute(select(DpTransferRow.transfer_id)
                                  .where(DpTransferRow.state == "active")).scalars().all()
        return [self.transfer(i) for i in ids]

    def transfer(self, transfer_id: str) -> TransferInfo:
        """The registered transfer (from memory, else rebuilt from the database after a restart)."""
        cached = self._transfers.get(transfer_id)
        if cached is not None:
            return cached
        with self.sessions() as session:
            row = session.get(DpTransferRow, transfer_id)
            extra_row = session.execute(
                select(DpEventRow.parameters).where(DpEventRow.action == "pactum:registered",
                                                    DpEventRow.target == transfer_id)
                .order_by(DpEventRow.id.desc()).limit(1)).scalar()
        if row is None:
            raise UnknownTransfer(f"no transfer {transfer_id!r} on this data plane")
        asset = json.loads(row.asset)
        extra = json.loads(extra_row) if extra_row else {}
        info = TransferInfo(
            transfer_id=row.transfer_id, agreement_id=row.agreement_id, policy=parse_policy(json.loads(row.policy)),
            agreement_time=_aware(row.agreement_time),
            asset=AssetInfo(asset["id"], asset.get("dataAddress") or {}, asset.get("properties") or {}),
            consumer_did=row.consumer_did, transfer_type=row.transfer_type,
            credentials=tuple(json.loads(row.credentials)), consumer_pid=extra.get("consumerPid"),
            facts=extra.get("facts") or {}, purpose=extra.get("purpose"),
            consumer_data_address=extra.get("consumerDataAddress") or None)
        self._transfers[transfer_id] = info
        return info

    def _state(self, transfer_id: str) -> tuple[str, str | None]:
        """The data plane's own state of a transfer (active, suspended, ...), cached; written only here."""
        cached = self._local_state.get(transfer_id)
        if cached is None:
            with self.sessions() as session:
                row = session.execute(select(DpTransferRow.state, DpTransferRow.reason)
                                      .where(DpTransferRow.transfer_id == transfer_id)).first()
            if row is None:
                raise UnknownTransfer(f"no transfer {transfer_id!r} on this data plane")
            cached = (row[0], row[1])
            self._local_state[transfer_id] = cached
        return cached

    def _state_statement(self) -> FastStatement | None:
        statement = getattr(self.states, "state_statement", None)
        return statement if isinstance(statement, FastStatement) else None

    def _location(self, transfer: TransferInfo) -> dict[str, Any]:
        """The asset's concrete location (static per transfer, so resolved once); a fresh copy per request."""
        cached = self._locations.get(transfer.transfer_id)
        if cached is None:
            cached = resolve_address(transfer.asset.data_address, self.data_sources)
            if cached["type"] == "folder" and cached.get("path"):
                cached["root"] = os.path.realpath(str(cached["path"]))  # the folder, resolved once per transfer
            self._locations[transfer.transfer_id] = cached
        return dict(cached)

    def _field_rule(self, transfer: TransferInfo) -> FieldRule | None:
        """Fields the agreement's anonymize duties require hiding (static per agreement, so cached)."""
        if transfer.transfer_id not in self._fields:
            self._fields[transfer.transfer_id] = field_rule(transfer.policy, transfer.asset.properties)
        return self._fields[transfer.transfer_id]

    # ================================================================================ provider: per request
    def events(self, agreement_id: str) -> tuple[Event, ...]:
        """Duty-relevant events recorded under an agreement, as policy-engine events (cached until a new one)."""
        cached = self._events.get(agreement_id)
        if cached is not None:
            return cached
        with self.sessions() as session:
            rows = session.execute(select(DpEventRow).where(DpEventRow.agreement_id == agreement_id,
                                                            DpEventRow.action != "pactum:registered")).scalars()
            events = tuple(Event(action=r.action, target=r.target, time=_aware(r.time),
                                 outcome=r.outcome,  # type: ignore[arg-type]
                                 parameters=json.loads(r.parameters)) for r in rows)
        self._events[agreement_id] = events
        return events

    def evaluate(self, transfer: TransferInfo, uses: int, now: datetime | None = None) -> Report:
        """The agreement policy evaluated for one use of the asset by the consumer, right now."""
        policy = transfer.policy
        counters = dict.fromkeys(self._counter_keys(transfer), uses)
        state = StateOfWorld(
            now=now or datetime.now(UTC), credentials=transfer.credentials, counters=counters,
            events=self.events(transfer.agreement_id), asset=transfer.asset.properties,
            agreement_time=_aware(transfer.agreement_time), facts=transfer.facts)
        request = Request(action="use", target=transfer.asset.id, assignee=transfer.consumer_did,
                          purpose=transfer.purpose, extra=transfer.facts)
        return evaluate(policy, request, state)

    def _counter_keys(self, transfer: TransferInfo) -> tuple[str, ...]:
        """What a ``count`` constraint may name: the asset, each permission and its targets (static per transfer)."""
        cached = self._counters.get(transfer.transfer_id)
        if cached is None:
            keys = [transfer.asset.id]
            for rule in transfer.policy.permissions:
                if rule.uid:
                    keys.append(rule.uid)
                keys.extend(target.iri for target in rule.targets if target.iri)
            cached = tuple(dict.fromkeys(keys))
            self._counters[transfer.transfer_id] = cached
        return cached

    def _refuse(self, exc: ConnectorError, transfer_id: str, transfer: TransferInfo | None = None) -> ConnectorError:
        self.audit.record("data.refused", process_id=transfer_id,
                          agreement_id=transfer.agreement_id if transfer else None,
                          counterparty=transfer.consumer_did if transfer else None, decision="deny",
                          agreement_hash=canonical_hash(transfer.policy) if transfer else None,
                          code=exc.code, reason=str(exc))
        return exc

    async def check(self, transfer_id: str, token: str | None, *, now: datetime | None = None,
                    sub_path: str | None = None) -> tuple[TransferInfo, dict[str, Any]]:
        """Token (signature, expiry, transfer, revocation), transfer state, credentials, path: no writes."""
        if not token:
            raise self._refuse(TokenInvalid("missing bearer token (Authorization header)"), transfer_id)
        try:
            claims = self.tokens.verify(token, transfer_id=transfer_id, allow_revoked=True,
                                        now=now.timestamp() if now else None)
            transfer = self.transfer(transfer_id)
        except ConnectorError as exc:
            raise self._refuse(exc, transfer_id) from None
        reason = self.tokens.revocation_reason(claims.jti, transfer_id)
        if reason is not None:
            raise self._refuse(TokenInvalid(f"token revoked: {reason}", code="token_revoked"), transfer_id, transfer)
        state, why = self._state(transfer_id)
        if state != "active":
            raise self._refuse(TransferNotActive(f"transfer is {state}: {why}"), transfer_id, transfer)
        if self.states is not None and self._state_statement() is None:  # else read in count_use's commit
            dsp_state = await _maybe_await(self.states.state_of(transfer_id))
            if dsp_state != STARTED:
                raise self._refuse(TransferNotActive(f"transfer is {dsp_state or 'unknown'}, not {STARTED}"),
                                   transfer_id, transfer)
        if self.revocation is not None:
            revoked = await _maybe_await(self.revocation(transfer.consumer_did, transfer.credentials))
            if revoked:
                reason = f"counterparty credentials no longer valid: {revoked}"
                refusal = self._refuse(AccessRefused(reason, code="credentials_revoked"), transfer_id, transfer)
                await self.suspend_agreement(transfer.agreement_id, reason)
                raise refusal
        try:
            location = self._check_path(transfer, sub_path)
        except ConnectorError as exc:
            raise self._refuse(exc, transfer_id, transfer) from None
        return transfer, location

    async def authorize(self, transfer_id: str, token: str | None, *, now: datetime | None = None,
                        sub_path: str | None = None) -> Grant:
        """Every check, on every request; counts one use of the agreement when all pass."""
        transfer, _location = await self.check(transfer_id, token, now=now, sub_path=sub_path)
        return self.count_use(transfer, now=now)

    def _check_path(self, transfer: TransferInfo, sub_path: str | None) -> dict[str, Any]:
        """Refuse a sub path that leaves the asset (before a use is counted, so a refusal changes nothing).

        Returns the concrete location; for a folder it carries the checked file (``resolved``), which is
        what gets opened, so the path is resolved once per request.
        """
        location = self._location(transfer)
        if location["type"] == "folder":
            location["resolved"] = safe_join(str(location["path"]), sub_path or location.get("subPath") or "",
                                             resolved_root=location.get("root"))
        elif sub_path and location["type"] in ("file", "inline"):
            raise PathRefused(f"this asset is a single {location['type']} resource; sub paths are not allowed")
        elif sub_path and location["type"] == "http" and (
                ".." in sub_path.split("/") or sub_path.startswith("/") or "://" in sub_path):
            raise PathRefused(f"path {sub_path!r} is not allowed for an HTTP backend")
        return location

    def count_use(self, transfer: TransferInfo, *, now: datetime | None = None, kind: str = "data.request",
                  **audit_fields: Any) -> Grant:
        """Count one use and log the decision in ONE transaction; rolled back (nothing changed) on refusal.

        The count is a single ``UPDATE ... SET used = used + 1 WHERE used < limit`` (atomic on SQLite and
        PostgreSQL under concurrent requests); the policy is then evaluated at the new count. When the state
        machine offers a ``state_statement``, the DSP state is read in the same transaction (STARTED or refused).
        """
        state_statement = self._state_statement()
        for attempt in range(3):
            try:
                with self.audit.transaction() as tx:
                    row = tx.execute(_COUNT_USE, {"agreement": transfer.agreement_id})
                    uses = row[0] if row else None
                    if uses is None:
                        raise UsageExhausted("the agreement's permitted number of uses is used up")
                    if state_statement is not None:  # after the UPDATE: read under the write lock
                        found = tx.execute(state_statement, {"transfer": transfer.transfer_id})
                        dsp_state = found[0] if found else None
                        if dsp_state != STARTED:
                            raise TransferNotActive(f"transfer is {dsp_state or 'unknown'}, not {STARTED}")
                    report = self.evaluate(transfer, int(uses), now)
                    if report.decision != "permit":
                        reasons = "; ".join(report.reasons[:3]) or "the agreement policy does not permit this use"
                        raise AccessRefused(f"agreement no longer permits use: {reasons}", code="policy_denied")
                    fields = self._field_rule(transfer)
                    tx.record(kind, process_id=transfer.transfer_id, agreement_id=transfer.agreement_id,
                              counterparty=transfer.consumer_did, decision="permit", uses=int(uses),
                              agreement_hash=canonical_hash(transfer.policy),
                              anonymized=sorted(fields.fields) if fields else None, **audit_fields)
                    if "bytes" in audit_fields:
                        tx.execute(_BYTES_SENT, {"transfer": transfer.transfer_id,
                                                      "size": audit_fields["bytes"],
                                                      "digest": audit_fields.get("digest")})
                return Grant(transfer, int(uses), fields, report)
            except ChainConflict:  # another writer moved the audit chain on; try again with the new head
                if attempt == 2:
                    raise self._refuse(DataPlaneError("audit trail busy", code="audit_busy", status=503),
                                       transfer.transfer_id, transfer) from None
            except ConnectorError as exc:
                raise self._refuse(exc, transfer.transfer_id, transfer) from None
        raise AssertionError("unreachable")

    async def release(self, transfer_id: str, token: str | None, *, sub_path: str | None = None,
                      range_header: str | None = None) -> Release:
        """Check, open, count and log one data request; small bodies are read whole (one commit in all)."""
        transfer, location = await self.check(transfer_id, token, sub_path=sub_path)
        fields = self._field_rule(transfer)
        declared = transfer.asset.properties.get("contentType")
        corr = current_correlation_id()
        try:
            # a transform rewrites bytes, so ranges cannot be honoured; the full (anonymised) stream is sent
            body = await open_source(location, sub_path=sub_path, range_header=None if fields else range_header,
                                     client=self.http, content_type=str(declared) if declared else None,
                                     correlation={CORRELATION_HEADER: corr} if corr else None)
            transform = transform_for(body.content_type, body.name, fields)
        except ConnectorError as exc:
            raise self._refuse(exc, transfer_id, transfer) from None
        chunks = transform(body.chunks) if transform else body.chunks
        partial = body.byte_range is not None
        if body.length is not None and body.length <= SMALL_BODY:
            try:
                data = b"".join([chunk async for chunk in chunks])
            except ConnectorError as exc:
                raise self._refuse(exc, transfer_id, transfer) from None
            digest = Digest()
            digest.update(data)
            grant = self.count_use(transfer, kind="data.sent", bytes=digest.size, digest=digest.value,
                                   partial=partial or None)
            return Release(grant, body, transform is not None, data=data)
        try:
            grant = self.count_use(transfer)
        except ConnectorError:
            await _close(body.chunks)
            raise
        return Release(grant, body, transform is not None, stream=self.released(chunks, grant, partial=partial))

    async def open_release(self, grant: Grant, sub_path: str | None, range_header: str | None
                           ) -> tuple[SourceBody, Transform | None]:
        """Open the asset's bytes for a granted request, with the anonymisation the duties require."""
        transfer = grant.transfer
        location = resolve_address(transfer.asset.data_address, self.data_sources)
        declared = transfer.asset.properties.get("contentType")
        corr = current_correlation_id()
        body = await open_source(location, sub_path=sub_path, range_header=None if grant.fields else range_header,
                                 client=self.http, content_type=str(declared) if declared else None,
                                 correlation={CORRELATION_HEADER: corr} if corr else None)
        return body, transform_for(body.content_type, body.name, grant.fields)

    async def released(self, chunks: AsyncIterator[bytes], grant: Grant, *, partial: bool = False
                       ) -> AsyncIterator[bytes]:
        """Stream the chunks while hashing; record bytes + digest in the audit trail when done."""
        digest = Digest()
        complete = False
        try:
            async for chunk in chunks:
                digest.update(chunk)
                yield chunk
            complete = True
        finally:
            t = grant.transfer
            params = {"transfer": t.transfer_id, "size": digest.size, "digest": digest.value}
            self.audit.record_with(  # the byte count rides on the audit entry's commit
                lambda tx: tx.execute(_BYTES_SENT, params),
                "data.sent", process_id=t.transfer_id, agreement_id=t.agreement_id, counterparty=t.consumer_did,
                agreement_hash=canonical_hash(t.policy),
                decision="permit", bytes=digest.size, digest=digest.value, uses=grant.uses, complete=complete,
                partial=partial or None, anonymized=sorted(grant.fields.fields) if grant.fields else None)

    def last_sent_digest(self, transfer_id: str) -> str | None:
        """The digest of the last complete body sent for a transfer (from the audit trail)."""
        with self.sessions() as session:
            bodies = session.execute(select(AuditEntryRow.body).where(
                AuditEntryRow.process_id == transfer_id, AuditEntryRow.kind == "data.sent")
                .order_by(AuditEntryRow.seq.desc()).limit(5)).scalars().all()
        for body in bodies:
            fields = json.loads(body).get("fields", {})
            if fields.get("complete", True) and not fields.get("partial"):
                return str(fields.get("digest")) if fields.get("digest") else None
        return None

    # ================================================================================ provider: push
    async def _push(self, transfer: TransferInfo, on_complete: OnComplete | None) -> None:
        address = dict(transfer.consumer_data_address or {})
        props = _props(address)
        endpoint = str(address.get("endpoint") or "")
        headers = {}
        if props.get("authorization"):
            headers["Authorization"] = f"Bearer {props['authorization']}"
        corr = current_correlation_id()
        if corr:
            headers[CORRELATION_HEADER] = corr
        headers[DUTY_HEADER] = f"{self.data_url}/duties/{transfer.transfer_id}/fulfilment"
        try:
            if self.revocation is not None:
                revoked = await _maybe_await(self.revocation(transfer.consumer_did, transfer.credentials))
                if revoked:
                    raise self._refuse(AccessRefused(f"counterparty credentials no longer valid: {revoked}",
                                                     code="credentials_revoked"), transfer.transfer_id, transfer)
            grant = self.count_use(transfer)
            body, transform = await self.open_release(grant, None, None)
            chunks = transform(body.chunks) if transform else body.chunks
            digest = Digest()
            response = await self.http.put(endpoint, content=digesting(chunks, digest), headers=headers,
                                           timeout=httpx.Timeout(60.0))
            if response.status_code >= 300:
                raise DataPlaneError(f"consumer endpoint answered HTTP {response.status_code}",
                                     code="push_rejected")
            self.audit.record("data.sent", process_id=transfer.transfer_id, agreement_id=transfer.agreement_id,
                              counterparty=transfer.consumer_did, decision="permit", bytes=digest.size,
                              digest=digest.value, uses=grant.uses, push=True)
            receipt = (response.json() or {}).get("receipt") if response.content else None
            if receipt:
                try:
                    await self.accept_receipt(transfer.transfer_id, receipt, expected_digest=digest.value)
                except ConnectorError as exc:  # delivered all the same; the bad receipt is on record
                    self.audit.record("receipt.refused", process_id=transfer.transfer_id,
                                      agreement_id=transfer.agreement_id, counterparty=transfer.consumer_did,
                                      decision="flag", code=exc.code, reason=str(exc))
            if on_complete is not None:
                await _maybe_await(on_complete(transfer.transfer_id, digest.value, digest.size))
        except (ConnectorError, httpx.HTTPError, ValueError) as exc:
            await self._push_failed(transfer, exc)

    async def _push_failed(self, transfer: TransferInfo, exc: Exception) -> None:
        """A PUSH that cannot go on ends the transfer, with the reason on record and told to the consumer.

        Revoked credentials suspend (they may be reinstated; every transfer of the agreement, as on a pull);
        anything else - the agreement refusing the use, the consumer's endpoint failing - terminates.
        """
        code = exc.code if isinstance(exc, ConnectorError) else "push_failed"
        reason = str(exc) if isinstance(exc, ConnectorError) else f"push failed: {exc.__class__.__name__}: {exc}"
        refused = isinstance(exc, AccessRefused | UsageExhausted)
        log.warning("push of transfer %s failed: %s", transfer.transfer_id, reason)
        self.audit.record("data.push_failed", process_id=transfer.transfer_id, agreement_id=transfer.agreement_id,
                          counterparty=transfer.consumer_did, decision="deny" if refused else None, code=code,
                          reason=reason)
        if isinstance(exc, TransferNotActive):
            return  # suspended or ended meanwhile: the state machine has already moved the transfer on
        if code == "credentials_revoked":
            await self.suspend_agreement(transfer.agreement_id, reason)
            return
        if self.fail_transfer is None:
            self.terminate(transfer.transfer_id, reason)
            return
        try:
            await _maybe_await(self.fail_transfer(transfer.transfer_id, "terminate", code, reason))
        except ConnectorError as hook_error:
            log.warning("terminating transfer %s failed: %s", transfer.transfer_id, hook_error)
            self.terminate(transfer.transfer_id, reason)

    async def drain(self) -> None:
        """Wait for running push tasks (tests and shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    # ================================================================================ provider: receipts, duties
    async def _verified_statement_key(self, kid: str, expected_did: str) -> KeyPair:
        if kid.split("#", 1)[0] != expected_did:
            raise ReceiptInvalid(f"statement is signed by {kid.split('#', 1)[0]!r}, not the counterparty "
                                 f"{expected_did!r}")
        if self.key_resolver is None:
            raise ReceiptInvalid("this data plane cannot resolve counterparty keys")
        try:
            return await self.key_resolver(kid)
        except (ConnectorError, Exception) as exc:  # noqa: BLE001 - identity errors vary; report them as one
            raise ReceiptInvalid(f"cannot resolve the signer's key {kid!r}: {exc}") from None

    async def accept_receipt(self, transfer_id: str, jws: str, *, expected_digest: str | None = None) -> None:
        """Verify a consumer's receipt (signed by the transfer's consumer DID) and keep it."""
        transfer = self.transfer(transfer_id)
        header, payload = read_receipt(jws)
        if payload["transferId"] not in (transfer.transfer_id, transfer.consumer_pid):
            raise ReceiptInvalid(f"receipt is for transfer {payload['transferId']!r}, not {transfer_id!r}")
        if payload["agreementId"] != transfer.agreement_id:
            raise ReceiptInvalid("receipt names another agreement")
        key = await self._verified_statement_key(str(header["kid"]), transfer.consumer_did)
        self.audit.store_receipt(jws, key, role="received")
        expected = expected_digest or self.last_sent_digest(transfer_id)
        if expected and expected != payload["digest"]:
            self.audit.record("receipt.mismatch", process_id=transfer_id, agreement_id=transfer.agreement_id,
                              counterparty=transfer.consumer_did, decision="flag",
                              reason=f"receipt digest {payload['digest']} differs from sent {expected}")
        for duty in inform_duties(transfer.policy):
            self.record_event(transfer.agreement_id, duty.action, target=transfer.asset.id,
                              parameters={"receipt": payload["digest"], "duty": duty.uid})

    def record_event(self, agreement_id: str, action: str, *, target: str | None = None,
                     outcome: str = "performed", parameters: Mapping[str, Any] | None = None) -> None:
        """Keep an event (a duty performed or not) that later evaluations of the agreement see."""
        with self.sessions.begin() as session:
            session.add(DpEventRow(agreement_id=agreement_id, action=action, target=target, time=datetime.now(UTC),
                                   outcome=outcome, parameters=json.dumps(dict(parameters or {}), default=str)))
        self._events.pop(agreement_id, None)

    def _track_provider_duties(self, transfer: TransferInfo) -> None:
        """Expect a deletion report by the delete duty's deadline (+ grace) for this agreement."""
        deadline = delete_deadline(transfer.policy, _aware(transfer.agreement_time))
        if deadline is None:
            return
        with self.sessions.begin() as session:
            exists = session.execute(select(DpDutyRow.id).where(
                DpDutyRow.agreement_id == transfer.agreement_id, DpDutyRow.role == "provider",
                DpDutyRow.action == "delete")).first()
            if exists is None:
                session.add(DpDutyRow(agreement_id=transfer.agreement_id, transfer_id=transfer.transfer_id,
                                      role="provider", action="delete", due_at=deadline + self.fulfilment_grace,
                                      state="unfulfilled", detail=json.dumps({"deadline": deadline.isoformat()})))
        if self.monitor_wakeup:
            self.monitor_wakeup()

    async def accept_fulfilment(self, transfer_id: str, jws: str) -> dict[str, Any]:
        """The consumer reports it performed a duty (delete); verify its signature and mark the duty fulfilled."""
        transfer = self.transfer(transfer_id)
        try:
            parsed = parse_compact(jws, max_bytes=16_384)
        except CredentialError as exc:
            raise ReceiptInvalid(f"fulfilment report is not a compact JWS: {exc}") from None
        p = parsed.payload
        if p.get("type") != FULFILMENT_TYPE or p.get("agreementId") != transfer.agreement_id:
            raise ReceiptInvalid(f"expected a {FULFILMENT_TYPE} for agreement {transfer.agreement_id!r}")
        action = str(p.get("action") or "")
        if action not in ("delete", "inform", "notify"):
            raise ReceiptInvalid(f"unknown duty action {action!r}")
        key = await self._verified_statement_key(str(parsed.header.get("kid", "")), transfer.consumer_did)
        if parsed.header.get("alg") != key.alg or not key.verify(parsed.signature, parsed.signing_input):
            raise ReceiptInvalid("fulfilment report signature does not verify")
        now = datetime.now(UTC)
        with self.sessions.begin() as session:
            result = session.execute(update(DpDutyRow).where(
                DpDutyRow.agreement_id == transfer.agreement_id, DpDutyRow.role == "provider",
                DpDutyRow.action == action, DpDutyRow.state == "unfulfilled").values(state="fulfilled",
                                                                                     fulfilled_at=now))
            updated = int(getattr(result, "rowcount", 0) or 0)
        self.record_event(transfer.agreement_id, action, target=transfer.asset.id,
                          parameters={"reportedAt": p.get("time"), "location": p.get("location")})
        self.audit.record("duty.fulfilled", process_id=transfer_id, agreement_id=transfer.agreement_id,
                          counterparty=transfer.consumer_did, decision="fulfilled", action=action,
                          statement=jws, duties_updated=updated)
        return {"agreementId": transfer.agreement_id, "action": action, "state": "fulfilled"}

    # ================================================================================ consumer side
    def store_edr(self, transfer_id: str, data_address: Mapping[str, Any], *, agreement_id: str | None = None,
                  policy: Policy | None = None, agreement_time: datetime | None = None,
                  provider_did: str | None = None, asset_id: str | None = None) -> None:
        """Keep the provider's dataAddress (EDR) for a transfer; the agreement lets us schedule duties."""
        props = _props(data_address)
        endpoint = data_address.get("endpoint")
        token = props.get("authorization")
        if not isinstance(endpoint, str) or not endpoint.startswith(("http://", "https://")):
            raise DataPlaneError("dataAddress has no http(s) endpoint", code="edr_invalid")
        if not isinstance(token, str) or not token:
            raise DataPlaneError("dataAddress has no 'authorization' endpoint property", code="edr_invalid")
        expires = _jwt_claims_unverified(token).get("exp")
        meta = {"policy": policy_to_jsonld(policy) if policy is not None else None,
                "agreementTime": _aware(agreement_time).isoformat() if agreement_time else None}
        row = DpEdrRow(
            transfer_id=transfer_id, agreement_id=agreement_id, provider_did=provider_did, asset_id=asset_id,
            endpoint=endpoint, endpoint_type=str(data_address.get("endpointType") or HTTP_ENDPOINT_TYPE),
            token=token, refresh_token=props.get("refreshToken"), refresh_endpoint=props.get("refreshEndpoint"),
            expires_at=datetime.fromtimestamp(expires, UTC) if isinstance(expires, int) else None,
            data_address=json.dumps({"address": dict(data_address), "meta": meta}),
            updated_at=datetime.now(UTC))
        with self.sessions.begin() as session:
            session.merge(row)
        self.audit.record("edr.stored", process_id=transfer_id, agreement_id=agreement_id,
                          counterparty=provider_did, endpoint=endpoint)

    def edr(self, transfer_id: str) -> DpEdrRow:
        with self.sessions() as session:
            row = session.get(DpEdrRow, transfer_id)
        if row is None:
            raise UnknownTransfer(f"no EDR for transfer {transfer_id!r}")
        return row

    def edr_address(self, transfer_id: str) -> dict[str, Any]:
        """The stored dataAddress with its current token."""
        row = self.edr(transfer_id)
        address = dict(json.loads(row.data_address)["address"])
        props = [p for p in address.get("endpointProperties") or []
                 if p.get("name") not in ("authorization", "refreshToken")]
        props.append({"@type": "EndpointProperty", "name": "authorization", "value": row.token})
        if row.refresh_token:
            props.append({"@type": "EndpointProperty", "name": "refreshToken", "value": row.refresh_token})
        address["endpointProperties"] = props
        return address

    async def refresh_edr(self, transfer_id: str) -> DpEdrRow:
        """Trade the refresh token for a new access token at the provider's token endpoint."""
        row = self.edr(transfer_id)
        if not row.refresh_token or not row.refresh_endpoint:
            raise TokenInvalid("this EDR cannot be refreshed (no refresh token)", code="edr_not_refreshable")
        try:
            response = await self.http.post(row.refresh_endpoint, data={
                "grant_type": "refresh_token", "refresh_token": row.refresh_token}, headers=self._corr_headers())
        except httpx.HTTPError as exc:
            raise DataPlaneError(f"token refresh failed: {exc.__class__.__name__}", code="edr_refresh_failed",
                                 status=502) from None
        if response.status_code != 200:
            raise TokenInvalid(f"provider refused the token refresh: {response.text[:200]}",
                               code="edr_refresh_refused")
        body = response.json()
        exp = _jwt_claims_unverified(body["access_token"]).get("exp")
        with self.sessions.begin() as session:
            stored = session.get(DpEdrRow, transfer_id)
            assert stored is not None
            stored.token, stored.refresh_token = body["access_token"], body.get("refresh_token")
            stored.expires_at = datetime.fromtimestamp(exp, UTC) if isinstance(exp, int) else None
            stored.updated_at = datetime.now(UTC)
        return self.edr(transfer_id)

    def _edr_meta(self, row: DpEdrRow) -> tuple[Policy | None, datetime | None]:
        meta = json.loads(row.data_address).get("meta") or {}
        policy = parse_policy(meta["policy"]) if meta.get("policy") else None
        when = datetime.fromisoformat(meta["agreementTime"]) if meta.get("agreementTime") else None
        return policy, when

    async def pull(self, transfer_id: str, sink: Sink, *, path: str | None = None) -> TransferResult:
        """Fetch the data with the EDR into ``sink``, hash it, sign a receipt and send it to the provider."""
        row = self.edr(transfer_id)
        if row.expires_at is not None and _aware(row.expires_at) <= datetime.now(UTC) + timedelta(seconds=5):
            row = await self.refresh_edr(transfer_id)
        url = row.endpoint + ("/" + path.lstrip("/") if path else "")
        digest = Digest()
        location = await self._fetch_into(url, row, sink, digest, transfer_id)
        props = _props(json.loads(row.data_address)["address"])
        provider_transfer = str(props.get(PROP_TRANSFER) or _jwt_claims_unverified(row.token).get("tid")
                                or transfer_id)
        receipt = sign_receipt(self.key, self.kid, self.did, transfer_id=provider_transfer,
                               agreement_id=row.agreement_id or "", digest=digest.value, size=digest.size,
                               audience=row.provider_did)
        self.audit.store_receipt(receipt, self.key, role="issued")
        self.audit.record("data.received", process_id=transfer_id, agreement_id=row.agreement_id,
                          counterparty=row.provider_did, bytes=digest.size, digest=digest.value, location=location)
        receipt_url = props.get(PROP_RECEIPT)
        if receipt_url:
            try:
                response = await self.http.post(str(receipt_url), json={"receipt": receipt},
                                                headers=self._corr_headers())
                if response.status_code >= 300:
                    log.warning("provider refused the receipt for %s: %s", transfer_id, response.text[:200])
            except httpx.HTTPError as exc:
                log.warning("could not deliver the receipt for %s: %s", transfer_id, exc)
        if isinstance(sink, FileSink):
            self._schedule_consumer_duties(transfer_id, row, location,
                                           str(props.get(PROP_DUTY) or "") or None)
        else:
            policy, when = self._edr_meta(row)
            if policy is not None and when is not None and delete_deadline(policy, _aware(when)) is not None:
                # the copy now lives outside this connector: it cannot delete it, so it says so on record
                self.audit.record("duty.unenforceable", process_id=transfer_id, agreement_id=row.agreement_id,
                                  counterparty=row.provider_did, action="delete", location=location,
                                  reason="data was delivered to an HTTP sink; deletion is up to its operator")
        return TransferResult(transfer_id, digest.size, digest.value, receipt, location)

    def _corr_headers(self) -> dict[str, str]:
        corr = current_correlation_id()
        return {CORRELATION_HEADER: corr} if corr else {}

    async def _fetch_into(self, url: str, row: DpEdrRow, sink: Sink, digest: Digest, transfer_id: str) -> str:
        for attempt in (1, 2):
            headers = {"Authorization": f"Bearer {row.token}", **self._corr_headers()}
            async with self.http.stream("GET", url, headers=headers, timeout=httpx.Timeout(60.0)) as response:
                if response.status_code == 401 and attempt == 1 and row.refresh_token:
                    problem = json.loads(await response.aread() or b"{}")
                    if problem.get("code") == "token_expired":
                        row = await self.refresh_edr(transfer_id)
                        continue
                if response.status_code >= 300:
                    text = (await response.aread()).decode("utf-8", "replace")[:300]
                    try:
                        detail = json.loads(text).get("detail", text)
                    except ValueError:
                        detail = text
                    raise DataPlaneError(f"provider refused the data request (HTTP {response.status_code}): "
                                         f"{detail}", code="pull_refused", status=502)
                return await sink.consume(digesting(response.aiter_raw(), digest), self.data_folder, self.http)
        raise SinkError("pull failed after refreshing the token")

    def _schedule_consumer_duties(self, transfer_id: str, row: DpEdrRow, location: str,
                                  duty_url: str | None) -> None:
        policy, when = self._edr_meta(row)
        if policy is None or when is None:
            return
        deadline = delete_deadline(policy, _aware(when))
        if deadline is None:
            return
        with self.sessions.begin() as session:
            session.add(DpDutyRow(agreement_id=row.agreement_id or "", transfer_id=transfer_id, role="consumer",
                                  action="delete", due_at=deadline, state="unfulfilled",
                                  detail=json.dumps({"path": location, "report": duty_url})))
        self.audit.record("duty.scheduled", process_id=transfer_id, agreement_id=row.agreement_id,
                          counterparty=row.provider_did, action="delete", due=deadline)
        if self.monitor_wakeup:
            self.monitor_wakeup()

    # ---- push inbox (consumer side) ----------------------------------------------------------------------
    def consumer_address(self, transfer_id: str, *, agreement_id: str | None = None, policy: Policy | None = None,
                         agreement_time: datetime | None = None, provider_did: str | None = None) -> dict[str, Any]:
        """The dataAddress a consumer sends with a PUSH TransferRequest: our inbox plus a token for it."""
        issued = self.tokens.issue(transfer_id, agreement_id or "", provider_did or "")
        with self.sessions.begin() as session:
            session.merge(DpEdrRow(
                transfer_id=transfer_id, agreement_id=agreement_id, provider_did=provider_did, asset_id=None,
                endpoint=f"{self.data_url}/inbox/{transfer_id}", endpoint_type="inbox", token=issued.access,
                data_address=json.dumps({"address": {}, "meta": {
                    "policy": policy_to_jsonld(policy) if policy is not None else None,
                    "agreementTime": _aware(agreement_time).isoformat() if agreement_time else None}}),
                updated_at=datetime.now(UTC)))
        return {"@type": "DataAddress", "endpointType": HTTP_ENDPOINT_TYPE,
                "endpoint": f"{self.data_url}/inbox/{transfer_id}",
                "endpointProperties": [
                    {"@type": "EndpointProperty", "name": "authorization", "value": issued.access},
                    {"@type": "EndpointProperty", "name": "authType", "value": "bearer"}]}

    async def receive_push(self, transfer_id: str, token: str | None, chunks: AsyncIterator[bytes], *,
                           duty_url: str | None = None) -> TransferResult:
        """Store a pushed stream in the data folder; sign and return a receipt for the provider."""
        if not token:
            raise TokenInvalid("missing bearer token for the inbox")
        try:
            self.tokens.verify(token, transfer_id=transfer_id)
        except TokenInvalid as exc:
            self.audit.record("data.refused", process_id=transfer_id, decision="deny", code=exc.code,
                              reason=str(exc))
            raise
        row = self.edr(transfer_id)
        digest = Digest()
        sink = FileSink(f"{transfer_id}/data")
        location = await sink.consume(digesting(chunks, digest), self.data_folder, self.http)
        self.tokens.revoke_transfer(transfer_id, "push received")
        receipt = sign_receipt(self.key, self.kid, self.did, transfer_id=transfer_id,
                               agreement_id=row.agreement_id or "", digest=digest.value, size=digest.size,
                               audience=row.provider_did)
        self.audit.store_receipt(receipt, self.key, role="issued")
        self.audit.record("data.received", process_id=transfer_id, agreement_id=row.agreement_id,
                          counterparty=row.provider_did, bytes=digest.size, digest=digest.value, push=True)
        self._schedule_consumer_duties(transfer_id, row, location, duty_url)
        return TransferResult(transfer_id, digest.size, digest.value, receipt, location)

    def replace_hooks(self, **hooks: Any) -> DataPlane:
        """Set hooks (states, revocation, on_complete, suspend_transfers, ...) after construction."""
        for name, value in hooks.items():
            if not hasattr(self, name):
                raise AttributeError(name)
            setattr(self, name, value)
        return self

