"""Usage control while data is in use: duty deadlines, consumer-side deletion, and the policy monitor.

The :class:`PolicyMonitor` is one asyncio task per connector. Each round it

- performs the consumer's due ``delete`` duties (removes the received copy, records the event, and sends the
  provider a signed fulfilment report, retrying until the provider has it),
- marks the provider's unconfirmed duties *violated* once their deadline (plus grace) passed, and suspends
  every transfer of that agreement (locally at once, and through E's ``suspend_transfers`` hook),
- re-evaluates every running agreement: a policy that no longer permits (a dateTime window closed, an
  elapsedTime ran out, a duty was violated) terminates its transfers; revoked credentials suspend them.

It then sleeps until the earliest time-based bound or due date (or until poked when something new is
registered) instead of polling.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select, update

from connector.dataplane.duties import time_bounds
from connector.dataplane.service import FULFILMENT_TYP, FULFILMENT_TYPE, DataPlane
from connector.errors import ConnectorError, NotFoundError
from connector.logs import CORRELATION_HEADER
from connector.storage.tables_dataplane import DpDutyRow, DpTransferRow, DpUsageRow
from identity.credentials.jws import sign_compact

log = logging.getLogger("pactum.usage")
MAX_SLEEP = 3600.0
EPSILON = timedelta(milliseconds=20)


async def _maybe_await(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def credential_expiries(credentials: Iterable[Mapping[str, Any]]) -> list[datetime]:
    """When each of the counterparty's credentials stops being valid (a policy relying on one may then deny)."""
    out: list[datetime] = []
    for credential in credentials:
        raw = credential.get("validUntil") or credential.get("expirationDate")
        if isinstance(raw, str):
            try:
                out.append(_aware(datetime.fromisoformat(raw.replace("Z", "+00:00"))))
            except ValueError:
                continue
    return out


def sign_fulfilment(dataplane: DataPlane, *, agreement_id: str, transfer_id: str, action: str,
                    location: str | None = None) -> str:
    """The consumer's signed statement that it performed a duty (e.g. deleted its copy) now."""
    payload = {"type": FULFILMENT_TYPE, "iss": dataplane.did, "agreementId": agreement_id,
               "transferId": transfer_id, "action": action,
               "time": datetime.now(UTC).isoformat().replace("+00:00", "Z")}
    if location:
        payload["location"] = Path(location).name
    return sign_compact({"typ": FULFILMENT_TYP, "kid": dataplane.kid}, payload, dataplane.key)


@dataclass
class RoundResult:
    """What one monitor round did (tests and logs read it)."""

    deleted: list[str] = field(default_factory=list)
    reported: list[str] = field(default_factory=list)
    violated: list[str] = field(default_factory=list)
    terminated: list[str] = field(default_factory=list)
    suspended: list[str] = field(default_factory=list)
    next_wake: datetime | None = None


def delete_copy(dp: DataPlane, duty: DpDutyRow, detail: dict[str, Any]) -> str:
    """Perform a consumer ``delete`` duty: remove the received copy (inside the data folder only), mark the
    duty fulfilled, keep the event and an audit entry. Returns the path that was deleted."""
    path = Path(str(detail.get("path") or ""))
    root = dp.data_folder.resolve()
    if path.is_absolute() and path.resolve().is_relative_to(root):
        path.unlink(missing_ok=True)
        with contextlib.suppress(OSError):  # remove the now-empty per-transfer folder, if any
            if path.parent.resolve() != root:
                path.parent.rmdir()
    now = datetime.now(UTC)
    with dp.sessions.begin() as session:
        session.execute(update(DpDutyRow).where(DpDutyRow.id == duty.id).values(state="fulfilled", fulfilled_at=now))
    dp.record_event(duty.agreement_id, "delete", parameters={"location": path.name})
    dp.audit.record("duty.performed", process_id=duty.transfer_id, agreement_id=duty.agreement_id,
                    decision="fulfilled", action="delete", location=str(path))
    return str(path)


