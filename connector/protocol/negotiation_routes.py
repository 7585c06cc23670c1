"""DSP contract negotiation binding, provider and consumer paths (the consumer's callback is our root).

Provider and consumer paths share shapes (``/negotiations/{pid}/events``, ``/termination``, ``GET``), so the
process's own role, found by its pid, decides which side of the state machine handles a message.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from sqlalchemy.orm import Session

from connector import negotiation as neg
from connector.protocol.edge import DSP_ERRORS, authenticate, dsp_error, error_pids, read_message
from connector.protocol.processing import Answer, handle_once, message_digest
from connector.storage.tables_protocol import NegotiationRow
from connector.trust import Party

if TYPE_CHECKING:
    from connector.context import ConnectorContext

Handler = Callable[[Session, Party, dict[str, Any]], Answer]
ERROR_TYPE = "ContractNegotiationError"


def spawn(ctx: ConnectorContext, coro: Coroutine[Any, Any, None]) -> None:
    """Start a follow-up task (kept referenced until done)."""
    tasks: set[asyncio.Task[None]] = ctx.extras.setdefault("tasks", set())
    task = asyncio.get_running_loop().create_task(coro)
    tasks.add(task)
    task.add_done_callback(tasks.discard)


def role_of(ctx: ConnectorContext, pid: str) -> str:
    with ctx.sessions() as session:
        row = session.get(NegotiationRow, pid)
    return row.role if row is not None else "provider"


def create_negotiation_router(ctx: ConnectorContext) -> APIRouter:
    def state_of(session: Session, process_id: str) -> str | None:
        row = session.get(NegotiationRow, process_id)
        return row.state if row is not None else None

    router = APIRouter(tags=["dsp-negotiation"])
    locks = ctx.extras["locks"]

    async def handle(request: Request, expected: tuple[str, ...], lock_key: str | None,
                     make: Callable[[Party, dict[str, Any]], Handler], path_pid: str = "providerPid") -> Response:
        message: dict[str, Any] = {}
        try:
            party = await authenticate(request, ctx)
            message = await read_message(request, ctx, *expected)
            digest = message_digest(party.did, request.url.path, message)
            handler = make(party, message)

            def work() -> tuple[Answer, bool]:
                with locks(lock_key or digest):
                    return handle_once(ctx.sessions, digest, lambda session: handler(session, party, message),
                                       state_of)

            answer, new = await run_in_threadpool(work)
        except DSP_ERRORS as exc:
            provider_pid, consumer_pid = error_pids(message, lock_key, path_pid)
            return dsp_error(ERROR_TYPE, exc, provider_pid=provider_pid, consumer_pid=consumer_pid)
        if new:
            ctx.outbox.wake()
            if answer.process_id:
                spawn(ctx, neg.advance(ctx, answer.process_id))
        if answer.body is None:
            return Response(status_code=answer.status)
        return JSONResponse(answer.body, status_code=answer.status)

    correlation = "X-Correlation-Id"

    # ---- provider paths ---------------------------------------------------------------------------------
    @router.post("/negotiations/request", response_model=None)
    async def initial_request(request: Request) -> Response:
        cid = request.headers.get(correlation)
        return await handle(request, ("ContractRequestMessage",), None, lambda party, message: (
            lambda s, p, m: neg.provider_receive_request(ctx, s, p, m, None, cid)))

    @router.post("/negotiations/{pid}/request", response_model=None)
    async def counter_request(pid: str, request: Request) -> Response:
        cid = request.headers.get(correlation)
        return await handle(request, ("ContractRequestMessage",), pid, lambda party, message: (
            lambda s, p, m: neg.provider_receive_request(ctx, s, p, m, pid, cid)))

    @router.post("/negotiations/{pid}/agreement/verification", response_model=None)
    async def verification(pid: str, request: Request) -> Response:
        return await handle(request, ("ContractAgreementVerificationMessage",), pid, lambda party, message: (
            lambda s, p, m: neg.provider_receive_verification(ctx, s, p, m, pid)))

    # ---- consumer paths ---------------------------------------------------------------------------------
    @router.post("/negotiations/offers", response_model=None)
    async def initial_offer(request: Request) -> Response:
        cid = request.headers.get(correlation)
        return await handle(request, ("ContractOfferMessage",), None, lambda party, message: (
            lambda s, p, m: neg.consumer_receive_offer(ctx, s, p, m, None, cid)))

    @router.post("/negotiations/{pid}/offers", response_model=None)
    async def counter_offer(pid: str, request: Request) -> Response:
        cid = request.headers.get(correlation)
        return await handle(request, ("ContractOfferMessage",), pid, lambda party, message: (
            lambda s, p, m: neg.consumer_receive_offer(ctx, s, p, m, pid, cid)), "consumerPid")

    @router.post("/negotiations/{pid}/agreement", response_model=None)
    async def agreement(pid: str, request: Request) -> Response:
        return await handle(request, ("ContractAgreementMessage",), pid, lambda party, message: (
            lambda s, p, m: neg.consumer_receive_agreement(ctx, s, p, m, pid)), "consumerPid")

    # ---- shared shapes ----------------------------------------------------------------------------------
    @router.post("/negotiations/{pid}/events", response_model=None)
    async def events(pid: str, request: Request) -> Response:
        role = await run_in_threadpool(role_of, ctx, pid)
        receive = neg.provider_receive_event if role == "provider" else neg.consumer_receive_event
        return await handle(request, ("ContractNegotiationEventMessage",), pid, lambda party, message: (
            lambda s, p, m: receive(ctx, s, p, m, pid)), f"{role}Pid")

    @router.post("/negotiations/{pid}/termination", response_model=None)
    async def termination(pid: str, request: Request) -> Response:
        role = await run_in_threadpool(role_of, ctx, pid)
        return await handle(request, ("ContractNegotiationTerminationMessage",), pid, lambda party, message: (
            lambda s, p, m: neg.receive_termination(ctx, s, p, m, pid, role)),  # type: ignore[arg-type]
            f"{role}Pid")

    @router.get("/negotiations/{pid}", response_model=None)
    async def get_negotiation(pid: str, request: Request) -> Response:
        try:
            party = await authenticate(request, ctx)
            role = await run_in_threadpool(role_of, ctx, pid)

            def read() -> dict[str, Any]:
                with ctx.sessions() as session:
                    return neg.negotiation_body(neg.load(session, pid, role=role, party=party,  # type: ignore[arg-type]
                                                         for_update=False))
            body = await run_in_threadpool(read)
        except DSP_ERRORS as exc:
            role = await run_in_threadpool(role_of, ctx, pid)
            return dsp_error(ERROR_TYPE, exc, provider_pid=pid if role == "provider" else "",
                             consumer_pid=pid if role == "consumer" else "")
        return JSONResponse(body)

    return router
