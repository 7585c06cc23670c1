"""Transactional outbox: DSP messages are stored with the state change that causes them, then delivered.

WHY: a connector must never acknowledge a state it may lose, nor lose a message it decided to send. The
state change and the outgoing message commit together; the worker delivers at once and retries with bounded
exponential backoff, so a crash or restart of either side resumes every process. Messages of one process go
out in order; different processes go out in parallel.

WHY no pending scan per delivery: the session that enqueues a message tells the outbox which process it
wrote for once it has committed (``after_commit``), so the worker starts exactly that process's delivery
chain; a chain reads only its own process's next row, in the same transaction that records the previous
outcome. The full pending table is read (a few columns, never the bodies) only when the worker starts, and
then every :data:`SAFETY_SCAN` seconds as a safety net. No-lost-message rule: a commit for a process whose
chain is under way marks it for a re-read, and the chain only ends after a read that began after the
last such mark (both decisions run on the event loop, so neither can slip between the other's steps).

WHY hooks run in the worker thread that records the outcome: a delivered hook (e.g. recording the peer's pid
from its 201 answer) runs inside the very transaction that marks the message sent, under the process's lock,
so the event loop never blocks on the database and the outcome and its consequence commit together. A failed
hook runs in the same thread right after the failure is committed. The HTTP part lives in
:mod:`connector.delivery`.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar, cast

from sqlalchemy import Connection, Table, bindparam, event, insert, select, update
from sqlalchemy.orm import Session

from connector.delivery import (
    MAX_PARALLEL_DELIVERIES,
    DeliveryClients,
    DeliveryError,
    DeliveryUnreachable,
    PeerAnswer,
)
from connector.errors import ConnectorError
from connector.logs import CORRELATION_HEADER, correlation
from connector.storage.tables_protocol import OutboxRow

if TYPE_CHECKING:
    from connector.context import ConnectorContext

log = logging.getLogger("pactum.connector.outbox")

BASE_DELAY = 0.5  # seconds before the first retry
MAX_DELAY = 60.0  # cap of one backoff step
MAX_ATTEMPTS = 12  # then the message fails for good and the process is told
RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
SAFETY_SCAN = 30.0  # seconds between full reads of the pending rows (the start-up read resumes everything)
DB_RETRY = 1.0  # seconds before a process whose rows could not be read or written is tried again

# Called after a message was accepted (2xx), in a worker thread, inside the transaction that marks it sent and
# under the process's lock: (that transaction's session, the message, the answer's JSON or None)
DeliveredHook = Callable[[Session, "Outgoing", Any], None]
# Called when a message cannot be delivered for good, in a worker thread right after that is committed:
# (row, status or None, detail); it opens its own transaction
FailedHook = Callable[[OutboxRow, int | None, str], None]

_Hook = TypeVar("_Hook", bound=Callable[..., Any])

_TABLE = cast(Table, OutboxRow.__table__)


def backoff(attempts: int) -> float:
    """Seconds to wait after ``attempts`` failed tries: 0.5, 1, 2, 4 ... capped at a minute."""
    return float(min(MAX_DELAY, BASE_DELAY * (2 ** max(0, attempts - 1))))


def now_utc() -> datetime:
    return datetime.now(UTC)


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


# ---- rows as read for delivery (Core, no ORM identity map or instrumentation) ------------------------------
@dataclass(frozen=True, slots=True)
class Outgoing:
    """The columns of one pending outbox row that a delivery attempt needs."""

    id: int
    process_id: str
    kind: str
    message_type: str
    url: str
    recipient_did: str
    body: str
    attempts: int
    next_attempt_at: datetime
    correlation_id: str | None

    def as_row(self) -> OutboxRow:
        """A detached :class:`OutboxRow` with these values, for the hooks (their signature takes a row)."""
        return OutboxRow(id=self.id, process_id=self.process_id, kind=self.kind, message_type=self.message_type,
                         url=self.url, recipient_did=self.recipient_did, body=self.body, status="pending",
                         attempts=self.attempts, next_attempt_at=self.next_attempt_at,
                         correlation_id=self.correlation_id)


_DELIVERY_COLUMNS = (_TABLE.c.id, _TABLE.c.process_id, _TABLE.c.kind, _TABLE.c.message_type, _TABLE.c.url,
                     _TABLE.c.recipient_did, _TABLE.c.body, _TABLE.c.attempts, _TABLE.c.next_attempt_at,
                     _TABLE.c.correlation_id)
_NEXT_OF = (select(*_DELIVERY_COLUMNS)
            .where(_TABLE.c.process_id == bindparam("pid"), _TABLE.c.status == "pending",
                   _TABLE.c.id != bindparam("done"))
            .order_by(_TABLE.c.id).limit(1))
_INSERT = insert(_TABLE)
_PENDING = (select(_TABLE.c.process_id, _TABLE.c.next_attempt_at)
            .where(_TABLE.c.status == "pending").order_by(_TABLE.c.id))
_RECORD = (update(_TABLE).where(_TABLE.c.id == bindparam("row_id"))
           .values(status=bindparam("new_status"), last_error=bindparam("error"), attempts=bindparam("tries")))
_RETRY_LATER = (update(_TABLE).where(_TABLE.c.id == bindparam("row_id"))
                .values(last_error=bindparam("error"), attempts=bindparam("tries"),
                        next_attempt_at=bindparam("at")))


@dataclass(frozen=True, slots=True)
class _Ready:
    """A process's next pending message and, when it is due now, the signed ``Authorization`` for it."""

    message: Outgoing | None
    authorization: str | None = None


