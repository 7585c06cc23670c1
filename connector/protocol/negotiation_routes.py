"""DSP contract negotiation binding, provider and consumer paths (the consumer's callback is our root).

Provider and consumer paths share shapes (``/negotiations/{pid}/events``, ``/termination``, ``GET``), so the
process's own role, found by its pid, decides which side of the state machine handles a message.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import Request
from fastapi.responses import JSONResponse, Response

from connector import negotiation as neg
from connector.logs import CORRELATION_HEADER
from connector.protocol.direct import DspRoute
from connector.protocol.edge import DSP_ERRORS, authenticate
from connector.protocol.inbound import Handler, ProcessBinding
from connector.storage.tables_protocol import NegotiationRow
from connector.threads import in_thread

if TYPE_CHECKING:
    from connector.context import ConnectorContext

BINDING = ProcessBinding(error_type="ContractNegotiationError", row_type=NegotiationRow,
                         step_in=neg.step_after_message)
TAG = "dsp-negotiation"


def negotiation_routes(ctx: ConnectorContext) -> list[DspRoute]:
    async def handle(request: Request, expected: str, lock_key: str | None, handler: Handler,
                     path_pid: str = "providerPid") -> Response:
        return await BINDING.receive(request, ctx, (expected,), lock_key, handler, path_pid)

    # ---- provider paths ---------------------------------------------------------------------------------
    async def initial_request(request: Request) -> Response:
        cid = request.headers.get(CORRELATION_HEADER)
        return await handle(request, "ContractRequestMessage", None,
                            lambda s, p, m: neg.provider_receive_request(ctx, s, p, m, None, cid))

    async def counter_request(pid: str, request: Request) -> Response:
        cid = request.headers.get(CORRELATION_HEADER)
        return await handle(request, "ContractRequestMessage", pid,
                            lambda s, p, m: neg.provider_receive_request(ctx, s, p, m, pid, cid))

    async def verification(pid: str, request: Request) -> Response:
        return await handle(request, "ContractAgreementVerificationMessage", pid,
                            lambda s, p, m: neg.provider_receive_verification(ctx, s, p, m, pid))

    # ---- consumer paths ---------------------------------------------------------------------------------
    async def initial_offer(request: Request) -> Response:
        cid = request.headers.get(CORRELATION_HEADER)
        return await handle(request, "ContractOfferMessage", None,
                            lambda s, p, m: neg.consumer_receive_offer(ctx, s, p, m, None, cid))

    async def counter_offer(pid: str, request: Request) -> Response:
        cid = request.headers.get(CORRELATION_HEADER)
        return await handle(request, "ContractOfferMessage", pid,
                            lambda s, p, m: neg.consumer_receive_offer(ctx, s, p, m, pid, cid), "consumerPid")

    async def agreement(pid: str, request: Request) -> Response:
        return await handle(request, "ContractAgreementMessage", pid,
                            lambda s, p, m: neg.consumer_receive_agreement(ctx, s, p, m, pid), "consumerPid")

    # ---- shared shapes: our role in the process, read in the message's own transaction, picks the side -----
    async def events(pid: str, request: Request) -> Response:
        def for_role(role: str) -> Handler:
            receive = neg.provider_receive_event if role == "provider" else neg.consumer_receive_event
            return lambda s, p, m: receive(ctx, s, p, m, pid)
        return await BINDING.receive_for_role(request, ctx, ("ContractNegotiationEventMessage",), pid, for_role)

    async def termination(pid: str, request: Request) -> Response:
        def for_role(role: str) -> Handler:
            return lambda s, p, m: neg.receive_termination(ctx, s, p, m, pid, role)  # type: ignore[arg-type]
        return await BINDING.receive_for_role(request, ctx, ("ContractNegotiationTerminationMessage",), pid,
                                              for_role)

    async def get_negotiation(pid: str, request: Request) -> Response:
        try:
            party = await authenticate(request, ctx)

            def read() -> dict[str, Any]:
                with ctx.sessions() as session:
                    role = BINDING.role_in(session, pid)
                    return neg.negotiation_body(neg.load(session, pid, role=role, party=party,  # type: ignore[arg-type]
                                                         for_update=False))
            body = await in_thread(read)
        except DSP_ERRORS as exc:
            return await BINDING.process_error(ctx, pid, exc)
        return JSONResponse(body)

    posts = (("/negotiations/request", initial_request), ("/negotiations/{pid}/request", counter_request),
             ("/negotiations/{pid}/agreement/verification", verification),
             ("/negotiations/offers", initial_offer), ("/negotiations/{pid}/offers", counter_offer),
             ("/negotiations/{pid}/agreement", agreement), ("/negotiations/{pid}/events", events),
             ("/negotiations/{pid}/termination", termination))
    return [*(DspRoute("POST", path, endpoint, endpoint.__name__, TAG) for path, endpoint in posts),
            DspRoute("GET", "/negotiations/{pid}", get_negotiation, "get_negotiation", TAG)]
