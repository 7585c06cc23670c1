"""``/v3/transferprocesses``: start (as consumer), read, query and drive transfer processes (EDC v3 shapes).

Operator steps ``start``, ``complete``, ``suspend``, ``resume`` and ``terminate`` drive a process; a step not
possible in the current state answers 409 with the steps that are.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from sqlalchemy import select

from connector import transfer as tp
from connector.errors import ConnectorError
from connector.jsonld import EDC_CONTEXT
from connector.management.common import read_json_body, read_query_spec, require_api_key
from connector.management.negotiations import PROTOCOL, PROTOCOLS, RequestInvalid, field
from connector.querying import QuerySpec, apply_query
from connector.storage.tables_protocol import TransferRow

if TYPE_CHECKING:
    from connector.context import ConnectorContext

_C = TransferRow.__table__.c  # plain columns, as the QuerySpec translation expects
BASE = "/v3/transferprocesses"

TRANSFER_COLUMNS = {
    "id": _C.id, "state": _C.state, "type": _C.role, "contractId": _C.agreement_id,
    "counterPartyId": _C.counterparty_did, "counterPartyAddress": _C.counterparty_address,
    "transferType": _C.transfer_type, "consumerPid": _C.consumer_pid, "providerPid": _C.provider_pid,
    "createdAt": _C.created_at, "correlationId": _C.correlation_id,
}


def transfer_json(row: TransferRow) -> dict[str, Any]:
    """EDC's TransferProcess shape plus both pids and the pending step."""
    out: dict[str, Any] = {
        "@context": dict(EDC_CONTEXT), "@type": "TransferProcess", "@id": row.id, "type": row.role.upper(),
        "protocol": PROTOCOL, "state": row.state, "contractId": row.agreement_id, "transferType": row.transfer_type,
        "counterPartyId": row.counterparty_did, "counterPartyAddress": row.counterparty_address,
        "consumerPid": row.consumer_pid, "providerPid": row.provider_pid, "approval": row.approval,
        "pendingStep": row.pending, "correlationId": row.correlation_id,
        "createdAt": int(row.created_at.timestamp() * 1000),
        "stateTimestamp": int(row.updated_at.timestamp() * 1000),
    }
    if row.request:
        destination = json.loads(row.request)
        if destination:
            out["dataDestination"] = destination
    if row.error_reason:
        out["errorDetail"] = row.error_reason
        out["errorCode"] = row.error_code
    return {k: v for k, v in out.items() if v is not None}


def query_transfers(ctx: ConnectorContext, spec: QuerySpec) -> list[TransferRow]:
    filters = tuple(type(c)(c.left, c.operator, c.right.lower() if c.left in ("type", "edc:type")
                            and isinstance(c.right, str) else c.right) for c in spec.filters)
    spec = QuerySpec(filters, spec.sort_field, spec.sort_order, spec.offset, spec.limit, spec.extra)
    with ctx.sessions() as session:
        return list(session.scalars(apply_query(select(TransferRow), spec, TRANSFER_COLUMNS, default_sort=_C.id)))


def create_router(ctx: ConnectorContext) -> APIRouter:
    router = APIRouter(tags=["transfer processes"], dependencies=[Depends(require_api_key(ctx.settings))])

    @router.post(BASE, summary="Start a transfer as consumer (EDC TransferRequest)")
    async def create(request: Request) -> JSONResponse:
        body = await read_json_body(request, ctx.settings)
        if not isinstance(body, dict):
            raise RequestInvalid("the body must be a TransferRequest object")
        protocol = field(body, "protocol") or PROTOCOL
        if protocol not in PROTOCOLS:
            raise RequestInvalid(f"protocol {protocol!r} is not supported; use {PROTOCOL}", code="protocol_unsupported")
        contract_id = field(body, "contractId")
        if not isinstance(contract_id, str) or not contract_id:
            raise RequestInvalid("a TransferRequest needs 'contractId' (the agreement id)", code="contract_missing")
        transfer_type = field(body, "transferType")
        if not isinstance(transfer_type, str):
            raise RequestInvalid("a TransferRequest needs 'transferType' (HttpData-PULL or HttpData-PUSH)",
                                 code="transfer_type_missing")
        destination = field(body, "dataDestination")
        if destination is not None and not isinstance(destination, dict):
            raise RequestInvalid("dataDestination must be an object", code="destination_invalid")
        approval = field(body, "approval")
        if approval not in (None, "auto", "manual"):
            raise RequestInvalid("approval must be 'auto' or 'manual'", code="approval_invalid")
        address = field(body, "counterPartyAddress")
        purpose = field(body, "purpose")
        if purpose is not None and not isinstance(purpose, str):
            raise RequestInvalid("purpose must be a string, e.g. \"quality-analysis\"", code="purpose_invalid")
        row = await run_in_threadpool(lambda: tp.start_transfer(
            ctx, agreement_id=contract_id, counterparty_address=address if isinstance(address, str) else None,
            transfer_type=transfer_type, data_destination=destination, approval=approval,
            correlation_id=request.headers.get("X-Correlation-Id"), purpose=purpose))
        return JSONResponse({"@context": dict(EDC_CONTEXT), "@type": "IdResponse", "@id": row.id,
                             "createdAt": int(row.created_at.timestamp() * 1000)})

    @router.post(BASE + "/request", summary="Query transfer processes with a QuerySpec")
    async def query(request: Request) -> JSONResponse:
        spec = await read_query_spec(request, ctx.settings)
        rows = await run_in_threadpool(query_transfers, ctx, spec)
        return JSONResponse([transfer_json(r) for r in rows])

    @router.get(BASE + "/{transfer_id}", summary="Get a transfer process")
    async def get(transfer_id: str) -> JSONResponse:
        return JSONResponse(transfer_json(await run_in_threadpool(tp.get_transfer, ctx, transfer_id)))

    @router.get(BASE + "/{transfer_id}/state", summary="Get a transfer process's state")
    async def state(transfer_id: str) -> JSONResponse:
        row = await run_in_threadpool(tp.get_transfer, ctx, transfer_id)
        return JSONResponse({"@context": dict(EDC_CONTEXT), "@type": "TransferState", "state": row.state})

    @router.post(BASE + "/{transfer_id}/{step}", summary="Take an operator step")
    async def step(transfer_id: str, step: str, request: Request) -> Response:
        if step not in tp.STEPS:
            raise ConnectorError(f"unknown step {step!r}; steps are {', '.join(tp.STEPS)}", code="step_unknown",
                                 status=404)
        body = await read_json_body(request, ctx.settings, required=False) or {}
        if not isinstance(body, dict):
            raise RequestInvalid("the body must be a JSON object")
        args = {k: str(v) for k in ("reason", "code") if (v := field(body, k)) is not None}
        try:
            row = await tp.run_step(ctx, transfer_id, step, body=args, operator=True)
        except tp.StepNotAllowed as exc:
            return JSONResponse({"type": "urn:pactum:error:step_not_allowed", "title": "step not allowed",
                                 "status": 409, "code": exc.code, "detail": str(exc), "allowed": list(exc.allowed)},
                                status_code=409, media_type="application/problem+json")
        if step in ("terminate", "suspend", "resume") and not field(body, "returnProcess"):
            return Response(status_code=204)
        return JSONResponse(transfer_json(row))

    return router
