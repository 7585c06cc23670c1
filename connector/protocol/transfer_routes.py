"""DSP transfer process binding: provider paths and the consumer's callback paths (our root).

Both sides share ``/transfers/{pid}/start|completion|suspension|termination`` and ``GET /transfers/{pid}``;
the process found by its pid says which side handles the message.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response

from connector import transfer as tp
from connector.logs import CORRELATION_HEADER
from connector.protocol.edge import DSP_ERRORS, authenticate
from connector.protocol.inbound import Handler, ProcessBinding
from connector.storage.tables_protocol import TransferRow

if TYPE_CHECKING:
    from connector.context import ConnectorContext

# a TransferRequestMessage names no process of ours yet: repeats of one consumerPid queue on it
BINDING = ProcessBinding(error_type="TransferError", row_type=TransferRow, advance=tp.advance,
                         lock_field="consumerPid")
EVENTS = {"start": ("TransferStartMessage", "start"), "completion": ("TransferCompletionMessage", "complete"),
          "suspension": ("TransferSuspensionMessage", "suspend"),
          "termination": ("TransferTerminationMessage", "terminate")}


def create_transfer_router(ctx: ConnectorContext) -> APIRouter:
    router = APIRouter(tags=["dsp-transfer"])

    async def handle(request: Request, expected: str, lock_key: str | None, handler: Handler,
                     path_pid: str = "providerPid") -> Response:
        return await BINDING.receive(request, ctx, (expected,), lock_key, handler, path_pid)

    @router.post("/transfers/request", response_model=None)
    async def transfer_request(request: Request) -> Response:
        cid = request.headers.get(CORRELATION_HEADER)
        return await handle(request, "TransferRequestMessage", None,
                            lambda s, p, m: tp.provider_receive_request(ctx, s, p, m, cid))

    def bind(path: str, message_type: str, event: str) -> None:
        @router.post(f"/transfers/{{pid}}/{path}", response_model=None, name=f"transfer_{path}")
        async def receive(pid: str, request: Request) -> Response:
            role = await run_in_threadpool(BINDING.role_of, ctx, pid)
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
            return await BINDING.process_error(ctx, pid, exc)
        return JSONResponse(body)

    return router
