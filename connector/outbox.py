"""Transactional outbox: DSP messages are stored with the state change that causes them, then delivered.

WHY: a connector must never acknowledge a state it may lose, nor lose a message it decided to send. The
state change and the outgoing message commit together; the worker delivers at once (woken through an
``asyncio.Event``, no polling in the happy path) and retries with bounded exponential backoff, so a crash or
restart of either side resumes every process. Messages of one process go out in order; different
processes go out in parallel.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session

from connector.logs import CORRELATION_HEADER, correlation
from connector.storage.tables_protocol import OutboxRow

if TYPE_CHECKING:
    from connector.context import ConnectorContext

log = logging.getLogger("pactum.connector.outbox")

BASE_DELAY = 0.5  # seconds before the first retry
MAX_DELAY = 60.0  # cap of one backoff step
MAX_ATTEMPTS = 12  # then the message fails for good and the process is told
RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
# WHY a bound: every request in flight is a pooled connection the HTTP client scans on each request and
# response; dozens of simultaneous deliveries cost more CPU in that bookkeeping (and in new connections
# beyond the keep-alive pool) than they gain, while a few in parallel already keep both sides busy.
MAX_PARALLEL_DELIVERIES = 16

# Called after a message was accepted (2xx): (message_type, outbox row, response JSON or None)
DeliveredHook = Callable[[OutboxRow, Any], Awaitable[None] | None]
# Called when a message cannot be delivered for good: (row, status or None, detail)
FailedHook = Callable[[OutboxRow, int | None, str], Awaitable[None] | None]


def backoff(attempts: int) -> float:
    """Seconds to wait after ``attempts`` failed tries: 0.5, 1, 2, 4 ... capped at a minute."""
    return float(min(MAX_DELAY, BASE_DELAY * (2 ** max(0, attempts - 1))))


def now_utc() -> datetime:
    return datetime.now(UTC)


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


class Outbox:
    """Enqueue inside a transaction, deliver from a single worker task per process."""

    def __init__(self, ctx: ConnectorContext) -> None:
        self.ctx = ctx
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping = False
        self._delivered: dict[str, DeliveredHook] = {}
        self._failed: dict[str, FailedHook] = {}
        self._inflight: set[str] = set()  # process ids with a delivery under way
        self._finished: set[str] = set()  # process ids whose delivery ended while pending rows were being read
        self._tasks: set[asyncio.Task[None]] = set()
        self._sending: asyncio.Semaphore | None = None

    # ---- producers --------------------------------------------------------------------------------------
    def enqueue(self, session: Session, *, process_id: str, kind: str, message: dict[str, Any], url: str,
                recipient_did: str, correlation_id: str | None) -> OutboxRow:
        """Add a message to ``session``; it is sent once the caller commits and calls :meth:`wake`."""
        row = OutboxRow(process_id=process_id, kind=kind, message_type=str(message.get("@type")), url=url,
                        recipient_did=recipient_did, body=json.dumps(message), status="pending", attempts=0,
                        next_attempt_at=now_utc(), correlation_id=correlation_id, created_at=now_utc())
        session.add(row)
        return row

    def wake(self) -> None:
        """Tell the worker there is something to send (safe from any thread)."""
        wake, loop_of_worker = self._wake, self._loop
        if wake is None or loop_of_worker is None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        if loop is loop_of_worker:
            wake.set()
        else:
            loop_of_worker.call_soon_threadsafe(wake.set)

    def on_delivered(self, message_type: str, hook: DeliveredHook) -> None:
        self._delivered[message_type] = hook

    def on_failed(self, kind: str, hook: FailedHook) -> None:
        self._failed[kind] = hook

    # ---- worker -----------------------------------------------------------------------------------------
    def _due(self) -> tuple[list[OutboxRow], float | None]:
        """Pending rows due now (first per process, in order), and seconds until the next one is due."""
        with self.ctx.sessions() as session:
            rows = session.scalars(select(OutboxRow).where(OutboxRow.status == "pending")
                                   .order_by(OutboxRow.id)).all()
        now = now_utc()
        due: list[OutboxRow] = []
        seen: set[str] = set()
        wait: float | None = None
        for row in rows:
            if row.process_id in seen or row.process_id in self._inflight:
                seen.add(row.process_id)
                continue
            seen.add(row.process_id)
            at = _aware(row.next_attempt_at)
            if at <= now:
                due.append(row)
            else:
                delta = (at - now).total_seconds()
                wait = delta if wait is None else min(wait, delta)
        return due, wait

    async def run_worker(self) -> None:
        """Deliver until :meth:`stop_worker`; sleeps on the wake event, or until the next retry is due."""
        self._loop = asyncio.get_running_loop()
        self._sending = asyncio.Semaphore(MAX_PARALLEL_DELIVERIES)
        self._wake = asyncio.Event()
        self._wake.set()  # resume whatever a previous run left pending
        while not self._stopping:
            timeout: float | None = None
            finished: set[str] = set()
            self._finished = finished
            try:
                due, timeout = await asyncio.to_thread(self._due)
            except Exception as exc:  # database briefly unavailable: try again shortly
                log.warning("outbox cannot read pending messages: %s", exc)
                due, timeout = [], 1.0
            for row in due:
                self._inflight.add(row.process_id)
                # a chain that ended during the read may have sent this very row since: read it again then
                first = None if row.process_id in finished else row
                task = asyncio.create_task(self._deliver_chain(row.process_id, first))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=timeout if timeout is not None else 30.0)
            except TimeoutError:
                pass
            self._wake.clear()

    async def stop_worker(self) -> None:
        self._stopping = True
        if self._wake is not None:
            self._wake.set()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _deliver_chain(self, process_id: str, first: OutboxRow | None = None) -> None:
        """Send this process's due messages one after another; stop at the first that must wait.

        ``first`` is the row :meth:`_due` just read as this process's oldest pending one (not read again).
        """
        try:
            while not self._stopping:
                row, first = first or await asyncio.to_thread(self._next_of, process_id), None
                if row is None or _aware(row.next_attempt_at) > now_utc():
                    return
                if not await self._deliver(row):
                    return
        finally:
            self._inflight.discard(process_id)
            self._finished.add(process_id)
            if self._wake is not None:
                self._wake.set()

    def _next_of(self, process_id: str) -> OutboxRow | None:
        with self.ctx.sessions() as session:
            return session.scalars(select(OutboxRow).where(OutboxRow.process_id == process_id,
                                                           OutboxRow.status == "pending")
                                   .order_by(OutboxRow.id).limit(1)).first()

    async def _deliver(self, row: OutboxRow) -> bool:
        """One attempt; True when the message is done with (sent or failed for good)."""
        with correlation(row.correlation_id):
            # signing and the wallet read stay off the event loop
            authorization = await asyncio.to_thread(self.ctx.trust.authorization, row.recipient_did)
            headers = {"Content-Type": "application/json", "Authorization": authorization}
            if row.correlation_id:
                headers[CORRELATION_HEADER] = row.correlation_id
            status: int | None = None
            try:
                async with self._sending or contextlib.nullcontext():
                    response = await self.ctx.http.post(row.url, content=row.body, headers=headers)
                status = response.status_code
                detail = response.text[:2000]
            except httpx.HTTPError as exc:
                detail = f"{exc.__class__.__name__}: {exc}"
            if status is not None and 200 <= status < 300:
                try:
                    payload = response.json() if response.content else None
                except ValueError:
                    payload = None
                await asyncio.to_thread(self._mark, row.id, "sent", None, row.attempts + 1)
                log.info("sent %s to %s", row.message_type, row.url)
                hook = self._delivered.get(row.message_type)
                if hook is not None:
                    await _call(hook, row, payload)
                return True
            attempts = row.attempts + 1
            permanent = status is not None and status not in RETRY_STATUSES
            if permanent or attempts >= MAX_ATTEMPTS:
                await asyncio.to_thread(self._mark, row.id, "failed", f"{status}: {detail}", attempts)
                log.warning("giving up on %s to %s after %d attempt(s): %s %s", row.message_type, row.url,
                            attempts, status, detail[:300])
                failed = self._failed.get(row.kind)
                if failed is not None:
                    await _call(failed, row, status, detail)
                return True
            delay = backoff(attempts)
            await asyncio.to_thread(self._retry_later, row.id, attempts, delay, f"{status}: {detail}")
            log.info("retrying %s to %s in %.1fs (attempt %d): %s", row.message_type, row.url, delay, attempts,
                     detail[:200])
            return False

    def _mark(self, row_id: int, status: str, error: str | None, attempts: int) -> None:
        with self.ctx.sessions.begin() as session:
            row = session.get(OutboxRow, row_id)
            if row is not None:
                row.status, row.last_error, row.attempts = status, error, attempts

    def _retry_later(self, row_id: int, attempts: int, delay: float, error: str) -> None:
        with self.ctx.sessions.begin() as session:
            row = session.get(OutboxRow, row_id)
            if row is not None:
                row.attempts = attempts
                row.last_error = error
                row.next_attempt_at = now_utc() + timedelta(seconds=delay)


async def _call(hook: Callable[..., Any], *args: Any) -> None:
    try:
        result = hook(*args)
        if result is not None and hasattr(result, "__await__"):
            await result
    except Exception:  # a hook failing must not kill the worker; the process stays inspectable
        log.exception("outbox hook failed for %s", args[0].message_type if args else "?")