async def report_fulfilment(dp: DataPlane, duty: DpDutyRow, detail: dict[str, Any]) -> bool:
    """Send the provider our signed fulfilment statement; True once it accepted it (else retry later)."""
    statement = sign_fulfilment(dp, agreement_id=duty.agreement_id, transfer_id=duty.transfer_id,
                                action=duty.action, location=detail.get("path"))
    try:
        response = await dp.http.post(str(detail["report"]), json={"statement": statement},
                                      headers={CORRELATION_HEADER: duty.transfer_id})
        ok = response.status_code < 300
        problem = "" if ok else response.text[:200]
    except httpx.HTTPError as exc:
        ok, problem = False, exc.__class__.__name__
    if not ok:
        log.warning("fulfilment report for %s not accepted yet: %s", duty.transfer_id, problem)
        return False
    detail["reported"] = True
    with dp.sessions.begin() as session:
        session.execute(update(DpDutyRow).where(DpDutyRow.id == duty.id).values(detail=json.dumps(detail)))
    dp.audit.record("duty.reported", process_id=duty.transfer_id, agreement_id=duty.agreement_id,
                    action=duty.action)
    return True


async def fulfil_now(dp: DataPlane, transfer_id: str, action: str = "delete") -> dict[str, Any]:
    """Perform the consumer's pending duties of one transfer now, before their deadline (the operator asks
    for it), and report them to the provider. Unreported ones are retried by the monitor."""
    with dp.sessions() as session:
        duties = list(session.execute(select(DpDutyRow).where(
            DpDutyRow.transfer_id == transfer_id, DpDutyRow.role == "consumer", DpDutyRow.action == action,
            DpDutyRow.state == "unfulfilled")).scalars())
    if not duties:
        raise NotFoundError(f"no pending {action!r} duty for transfer {transfer_id!r} (is the data pulled into the "
                            "data folder, and does the agreement carry such a duty?)", code="duty_not_found")
    deleted: list[str] = []
    reported = True
    for duty in duties:
        detail = json.loads(duty.detail)
        if action == "delete":
            deleted.append(delete_copy(dp, duty, detail))
        if detail.get("report"):
            reported = await report_fulfilment(dp, duty, detail) and reported
        else:
            reported = False
    if dp.monitor_wakeup and not reported:
        dp.monitor_wakeup()
    return {"transferProcessId": transfer_id, "action": action, "state": "fulfilled", "deleted": deleted,
            "reported": reported}