# ---- the outbox -----------------------------------------------------------------------------------------
class Outbox:
    """Enqueue inside a transaction, deliver from a single worker task per process."""

    def __init__(self, ctx: ConnectorContext) -> None:
        self.ctx = ctx
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping = False
        self._delivered: dict[str, DeliveredHook] = {}
        self._failed: dict[str, FailedHook] = {}
        self._committed: deque[str] = deque()  # process ids with a committed new row, not yet looked at
        self._scan_due = True  # read every pending row at the next wake (start-up, safety net)
        self._inflight: set[str] = set()  # process ids with a delivery chain under way
        self._recheck: set[str] = set()  # ... and among them those with a commit since the chain's last read
        self._timers: dict[str, asyncio.TimerHandle] = {}  # process id -> its next retry
        self._tasks: set[asyncio.Task[None]] = set()
        self._sending: asyncio.Semaphore | None = None
        self._clients: DeliveryClients | None = None
        self._scan_timer: asyncio.TimerHandle | None = None
        # Session.info keys: the processes a transaction enqueued for; a foreign session already listened on
        self._pids_key = ("pactum.outbox.process_ids", id(self))
        self._listened_key = ("pactum.outbox.listened", id(self))
        self._session_class: type | None = getattr(ctx.sessions, "class_", None)  # sessionmaker's own subclass
        if self._session_class is not None:
            event.listen(ctx.sessions, "after_commit", self._after_commit)

    # ---- producers --------------------------------------------------------------------------------------
    def enqueue(self, session: Session, *, process_id: str, kind: str, message: dict[str, Any], url: str,
                recipient_did: str, correlation_id: str | None) -> None:
        """Write a message in ``session``'s transaction; it is sent as soon as the session commits.

        One Core INSERT on the session's connection (no ORM object to track and flush): it commits or rolls
        back with everything else in the transaction, savepoints included.
        """
        created = now_utc()
        session.execute(_INSERT, {"process_id": process_id, "kind": kind, "message_type": str(message.get("@type")),
                                  "url": url, "recipient_did": recipient_did, "body": json.dumps(message),
                                  "status": "pending", "attempts": 0, "next_attempt_at": created,
                                  "correlation_id": correlation_id, "created_at": created})
        info = session.info
        pids: set[str] | None = info.get(self._pids_key)
        if pids is None:
            info[self._pids_key] = pids = set()
            if type(session) is not self._session_class and self._listened_key not in info:
                info[self._listened_key] = True  # not from ctx.sessions: listen on this session alone
                event.listen(session, "after_commit", self._after_commit)
        pids.add(process_id)

    def _after_commit(self, session: Session) -> None:
        """The rows ``session`` enqueued are durable now: hand their processes to the worker.

        Without a running worker nothing is kept: its start-up scan reads every pending row anyway.
        (Processes of a rolled-back enqueue stay listed until the session's next commit: one needless read.)
        """
        if self._pids_key not in session.info or session.in_nested_transaction():
            return  # nothing enqueued, or a savepoint was released: its rows commit with the outer transaction
        pids = session.info.pop(self._pids_key)
        if pids and self._loop is not None:
            self._committed.extend(pids)  # deque.extend is atomic: producers run in worker threads
            self.wake()

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
        elif not wake.is_set():  # set and not yet cleared: the worker will still look at what came before
            loop_of_worker.call_soon_threadsafe(wake.set)

    def on_delivered(self, message_type: str, hook: DeliveredHook) -> None:
        """Run ``hook`` inside the transaction that records each accepted ``message_type`` (see DeliveredHook)."""
        self._delivered[message_type] = _plain(hook)

    def on_failed(self, kind: str, hook: FailedHook) -> None:
        """Run ``hook`` once a message of a ``kind`` process has failed for good (see FailedHook)."""
        self._failed[kind] = _plain(hook)

    # ---- worker -----------------------------------------------------------------------------------------
    async def run_worker(self) -> None:
        """Deliver until :meth:`stop_worker`; sleeps on the wake event between commits and due retries."""
        self._loop = asyncio.get_running_loop()
        self._sending = asyncio.Semaphore(MAX_PARALLEL_DELIVERIES)
        self._clients = DeliveryClients.for_context(self.ctx)
        self._wake = asyncio.Event()
        self._scan_due = True  # resume whatever a previous run left pending
        self._wake.set()
        while not self._stopping:
            await self._wake.wait()
            self._wake.clear()
            if self._scan_due:
                self._scan_due = False
                await self._scan()
                if self._clients is not None:
                    try:
                        await self._clients.close_idle(SAFETY_SCAN)
                    except Exception as exc:  # a connection that fails to close must not stop the deliveries
                        log.warning("outbox could not close an idle HTTP client: %s", exc)
            while self._committed:
                self._kick(self._committed.popleft())

    async def _post(self, url: str, *, content: str, headers: dict[str, str]) -> PeerAnswer:
        if self._clients is None:  # stopped
            raise DeliveryUnreachable(f"Stopping: the outbox stops; {url} is tried again at the next start")
        return await self._clients.post(url, content=content, headers=headers)

    def _request_scan(self) -> None:
        self._scan_due = True
        if self._wake is not None:
            self._wake.set()

    async def _scan(self) -> None:
        """Start every process with a due pending row; schedule the others; plan the next safety scan."""
        assert self._loop is not None
        try:
            pending = await asyncio.to_thread(self._pending)
        except Exception as exc:  # database briefly unavailable: try again shortly
            log.warning("outbox cannot read pending messages: %s", exc)
            self._loop.call_later(DB_RETRY, self._request_scan)
            return
        now = now_utc()
        for process_id, at in pending.items():
            wait = (_aware(at) - now).total_seconds()
            if wait <= 0:
                self._kick(process_id)
            else:
                self._kick_later(process_id, wait)
        self._scan_timer = self._loop.call_later(SAFETY_SCAN, self._request_scan)

    def _pending(self) -> dict[str, datetime]:
        """When each process's oldest pending row is due (only two columns read, never the bodies)."""
        first: dict[str, datetime] = {}
        with self.ctx.engine.connect() as conn:
            for process_id, at in conn.execute(_PENDING):
                first.setdefault(process_id, at)
        return first

    def _kick(self, process_id: str) -> None:
        """Start ``process_id``'s delivery chain, or make the running one read again before it ends."""
        if self._stopping:
            return
        if process_id in self._inflight:
            self._recheck.add(process_id)
            return
        self._inflight.add(process_id)
        task = asyncio.create_task(self._deliver_chain(process_id))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _kick_later(self, process_id: str, delay: float) -> None:
        if self._stopping or self._loop is None:
            return
        previous = self._timers.pop(process_id, None)
        if previous is not None:
            previous.cancel()
        self._timers[process_id] = self._loop.call_later(delay, self._timer_fired, process_id)

    def _timer_fired(self, process_id: str) -> None:
        self._timers.pop(process_id, None)
        self._kick(process_id)

    async def stop_worker(self) -> None:
        self._stopping = True
        if self._wake is not None:
            self._wake.set()
        for timer in [*self._timers.values(), self._scan_timer]:
            if timer is not None:
                timer.cancel()
        self._timers.clear()
        self._loop = None  # commits stop queueing process ids; a next start scans
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        clients, self._clients = self._clients, None
        if clients is not None:
            await clients.aclose()

    async def _deliver_chain(self, process_id: str) -> None:
        """Send this process's due messages one after another; stop at the first that must wait."""
        try:
            ready = await self._read_next(process_id)
            while not self._stopping:
                message = ready.message
                if message is None:
                    if process_id not in self._recheck:
                        return  # no await since the check: a later commit finds the chain ended and starts one
                    ready = await self._read_next(process_id)
                    continue
                if ready.authorization is None:  # not due yet (a retry waiting for its backoff)
                    wait = (_aware(message.next_attempt_at) - now_utc()).total_seconds()
                    self._kick_later(process_id, max(wait, 0.0))
                    return
                next_ready = await self._deliver(message, ready.authorization)
                if next_ready is None:  # retry scheduled
                    return
                ready = next_ready
        except Exception as exc:  # database briefly unavailable: this process is tried again shortly
            log.warning("outbox cannot deliver for %s: %s", process_id, exc)
            self._kick_later(process_id, DB_RETRY)
        finally:
            self._inflight.discard(process_id)

    async def _read_next(self, process_id: str) -> _Ready:
        self._recheck.discard(process_id)  # this read sees every commit announced so far
        return await asyncio.to_thread(self._next_of, process_id)

    def _next_of(self, process_id: str, done: int = -1) -> _Ready:
        with self.ctx.engine.connect() as conn:
            found = conn.execute(_NEXT_OF, {"pid": process_id, "done": done}).first()
        return self._ready(found)

    def _ready(self, found: Any) -> _Ready:
        """Wrap a row read with :data:`_NEXT_OF`; sign for it when it is due (signing stays off the loop)."""
        if found is None:
            return _Ready(None)
        message = Outgoing(*found)
        if _aware(message.next_attempt_at) > now_utc():
            return _Ready(message)
        return _Ready(message, self.ctx.trust.authorization(message.recipient_did))

    def _record(self, message: Outgoing, status: str, error: str | None, attempts: int) -> _Ready:
        """Store the final outcome of ``message`` and read the process's next pending one: one transaction.

        The read comes first so the SQLite write lock is held for the update alone.
        """
        with self.ctx.engine.begin() as conn:
            found = self._record_on(conn, message, status, error, attempts)
        return self._ready(found)

    @staticmethod
    def _record_on(conn: Connection, message: Outgoing, status: str, error: str | None, attempts: int) -> Any:
        found = conn.execute(_NEXT_OF, {"pid": message.process_id, "done": message.id}).first()
        conn.execute(_RECORD, {"row_id": message.id, "new_status": status, "error": error, "tries": attempts})
        return found

    def _record_sent(self, message: Outgoing, answer: PeerAnswer) -> _Ready:
        """Mark ``message`` sent (worker thread); its delivered hook, if any, runs in the same transaction.

        The process's lock is taken before the transaction begins, in the order every other writer of the
        process takes them (lock, then transaction), so the hook never races an inbound message of its
        process. A failing hook is logged and its changes are rolled back; the message is still marked sent
        (it was delivered), in a transaction of its own.
        """
        attempts = message.attempts + 1
        hook = self._delivered.get(message.message_type)
        if hook is None:
            return self._record(message, "sent", None, attempts)
        payload = answer.json()  # parsed off the event loop, and only for a hook that reads it
        locks = self.ctx.extras.get("locks")
        try:
            with locks(message.process_id) if locks is not None else contextlib.nullcontext():
                with self.ctx.sessions.begin() as session:
                    found = self._record_on(session.connection(), message, "sent", None, attempts)
                    hook(session, message, payload)
        except Exception:  # a hook failing must not lose the delivery; the process stays inspectable
            log.exception("outbox hook failed for %s %s", message.message_type, message.process_id)
            return self._record(message, "sent", None, attempts)
        return self._ready(found)

    def _record_failed(self, message: Outgoing, status: int | None, detail: str, attempts: int) -> _Ready:
        """Mark ``message`` failed for good, then tell its process (worker thread, after the commit)."""
        ready = self._record(message, "failed", f"{status}: {detail}", attempts)
        log.warning("giving up on %s to %s after %d attempt(s): %s %s", message.message_type, message.url,
                    attempts, status, detail[:300])
        hook = self._failed.get(message.kind)
        if hook is not None:
            try:
                hook(message.as_row(), status, detail)
            except Exception:  # a hook failing must not kill the worker; the process stays inspectable
                log.exception("outbox hook failed for %s %s", message.message_type, message.process_id)
        return ready

    def _retry_later(self, row_id: int, attempts: int, delay: float, error: str) -> None:
        with self.ctx.engine.begin() as conn:
            conn.execute(_RETRY_LATER, {"row_id": row_id, "error": error, "tries": attempts,
                                        "at": now_utc() + timedelta(seconds=delay)})

    async def _deliver(self, message: Outgoing, authorization: str) -> _Ready | None:
        """One attempt; the process's next message when this one is done with (sent or failed for good).

        None when it must be tried again later (the retry is scheduled).
        """
        with correlation(message.correlation_id):
            headers = {"Content-Type": "application/json", "Authorization": authorization}
            if message.correlation_id:
                headers[CORRELATION_HEADER] = message.correlation_id
            status: int | None = None
            detail, unusable = "", False
            answer: PeerAnswer | None = None
            try:
                async with self._sending or contextlib.nullcontext():
                    answer = await self._post(message.url, content=message.body, headers=headers)
                status = answer.status
            except DeliveryError as exc:  # no HTTP answer; an unusable URL is never retried
                detail, unusable = str(exc), not exc.retryable
            self._recheck.discard(message.process_id)  # the read below sees every commit announced so far
            if answer is not None and 200 <= answer.status < 300:
                ready = await asyncio.to_thread(self._record_sent, message, answer)
                log.info("sent %s to %s", message.message_type, message.url)
                return ready
            if answer is not None:
                detail = answer.text[:2000]
            attempts = message.attempts + 1
            permanent = unusable or (status is not None and status not in RETRY_STATUSES)
            if permanent or attempts >= MAX_ATTEMPTS:
                return await asyncio.to_thread(self._record_failed, message, status, detail, attempts)
            delay = backoff(attempts)
            await asyncio.to_thread(self._retry_later, message.id, attempts, delay, f"{status}: {detail}")
            log.info("retrying %s to %s in %.1fs (attempt %d): %s", message.message_type, message.url, delay,
                     attempts, detail[:200])
            self._kick_later(message.process_id, delay)
            return None


def _plain(hook: _Hook) -> _Hook:
    """``hook`` itself; a coroutine function is refused, since hooks run in worker threads, not on the loop."""
    if inspect.iscoroutinefunction(hook):
        raise ConnectorError("outbox hooks run in a worker thread inside the delivery's transaction: pass a plain "
                             "function, not a coroutine function", code="outbox_hook_not_plain")
    return hook
