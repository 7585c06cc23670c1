"""EDC / Tractus-X EDR API on the management port: the consumer's cached data addresses (EDRs).

- ``POST   /v3/edrs/request``                                   QuerySpec -> EndpointDataReferenceEntry list
- ``GET    /v3/edrs/{transferProcessId}/dataaddress[?auto_refresh=true]``  the DataAddress (refreshed if asked
  and the token is about to expire)
- ``POST   /v3/edrs/{transferProcessId}/refresh``                  force a refresh
- ``POST   /v3/edrs/{transferProcessId}/pull``                     let the connector fetch the data itself
  (``{"path"?, "fileName"?}`` into its data folder, or ``{"sink": {"endpoint", "method"?, "headers"?}}``):
  hashes it, signs a receipt, sends it to the provider; answers size, digest, location, receipt
- ``POST   /v3/edrs/{transferProcessId}/delete``                   perform the delete duty now and report it
- ``DELETE /v3/edrs/{transferProcessId}``                          forget the EDR

Shapes follow EDC: the DataAddress is flat (``endpoint``, ``authorization``, ``authType``, ``endpointType``,
``refreshToken``, ``refreshEndpoint``, ``expiresIn``) with the EDC context.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy import delete, select

from connector import jsonld
from connector.dataplane.service import DataPlane
from connector.dataplane.sinks import FileSink, HttpSink, Sink
from connector.management.common import BodyInvalid, apply_query, read_json_body, read_query_spec
from connector.storage.tables_dataplane import DpEdrRow

REFRESH_MARGIN = timedelta(seconds=30)


def _dataplane(ctx: Any) -> DataPlane:
    if ctx.dataplane is None:
        ctx.dataplane = DataPlane.from_context(ctx)
    dp: DataPlane = ctx.dataplane
    return dp


def _epoch_ms(value: datetime) -> int:
    aware = value if value.tzinfo else value.replace(tzinfo=UTC)
    return int(aware.timestamp() * 1000)


def edr_entry(row: DpEdrRow) -> dict[str, Any]:
    """EDC's ``EndpointDataReferenceEntry`` for one stored EDR."""
    return {"@context": dict(jsonld.EDC_CONTEXT), "@id": row.transfer_id, "@type": "EndpointDataReferenceEntry",
            "transferProcessId": row.transfer_id, "agreementId": row.agreement_id, "assetId": row.asset_id,
            "providerId": row.provider_did, "contractNegotiationId": None, "createdAt": _epoch_ms(row.updated_at)}


def flat_data_address(dp: DataPlane, row: DpEdrRow) -> dict[str, Any]:
    """The stored DSP dataAddress flattened the way EDC's EDR API returns it."""
    address = dp.edr_address(row.transfer_id)
    out: dict[str, Any] = {"@context": dict(jsonld.EDC_CONTEXT), "@type": "DataAddress",
                           "type": address.get("endpointType", row.endpoint_type),
                           "endpointType": address.get("endpointType", row.endpoint_type),
                           "endpoint": row.endpoint}
    for prop in address.get("endpointProperties") or []:
        name = prop.get("name")
        if isinstance(name, str) and name not in out:
            out[name] = prop.get("value")
    if row.expires_at is not None:
        expires = row.expires_at if row.expires_at.tzinfo else row.expires_at.replace(tzinfo=UTC)
        out["expiresIn"] = str(max(0, int((expires - datetime.now(UTC)).total_seconds())))
    return out


def _text(body: dict[str, Any], name: str) -> str | None:
    value = body.get(name, body.get(jsonld.EDC + name))
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise BodyInvalid(f"{name!r} must be a non-empty string")
    return value


