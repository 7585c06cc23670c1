"""``/v3/transferprocesses``: start (as consumer), read, query and drive transfer processes (EDC v3 shapes).

Operator steps ``start``, ``complete``, ``suspend``, ``resume`` and ``terminate`` drive a process; a step not
possible in the current state answers 409 with the steps that are.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import partial
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy import Row, bindparam, select

from connector import transfer as tp
from connector.errors import ConnectorError, NotFoundError
from connector.jsonld import EDC_CONTEXT
from connector.management.common import DirectRoute, read_json_body, read_query_spec, require_api_key
from connector.management.negotiations import PROTOCOL, PROTOCOLS, RequestInvalid, field, with_lowercase_type
from connector.querying import PreparedQueries, QuerySpec
from connector.storage.tables_protocol import TransferRow
from connector.threads import in_thread

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


# The columns transfer_json reads, in the order of VIEW_COLUMNS' rows (a query selects only these).
VIEW_COLUMNS = ("id", "role", "state", "agreement_id", "transfer_type", "counterparty_did", "counterparty_address",
                "consumer_pid", "provider_pid", "approval", "pending", "correlation_id", "created_at", "updated_at",
                "request", "error_reason", "error_code")


def transfer_json(row: TransferRow | Row[Any]) -> dict[str, Any]:
    """EDC's TransferProcess shape plus both pids and the pending step.

    ``row``: the stored process, or a row of :data:`VIEW_COLUMNS` (read by position, see negotiation_json).
    """
    values: Sequence[Any] = row if isinstance(row, Row) and row._fields == VIEW_COLUMNS else [
        getattr(row, c) for c in VIEW_COLUMNS]
    (pid, role, state, agreement_id, transfer_type, counterparty_did, counterparty_address, consumer_pid,
     provider_pid, approval, pending, correlation_id, created_at, updated_at, request, error_reason,
     error_code) = values
    out: dict[str, Any] = {
        "@context": dict(EDC_CONTEXT), "@type": "TransferProcess", "@id": pid, "type": role.upper(),
        "protocol": PROTOCOL, "state": state, "contractId": agreement_id, "transferType": transfer_type,
        "counterPartyId": counterparty_did, "counterPartyAddress": counterparty_address,
        "consumerPid": consumer_pid, "providerPid": provider_pid, "approval": approval,
        "pendingStep": pending, "correlationId": correlation_id,
        "createdAt": int(created_at.timestamp() * 1000),
        "stateTimestamp": int(updated_at.timestamp() * 1000),
    }
    if request:
        destination = json.loads(request)
        if destination:
            out["dataDestination"] = destination
    if error_reason:
        out["errorDetail"] = error_reason
        out["errorCode"] = error_code
    return {k: v for k, v in out.items() if v is not None}


# WHY a Core select of these columns on a plain connection: see negotiations._NEGOTIATION_VIEW.
_TRANSFER_VIEW = select(*(_C[name] for name in VIEW_COLUMNS))
_ONE_TRANSFER = _TRANSFER_VIEW.where(_C.id == bindparam("pid"))


_QUERIES = PreparedQueries(_TRANSFER_VIEW, TRANSFER_COLUMNS, default_sort=_C.id)


def query_transfers(ctx: ConnectorContext, spec: QuerySpec) -> list[Row[Any]]:
    """The transfer processes ``spec`` selects, as rows with the columns :func:`transfer_json` reads."""
    stmt, params = _QUERIES.statement(with_lowercase_type(spec))
    with ctx.engine.connect() as conn:
        return list(conn.execute(stmt, params))


def read_transfer(ctx: ConnectorContext, transfer_id: str) -> Row[Any]:
    """One transfer process as a row of :data:`VIEW_COLUMNS`; 404 as :func:`connector.transfer.get_transfer`."""
    with ctx.engine.connect() as conn:
        row = conn.execute(_ONE_TRANSFER, {"pid": transfer_id}).first()
    if row is None:
        raise NotFoundError(f"no transfer process {transfer_id!r}", code="transfer_not_found")
    return row


# ---- the routes an operator calls for every transfer (also served directly: common.ManagementApp) -----------

async def start(ctx: ConnectorContext, request: Request) -> JSONResponse:
    """``POST /v3/transferprocesses``: an EDC TransferRequest becomes a consumer transfer; IdResponse."""
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
    row = await in_thread(lambda: tp.start_transfer(
        ctx, agreement_id=contract_id, counterparty_address=address if isinstance(address, str) else None,
        transfer_type=transfer_type, data_destination=destination, approval=approval,
        correlation_id=request.headers.get("X-Correlation-Id"), purpose=purpose))
    return JSONResponse({"@context": dict(EDC_CONTEXT), "@type": "IdResponse", "@id": row.id,
                         "createdAt": int(row.created_at.timestamp() * 1000)})


async def find(ctx: ConnectorContext, request: Request) -> JSONResponse:
    """``POST /v3/transferprocesses/request``: the transfer processes a QuerySpec selects."""
    spec = await read_query_spec(request, ctx.settings)
    rows = await in_thread(query_transfers, ctx, spec)
    return JSONResponse([transfer_json(r) for r in rows])


async def read(ctx: ConnectorContext, request: Request, transfer_id: str) -> JSONResponse:
    """``GET /v3/transferprocesses/{id}``."""
    return JSONResponse(transfer_json(await in_thread(read_transfer, ctx, transfer_id)))


async def read_state(ctx: ConnectorContext, request: Request, transfer_id: str) -> JSONResponse:
    """``GET /v3/transferprocesses/{id}/state``."""
    row = await in_thread(read_transfer, ctx, transfer_id)
    return JSONResponse({"@context": dict(EDC_CONTEXT), "@type": "TransferState", "state": row.state})


def direct_routes(ctx: ConnectorContext) -> list[DirectRoute]:
    """The routes above, for :meth:`connector.management.common.ManagementApp.serve_directly`."""
    return [DirectRoute("POST", BASE, partial(start, ctx)), DirectRoute("POST", BASE + "/request", partial(find, ctx)),
            DirectRoute("GET", BASE + "/{transfer_id}", partial(read, ctx)),
            DirectRoute("GET", BASE + "/{transfer_id}/state", partial(read_state, ctx))]


def create_router(ctx: ConnectorContext) -> APIRouter:
    router = APIRouter(tags=["transfer processes"], dependencies=[Depends(require_api_key(ctx.settings))])

    @router.post(BASE, summary="Start a transfer as consumer (EDC TransferRequest)")
    async def create(request: Request) -> JSONResponse:
        return await start(ctx, request)

    @router.post(BASE + "/request", summary="Query transfer processes with a QuerySpec")
    async def query(request: Request) -> JSONResponse:
        return await find(ctx, request)

    @router.get(BASE + "/{transfer_id}", summary="Get a transfer process")
    async def get(transfer_id: str, request: Request) -> JSONResponse:
        return await read(ctx, request, transfer_id)

    @router.get(BASE + "/{transfer_id}/state", summary="Get a transfer process's state")
    async def state(transfer_id: str, request: Request) -> JSONResponse:
        return await read_state(ctx, request, transfer_id)

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
