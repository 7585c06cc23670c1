"""``/v3/assets``: create, read, update, delete and query assets (EDC Management API v3 shapes)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool

from connector.assets import Asset, AssetStore, asset_from_node, asset_to_jsonld
from connector.management.common import (
    ManagementContext,
    compacted,
    id_response,
    read_jsonld_body,
    read_query_spec,
)
from connector.management.openapi import ASSET_BODY, QUERY_SPEC_BODY, json_body

ASSETS = "/v3/assets"


def create_assets_router(ctx: ManagementContext) -> APIRouter:
    router = APIRouter(tags=["assets"])
    store = AssetStore(ctx.sessions, ctx.settings)

    async def read_asset(request: Request, asset_id: str | None = None) -> Asset:
        _raw, node = await read_jsonld_body(request, ctx.settings, what="Asset")
        return asset_from_node(node, ctx.settings, asset_id=asset_id)

    @router.post(ASSETS, summary="Create an asset", openapi_extra=json_body(ASSET_BODY))
    async def create_asset(request: Request) -> dict[str, Any]:
        asset = await read_asset(request)
        created = await run_in_threadpool(store.create, asset)
        return id_response(created.id, created.created_at)

    @router.post(ASSETS + "/request", summary="Query assets with a QuerySpec", openapi_extra=json_body(QUERY_SPEC_BODY))
    async def query_assets(request: Request) -> list[dict[str, Any]]:
        spec = await read_query_spec(request, ctx.settings)
        found = await run_in_threadpool(store.query, spec)
        result: list[dict[str, Any]] = await run_in_threadpool(compacted, [asset_to_jsonld(a) for a in found])
        return result

    @router.get(ASSETS + "/{asset_id:path}", summary="Get an asset")
    async def get_asset(asset_id: str) -> dict[str, Any]:
        asset = await run_in_threadpool(store.get, asset_id)
        result: dict[str, Any] = await run_in_threadpool(compacted, asset_to_jsonld(asset))
        return result

    @router.put(ASSETS, status_code=204, summary="Update an asset (id in the body)",
                openapi_extra=json_body(ASSET_BODY))
    async def update_asset(request: Request) -> Response:
        asset = await read_asset(request)
        await run_in_threadpool(store.update, asset)
        return Response(status_code=204)

    @router.put(ASSETS + "/{asset_id:path}", status_code=204, summary="Update an asset",
                openapi_extra=json_body(ASSET_BODY))
    async def update_asset_by_id(asset_id: str, request: Request) -> Response:
        asset = await read_asset(request, asset_id)
        await run_in_threadpool(store.update, asset)
        return Response(status_code=204)

    @router.delete(ASSETS + "/{asset_id:path}", status_code=204, summary="Delete an asset")
    async def delete_asset(asset_id: str) -> Response:
        await run_in_threadpool(store.delete, asset_id)
        return Response(status_code=204)

    return router