class PolicyMonitor:
    """Re-evaluates running agreements and executes/checks duties on time (see module docstring)."""

    def __init__(self, dataplane: DataPlane, *, revocation_interval: float = 60.0) -> None:
        self.dp = dataplane
        self.revocation_interval = revocation_interval
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._next_revocation_check = datetime.now(UTC)
        dataplane.monitor_wakeup = self.poke

    def poke(self) -> None:
        """Wake up now (a transfer or duty was registered, a revocation announced)."""
        self._wake.set()

    def start(self) -> asyncio.Task[None]:
        """Run in the current event loop until :meth:`stop`."""
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self.run(), name="pactum-policy-monitor")
        return self._task

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def run(self) -> None:
        while True:
            self._wake.clear()
            try:
                result = await self.tick()
            except Exception:  # noqa: BLE001 - the monitor must survive one bad round and try again
                log.exception("policy monitor round failed")
                result = RoundResult(next_wake=datetime.now(UTC) + timedelta(seconds=30))
            delay = MAX_SLEEP
            if result.next_wake is not None:
                delay = min(max((result.next_wake - datetime.now(UTC)).total_seconds(), 0.0), MAX_SLEEP)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=delay)

    # ---------------------------------------------------------------------------------------------- a round
    async def tick(self, now: datetime | None = None) -> RoundResult:
        """One round of duties and re-evaluation; returns what happened and when to wake next."""
        now = now or datetime.now(UTC)
        result = RoundResult()
        wakes: list[datetime] = []
        await self._consumer_duties(now, result, wakes)
        await self._provider_duties(now, result, wakes)
        await self._running_agreements(now, result, wakes)
        result.next_wake = min(wakes) if wakes else None
        return result

    def _duties(self, role: str, states: tuple[str, ...]) -> list[DpDutyRow]:
        with self.dp.sessions() as session:
            return list(session.execute(select(DpDutyRow).where(DpDutyRow.role == role,
                                                                DpDutyRow.state.in_(states))).scalars())

    async def _consumer_duties(self, now: datetime, result: RoundResult, wakes: list[datetime]) -> None:
        for duty in self._duties("consumer", ("unfulfilled", "fulfilled")):
            detail = json.loads(duty.detail)
            if duty.state == "fulfilled":
                if detail.get("report") and not detail.get("reported"):
                    await self._report(duty, detail, result, wakes, now)
                continue
            if duty.due_at is None:
                continue
            due = _aware(duty.due_at)
            if due > now:
                wakes.append(due)
                continue
            if duty.action == "delete":
                self._delete_copy(duty, detail, result)
            if detail.get("report"):
                await self._report(duty, detail, result, wakes, now)

    def _delete_copy(self, duty: DpDutyRow, detail: dict[str, Any], result: RoundResult) -> None:
        result.deleted.append(delete_copy(self.dp, duty, detail))

    async def _report(self, duty: DpDutyRow, detail: dict[str, Any], result: RoundResult, wakes: list[datetime],
                      now: datetime) -> None:
        if await report_fulfilment(self.dp, duty, detail):
            result.reported.append(duty.transfer_id)
        else:
            wakes.append(now + timedelta(seconds=30))

    async def _provider_duties(self, now: datetime, result: RoundResult, wakes: list[datetime]) -> None:
        for duty in self._duties("provider", ("unfulfilled",)):
            if duty.due_at is None:
                continue
            due = _aware(duty.due_at)
            if due > now:
                wakes.append(due)
                continue
            reason = (f"duty '{duty.action}' of agreement {duty.agreement_id} violated: the consumer did not "
                      f"confirm it by {due.isoformat()}")
            with self.dp.sessions.begin() as session:
                session.execute(update(DpDutyRow).where(DpDutyRow.id == duty.id).values(state="violated"))
            self.dp.record_event(duty.agreement_id, duty.action, outcome="unperformed",
                                 parameters={"deadline": due.isoformat()})
            self.dp.audit.record("duty.violated", process_id=duty.transfer_id, agreement_id=duty.agreement_id,
                                 decision="violated", action=duty.action, reason=reason)
            result.violated.append(duty.agreement_id)
            await self._stop_agreement(duty.agreement_id, reason, "suspended", result)

    async def _stop_agreement(self, agreement_id: str, reason: str, how: str, result: RoundResult) -> None:
        with self.dp.sessions() as session:
            ids = session.execute(select(DpTransferRow.transfer_id).where(
                DpTransferRow.agreement_id == agreement_id, DpTransferRow.state == "active")).scalars().all()
        for tid in ids:
            if how == "suspended":
                self.dp.suspend(tid, reason)
                result.suspended.append(tid)
            else:
                self.dp.terminate(tid, reason)
                result.terminated.append(tid)
        hook = self.dp.suspend_transfers if how == "suspended" else self.dp.terminate_transfers
        if hook is not None:
            try:
                await _maybe_await(hook(agreement_id, reason))
            except ConnectorError as exc:
                log.warning("%s hook for %s failed: %s", how, agreement_id, exc)

    async def _running_agreements(self, now: datetime, result: RoundResult, wakes: list[datetime]) -> None:
        check_revocation = self.dp.revocation is not None and now >= self._next_revocation_check
        if self.dp.revocation is not None:
            if check_revocation:
                self._next_revocation_check = now + timedelta(seconds=self.revocation_interval)
            wakes.append(self._next_revocation_check)
        seen: set[str] = set()
        for transfer in self.dp.running_transfers():
            if transfer.agreement_id in seen:
                continue
            seen.add(transfer.agreement_id)
            if check_revocation and self.dp.revocation is not None:
                revoked = await _maybe_await(self.dp.revocation(transfer.consumer_did, transfer.credentials))
                if revoked:
                    await self._stop_agreement(transfer.agreement_id, f"counterparty credentials no longer valid: "
                                               f"{revoked}", "suspended", result)
                    continue
            with self.dp.sessions() as session:
                uses = session.execute(select(DpUsageRow.used).where(
                    DpUsageRow.agreement_id == transfer.agreement_id)).scalar() or 0
            report = self.dp.evaluate(transfer, max(int(uses), 1), now)
            if report.decision != "permit":
                reason = "agreement no longer permits use: " + ("; ".join(report.reasons[:3]) or "policy denies")
                self.dp.audit.record("monitor.decision", agreement_id=transfer.agreement_id,
                                     counterparty=transfer.consumer_did, decision="deny", reason=reason)
                await self._stop_agreement(transfer.agreement_id, reason, "terminated", result)
                continue
            bounds = time_bounds(transfer.policy, _aware(transfer.agreement_time))
            bounds.extend(credential_expiries(transfer.credentials))
            wakes.extend(b + EPSILON for b in bounds if b + EPSILON > now)
