"""DSP contract negotiation binding, provider and consumer paths (the consumer's callback is our root).

Provider and consumer paths share shapes (``/negotiations/{pid}/events``, ``/termination``, ``GET``), so the
process's own role, found by its pid, decides which side of the state machine handles a message.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response

from connector import negotiation as neg
from connector.logs import CORRELATION_HEADER
from connector.protocol.edge import DSP_ERRORS, authenticate
from connector.protocol.inbound import Handler, ProcessBinding
from connector.storage.tables_protocol import NegotiationRow

if TYPE_CHECKING:
    from connector.context import ConnectorContext

BINDING = ProcessBinding(error_type="ContractNegotiationError", row_type=NegotiationRow, advance=neg.advance)


def create_negotiation_router(ctx: ConnectorContext) -> APIRouter:
    router = APIRouter(tags=["dsp-negotiation"])

    async def handle(request: Request, expected: str, lock_key: str | None, handler: Handler,
                     path_pid: str = "providerPid") -> Response:
        return await BINDING.receive(request, ctx, (expected,), lock_key, handler, path_pid)

    # ---- provider paths ---------------------------------------------------------------------------------
    @router.post("/negotiations/request", response_model=None)
    async def initial_request(request: Request) -> Response:
        cid = request.headers.get(CORRELATION_HEADER)
        return await handle(request, "ContractRequestMessage", None,
                            lambda s, p, m: neg.provider_receive_request(ctx, s, p, m, None, cid))

    @router.post("/negotiations/{pid}/request", response_model=None)
    async def counter_request(pid: str, request: Request) -> Response:
        cid = request.headers.get(CORRELATION_HEADER)
        return await handle(request, "ContractRequestMessage", pid,
                            lambda s, p, m: neg.provider_receive_request(ctx, s, p, m, pid, cid))

    @router.post("/negotiations/{pid}/agreement/verification", response_model=None)
    async def verification(pid: str, request: Request) -> Response:
        return await handle(request, "ContractAgreementVerificationMessage", pid,
                            lambda s, p, m: neg.provider_receive_verification(ctx, s, p, m, pid))

    # ---- consumer paths ---------------------------------------------------------------------------------
    @router.post("/negotiations/offers", response_model=None)
    async def initial_offer(request: Request) -> Response:
        cid = request.headers.get(CORRELATION_HEADER)
        return await handle(request, "ContractOfferMessage", None,
                            lambda s, p, m: neg.consumer_receive_offer(ctx, s, p, m, None, cid))

    @router.post("/negotiations/{pid}/offers", response_model=None)
    async def counter_offer(pid: str, request: Request) -> Response:
        cid = request.headers.get(CORRELATION_HEADER)
        return await handle(request, "ContractOfferMessage", pid,
                            lambda s, p, m: neg.consumer_receive_offer(ctx, s, p, m, pid, cid), "consumerPid")

    @router.post("/negotiations/{pid}/agreement", response_model=None)
    async def agreement(pid: str, request: Request) -> Response:
        return await handle(request, "ContractAgreementMessage", pid,
                            lambda s, p, m: neg.consumer_receive_agreement(ctx, s, p, m, pid), "consumerPid")

    # ---- shared shapes ----------------------------------------------------------------------------------
    @router.post("/negotiations/{pid}/events", response_model=None)
    async def events(pid: str, request: Request) -> Response:
        role = await run_in_threadpool(BINDING.role_of, ctx, pid)
        receive = neg.provider_receive_event if role == "provider" else neg.consumer_receive_event
        return await handle(request, "ContractNegotiationEventMessage", pid,
                            lambda s, p, m: receive(ctx, s, p, m, pid), f"{role}Pid")

    @router.post("/negotiations/{pid}/termination", response_model=None)
    async def termination(pid: str, request: Request) -> Response:
        role = await run_in_threadpool(BINDING.role_of, ctx, pid)
        return await handle(request, "ContractNegotiationTerminationMessage", pid,
                            lambda s, p, m: neg.receive_termination(ctx, s, p, m, pid, role),  # type: ignore[arg-type]
                            f"{role}Pid")

    @router.get("/negotiations/{pid}", response_model=None)
    async def get_negotiation(pid: str, request: Request) -> Response:
        try:
            party = await authenticate(request, ctx)
            role = await run_in_threadpool(BINDING.role_of, ctx, pid)

            def read() -> dict[str, Any]:
                with ctx.sessions() as session:
                    return neg.negotiation_body(neg.load(session, pid, role=role, party=party,  # type: ignore[arg-type]
                                                         for_update=False))
            body = await run_in_threadpool(read)
        except DSP_ERRORS as exc:
            return await BINDING.process_error(ctx, pid, exc)
        return JSONResponse(body)

    return router
