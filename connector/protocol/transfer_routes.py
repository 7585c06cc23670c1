"""DSP transfer process binding: provider paths and the consumer's callback paths (our root).

Both sides share ``/transfers/{pid}/start|completion|suspension|termination`` and ``GET /transfers/{pid}``;
the process found by its pid says which side handles the message.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from sqlalchemy.orm import Session

from connector import transfer as tp
from connector.logs import CORRELATION_HEADER
from connector.protocol.edge import DSP_ERRORS, authenticate, dsp_error, error_pids, read_message
from connector.protocol.negotiation_routes import spawn
from connector.protocol.processing import Answer, handle_once, message_digest
from connector.storage.tables_protocol import TransferRow
from connector.trust import Party

if TYPE_CHECKING:
    from connector.context import ConnectorContext

Handler = Callable[[Session, Party, dict[str, Any]], Answer]
ERROR_TYPE = "TransferError"
EVENTS = {"start": ("TransferStartMessage", "start"), "completion": ("TransferCompletionMessage", "complete"),
          "suspension": ("TransferSuspensionMessage", "suspend"),
          "termination": ("TransferTerminationMessage", "terminate")}


def create_transfer_router(ctx: ConnectorContext) -> APIRouter:
    def state_of(session: Session, process_id: str) -> str | None:
        row = session.get(TransferRow, process_id)
        return row.state if row is not None else None

    def role_of(pid: str) -> str:
        with ctx.sessions() as session:
            row = session.get(TransferRow, pid)
        return row.role if row is not None else "provider"

    router = APIRouter(tags=["dsp-transfer"])
    locks = ctx.extras["locks"]

    async def handle(request: Request, expected: str, lock_key: str | None, handler: Handler,
                     path_pid: str = "providerPid") -> Response:
        message: dict[str, Any] = {}
        try:
            party = await authenticate(request, ctx)
            message = await read_message(request, ctx, expected)
            digest = message_digest(party.did, request.url.path, message)

            def work() -> tuple[Answer, bool]:
                with locks(lock_key or message.get("consumerPid") or digest):
                    return handle_once(ctx.sessions, digest, lambda session: handler(session, party, message),
                                       state_of)

            answer, new = await run_in_threadpool(work)
        except DSP_ERRORS as exc:
            provider_pid, consumer_pid = error_pids(message, lock_key, path_pid)
            return dsp_error(ERROR_TYPE, exc, provider_pid=provider_pid, consumer_pid=consumer_pid)
        if new:
            ctx.outbox.wake()
            if answer.process_id:
                spawn(ctx, tp.advance(ctx, answer.process_id))
        if answer.body is None:
            return Response(status_code=answer.status)
        return JSONResponse(answer.body, status_code=answer.status)

    @router.post("/transfers/request", response_model=None)
    async def transfer_request(request: Request) -> Response:
        cid = request.headers.get(CORRELATION_HEADER)
        return await handle(request, "TransferRequestMessage", None,
                            lambda s, p, m: tp.provider_receive_request(ctx, s, p, m, cid))

    def bind(path: str, message_type: str, event: str) -> None:
        @router.post(f"/transfers/{{pid}}/{path}", response_model=None, name=f"transfer_{path}")
        async def receive(pid: str, request: Request) -> Response:
            role = await run_in_threadpool(role_of, pid)
            return await handle(request, message_type, pid,
                                lambda s, p, m: tp.receive_message(ctx, s, p, m, pid, event), f"{role}Pid")

    for path, (message_type, event) in EVENTS.items():
        bind(path, message_type, event)

    @router.get("/transfers/{pid}", response_model=None)
    async def get_transfer(pid: str, request: Request) -> Response:
        try:
            party = await authenticate(request, ctx)

            def read() -> dict[str, Any]:
                with ctx.sessions() as session:
                    return tp.process_body(tp.load(session, pid, party=party, for_update=False))
            body = await run_in_threadpool(read)
        except DSP_ERRORS as exc:
            role = await run_in_threadpool(role_of, pid)
            return dsp_error(ERROR_TYPE, exc, provider_pid=pid if role == "provider" else "",
                             consumer_pid=pid if role == "consumer" else "")
        return JSONResponse(body)

    return router
