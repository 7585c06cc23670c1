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
from functools import cached_property
from typing import TYPE_CHECKING, Any

from fastapi import Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy import Select, bindparam, select
from sqlalchemy.orm import Session
from starlette.types import Scope

from connector.protocol.edge import DSP_ERRORS, authenticate, dsp_error, error_pids, read_message
from connector.protocol.processing import Answer, handle_once, message_digest
from connector.threads import in_thread
from connector.trust import Party

if TYPE_CHECKING:
    from connector.context import ConnectorContext

Handler = Callable[[Session, Party, dict[str, Any]], Answer]
Advance = Callable[["ConnectorContext", str], Coroutine[Any, Any, None]]
StepIn = Callable[["ConnectorContext", Session, str], None]


def digest_path(scope: Scope) -> str:
    """The request path as the inbound log's digests name it: Starlette's ``request.url.path``, written out
    (building the URL object cost more than the rest of the digest's inputs)."""
    return str(scope["path"]).replace("?", "%3F").replace("#", "%23").replace("\\", "%5C")


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
    # the follow-up step after a new message changed a process: taken in the message's own transaction
    # (``step_in``), or started as a task after the answer (``advance``)
    advance: Advance | None = None
    step_in: StepIn | None = None
    lock_field: str | None = None  # the message field that serialises messages naming no process yet

    def state_of(self, session: Session, process_id: str) -> str | None:
        row = session.get(self.row_type, process_id)
        return row.state if row is not None else None

    def role_in(self, session: Session, pid: str) -> str:
        """Our side of process ``pid`` (``provider`` when unknown: the provider paths are the public ones).

        A Core statement on the session's connection: it neither loads the row into the session (whose
        handler then reads it FOR UPDATE itself) nor opens a session of its own."""
        role = session.connection().execute(self._role_query, {"pid": pid}).scalar()
        return str(role) if role is not None else "provider"

    @cached_property
    def _role_query(self) -> Select[Any]:
        table = self.row_type.__table__
        return select(table.c.role).where(table.c.id == bindparam("pid"))

    def role_of(self, ctx: ConnectorContext, pid: str) -> str:
        """:meth:`role_in` in a session of its own."""
        with ctx.sessions() as session:
            return self.role_in(session, pid)

    async def receive(self, request: Request, ctx: ConnectorContext, expected: tuple[str, ...],
                      lock_key: str | None, handler: Handler, path_pid: str | None = "providerPid") -> Response:
        """Handle one inbound message of one of the ``expected`` types; a repeat gets the first answer.

        ``path_pid`` names the side of the pid in the path (``lock_key``) for an error body; None: the side
        of our role in that process, looked up only when there is an error to answer.
        """
        message: dict[str, Any] = {}
        try:
            party = await authenticate(request, ctx)
            message = await read_message(request, ctx, *expected)
            digest = message_digest(party.did, digest_path(request.scope), message)
            lock = lock_key or (message.get(self.lock_field) if self.lock_field else None) or digest

            def handled(session: Session) -> Answer:
                answer = handler(session, party, message)
                if self.step_in is not None and answer.process_id:
                    self.step_in(ctx, session, answer.process_id)
                return answer

            def work() -> tuple[Answer, bool]:
                with ctx.extras["locks"](lock):
                    return handle_once(ctx.sessions, digest, handled, self.state_of)

            answer, new = await in_thread(work)
        except DSP_ERRORS as exc:
            if path_pid is None and lock_key:
                path_pid = f"{await in_thread(self.role_of, ctx, lock_key)}Pid"
            provider_pid, consumer_pid = error_pids(message, lock_key, path_pid)
            return dsp_error(self.error_type, exc, provider_pid=provider_pid, consumer_pid=consumer_pid)
        if new and answer.process_id and self.advance is not None:
            spawn(ctx, self.advance(ctx, answer.process_id))
        if answer.body is None:
            return Response(status_code=answer.status)
        return JSONResponse(answer.body, status_code=answer.status)

    async def receive_for_role(self, request: Request, ctx: ConnectorContext, expected: tuple[str, ...], pid: str,
                               handler_for: Callable[[str], Handler]) -> Response:
        """:meth:`receive` for a message about our process ``pid`` whose handler depends on our side of it.

        The role is read in the message's own transaction, under the process lock (a process never changes
        sides), instead of in a session and a thread hop of its own before it."""
        def handler(session: Session, party: Party, message: dict[str, Any]) -> Answer:
            return handler_for(self.role_in(session, pid))(session, party, message)

        return await self.receive(request, ctx, expected, pid, handler, None)

    async def process_error(self, ctx: ConnectorContext, pid: str, exc: Exception) -> Response:
        """The error body for a request about process ``pid``, its pid under our side's name."""
        role = await in_thread(self.role_of, ctx, pid)
        return dsp_error(self.error_type, exc, provider_pid=pid if role == "provider" else "",
                         consumer_pid=pid if role == "consumer" else "")