def sink_from(body: dict[str, Any], transfer_id: str) -> Sink:
    """The sink a pull request names: ``{"sink": {"endpoint": URL, "method"?, "headers"?}}`` for HTTP, else a
    file ``fileName`` (default ``<transferId>/data``) in the connector's data folder."""
    sink = body.get("sink")
    if sink is not None:
        if not isinstance(sink, dict) or not isinstance(sink.get("endpoint"), str):
            raise BodyInvalid("'sink' must be an object with an 'endpoint' URL")
        headers = sink.get("headers") or {}
        method = str(sink.get("method") or "POST").upper()
        if not isinstance(headers, dict) or method not in ("POST", "PUT"):
            raise BodyInvalid("'sink.headers' must be an object and 'sink.method' POST or PUT")
        return HttpSink(sink["endpoint"], {str(k): str(v) for k, v in headers.items()}, method)
    return FileSink(_text(body, "fileName") or f"{transfer_id}/data")


def create_router(ctx: Any) -> APIRouter:
    """The EDR routes (mounted under ``/management`` behind the API key by the management package)."""
    router = APIRouter(tags=["EDRs"])
    columns = {"transferProcessId": DpEdrRow.transfer_id, "id": DpEdrRow.transfer_id,
               "agreementId": DpEdrRow.agreement_id, "assetId": DpEdrRow.asset_id,
               "providerId": DpEdrRow.provider_did, "createdAt": DpEdrRow.updated_at}

    @router.post("/v3/edrs/request")
    async def query(request: Request) -> JSONResponse:
        spec = await read_query_spec(request, ctx.settings)
        stmt = apply_query(select(DpEdrRow).where(DpEdrRow.endpoint_type != "inbox"), spec, columns,
                           default_sort=DpEdrRow.transfer_id)
        with ctx.sessions() as session:
            rows = session.execute(stmt).scalars().all()
        return JSONResponse([edr_entry(r) for r in rows])

    @router.get("/v3/edrs/{transfer_id}/dataaddress")
    async def data_address(transfer_id: str, auto_refresh: bool = False) -> JSONResponse:
        dp = _dataplane(ctx)
        row = dp.edr(transfer_id)
        if auto_refresh and row.refresh_token and row.expires_at is not None:
            expires = row.expires_at if row.expires_at.tzinfo else row.expires_at.replace(tzinfo=UTC)
            if expires - REFRESH_MARGIN <= datetime.now(UTC):
                row = await dp.refresh_edr(transfer_id)
        return JSONResponse(flat_data_address(dp, row))

    @router.post("/v3/edrs/{transfer_id}/refresh")
    async def refresh(transfer_id: str) -> JSONResponse:
        dp = _dataplane(ctx)
        row = await dp.refresh_edr(transfer_id)
        return JSONResponse(flat_data_address(dp, row))

    @router.post("/v3/edrs/{transfer_id}/pull")
    async def pull(transfer_id: str, request: Request) -> JSONResponse:
        body = await read_json_body(request, ctx.settings, required=False) or {}
        if not isinstance(body, dict):
            raise BodyInvalid("the body must be a JSON object")
        dp = _dataplane(ctx)
        dp.edr(transfer_id)  # 404 before anything else when unknown
        result = await dp.pull(transfer_id, sink_from(body, transfer_id), path=_text(body, "path"))
        return JSONResponse({"@context": dict(jsonld.EDC_CONTEXT), "@type": "PullResult",
                             "transferProcessId": transfer_id, "size": result.size, "digest": result.digest,
                             "location": result.location, "receipt": result.receipt})

    @router.post("/v3/edrs/{transfer_id}/delete")
    async def delete_copy(transfer_id: str) -> JSONResponse:
        from connector.usage import fulfil_now

        answer = await fulfil_now(_dataplane(ctx), transfer_id, "delete")
        return JSONResponse({"@context": dict(jsonld.EDC_CONTEXT), "@type": "DutyFulfilment", **answer})

    @router.delete("/v3/edrs/{transfer_id}")
    async def remove(transfer_id: str) -> Response:
        dp = _dataplane(ctx)
        dp.edr(transfer_id)  # 404 when unknown
        with ctx.sessions.begin() as session:
            session.execute(delete(DpEdrRow).where(DpEdrRow.transfer_id == transfer_id))
        dp.audit.record("edr.deleted", process_id=transfer_id)
        return Response(status_code=204)

    return router
