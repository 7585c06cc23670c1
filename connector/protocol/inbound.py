"""The one path every inbound DSP process message takes: authenticate, read, handle once under the process
lock, answer, and start the follow-up step.

WHY one path: negotiation and transfer messages take exactly the same steps; only the error body's type,
the process table, the lock of a message that names no process yet and the follow-up step differ, and those
are what :class:`ProcessBinding` holds.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fastapi import Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from sqlalchemy.orm import Session

from connector.protocol.edge import DSP_ERRORS, authenticate, dsp_error, error_pids, read_message
from connector.protocol.processing import Answer, handle_once, message_digest
from connector.trust import Party

if TYPE_CHECKING:
    from connector.context import ConnectorContext

Handler = Callable[[Session, Party, dict[str, Any]], Answer]
Advance = Callable[["ConnectorContext", str], Coroutine[Any, Any, None]]


def spawn(ctx: ConnectorContext, coro: Coroutine[Any, Any, None]) -> None:
    """Start a follow-up task (kept referenced until done)."""
    tasks: set[asyncio.Task[None]] = ctx.extras.setdefault("tasks", set())
    task = asyncio.get_running_loop().create_task(coro)
    tasks.add(task)
    task.add_done_callback(tasks.discard)


@dataclass(frozen=True)
class ProcessBinding:
    """What the negotiation and the transfer bindings do differently on the shared path."""

    error_type: str  # ContractNegotiationError / TransferError
    row_type: type[Any]  # the process table: a row with ``state`` and ``role``
    advance: Advance  # the follow-up step after a new message changed a process
    lock_field: str | None = None  # the message field that serialises messages naming no process yet

    def state_of(self, session: Session, process_id: str) -> str | None:
        row = session.get(self.row_type, process_id)
        return row.state if row is not None else None

    def role_of(self, ctx: ConnectorContext, pid: str) -> str:
        """Our side of process ``pid`` (``provider`` when unknown: the provider paths are the public ones)."""
        with ctx.sessions() as session:
            row = session.get(self.row_type, pid)
        return row.role if row is not None else "provider"

    async def receive(self, request: Request, ctx: ConnectorContext, expected: tuple[str, ...],
                      lock_key: str | None, handler: Handler, path_pid: str = "providerPid") -> Response:
        """Handle one inbound message of one of the ``expected`` types; a repeat gets the first answer."""
        message: dict[str, Any] = {}
        try:
            party = await authenticate(request, ctx)
            message = await read_message(request, ctx, *expected)
            digest = message_digest(party.did, request.url.path, message)
            lock = lock_key or (message.get(self.lock_field) if self.lock_field else None) or digest

            def work() -> tuple[Answer, bool]:
                with ctx.extras["locks"](lock):
                    return handle_once(ctx.sessions, digest, lambda session: handler(session, party, message),
                                       self.state_of)

            answer, new = await run_in_threadpool(work)
        except DSP_ERRORS as exc:
            provider_pid, consumer_pid = error_pids(message, lock_key, path_pid)
            return dsp_error(self.error_type, exc, provider_pid=provider_pid, consumer_pid=consumer_pid)
        if new:
            ctx.outbox.wake()
            if answer.process_id:
                spawn(ctx, self.advance(ctx, answer.process_id))
        if answer.body is None:
            return Response(status_code=answer.status)
        return JSONResponse(answer.body, status_code=answer.status)

    async def process_error(self, ctx: ConnectorContext, pid: str, exc: Exception) -> Response:
        """The error body for a request about process ``pid``, its pid under our side's name."""
        role = await run_in_threadpool(self.role_of, ctx, pid)
        return dsp_error(self.error_type, exc, provider_pid=pid if role == "provider" else "",
                         consumer_pid=pid if role == "consumer" else "")
