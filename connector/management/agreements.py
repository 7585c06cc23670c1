"""``/v3/contractagreements``: the agreements this connector holds, as provider or consumer (EDC v3 shapes)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from sqlalchemy import select

from connector.errors import NotFoundError
from connector.jsonld import EDC_CONTEXT
from connector.management.common import read_query_spec, require_api_key
from connector.querying import QuerySpec, apply_query
from connector.storage.tables_protocol import AgreementRow

if TYPE_CHECKING:
    from connector.context import ConnectorContext

_C = AgreementRow.__table__.c  # plain columns, as the QuerySpec translation expects
BASE = "/v3/contractagreements"

AGREEMENT_COLUMNS = {
    "id": _C.id, "assetId": _C.asset_id, "providerId": _C.assigner,
    "consumerId": _C.assignee, "contractSigningDate": _C.signed_at,
    "negotiationId": _C.negotiation_id, "policyHash": _C.policy_hash,
}


def agreement_json(row: AgreementRow) -> dict[str, Any]:
    """EDC's ContractAgreement shape, with the ODRL agreement and its canonical hash."""
    return {
        "@context": dict(EDC_CONTEXT), "@type": "ContractAgreement", "@id": row.id,
        "assetId": row.asset_id, "providerId": row.assigner, "consumerId": row.assignee,
        "contractSigningDate": int(row.signed_at.timestamp()), "policy": json.loads(row.policy),
        "policyHash": row.policy_hash, "negotiationId": row.negotiation_id, "role": row.role.upper(),
    }


def get_agreement(ctx: ConnectorContext, agreement_id: str) -> AgreementRow:
    with ctx.sessions() as session:
        row = session.get(AgreementRow, agreement_id)
    if row is None:
        raise NotFoundError(f"no contract agreement {agreement_id!r}", code="agreement_not_found")
    return row


def query_agreements(ctx: ConnectorContext, spec: QuerySpec) -> list[AgreementRow]:
    with ctx.sessions() as session:
        stmt = apply_query(select(AgreementRow), spec, AGREEMENT_COLUMNS, default_sort=_C.id)
        return list(session.scalars(stmt))


def create_router(ctx: ConnectorContext) -> APIRouter:
    router = APIRouter(tags=["contract agreements"], dependencies=[Depends(require_api_key(ctx.settings))])

    @router.post(BASE + "/request", summary="Query agreements with a QuerySpec")
    async def query(request: Request) -> JSONResponse:
        spec = await read_query_spec(request, ctx.settings)
        rows = await run_in_threadpool(query_agreements, ctx, spec)
        return JSONResponse([agreement_json(r) for r in rows])

    @router.get(BASE + "/{agreement_id}", summary="Get an agreement")
    async def get(agreement_id: str) -> JSONResponse:
        return JSONResponse(agreement_json(await run_in_threadpool(get_agreement, ctx, agreement_id)))

    @router.get(BASE + "/{agreement_id}/negotiation", summary="The negotiation that led to an agreement")
    async def negotiation(agreement_id: str) -> JSONResponse:
        from connector import negotiation as neg
        from connector.management.negotiations import negotiation_json

        row = await run_in_threadpool(get_agreement, ctx, agreement_id)
        return JSONResponse(negotiation_json(await run_in_threadpool(neg.get_negotiation, ctx, row.negotiation_id)))

    return router
