"""The operators' Management API (EDC v3 shapes), mounted by ``connector.app`` under ``/management``.

``create_router(ctx)`` assembles the catalog side (assets, policy and contract definitions, catalog
requests) and the process side from sibling modules (negotiations, agreements, transfers: engineer E;
EDRs: engineer G) when they are present. Every route except ``/openapi.json`` needs the API key.
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from connector.management.assets import create_assets_router
from connector.management.catalog_requests import create_catalog_requests_router
from connector.management.common import require_api_key
from connector.management.contract_definitions import create_contract_definitions_router
from connector.management.policy_definitions import create_policy_definitions_router

# (module, factory) pairs of routers other areas contribute; each factory takes the context.
SIBLING_ROUTERS = (
    ("connector.management.process_routes", "create_process_router"),
    ("connector.management.negotiations", "create_router"),
    ("connector.management.agreements", "create_router"),
    ("connector.management.transfers", "create_router"),
    ("connector.management.edrs", "create_router"),
)


def _sibling_routers(ctx: Any) -> list[APIRouter]:
    routers: list[APIRouter] = []
    for module_name, factory_name in SIBLING_ROUTERS:
        if importlib.util.find_spec(module_name) is None:
            continue
        factory = getattr(importlib.import_module(module_name), factory_name, None)
        if callable(factory):
            routers.append(factory(ctx))
    return routers


def create_catalog_management_router(ctx: Any) -> APIRouter:
    """This area's routes: assets, policy/contract definitions, catalog requests, plus ``/openapi.json``."""
    router = APIRouter()

    @router.get("/openapi.json", include_in_schema=False)
    async def openapi(request: Request) -> JSONResponse:
        return JSONResponse(request.app.openapi())

    protected = APIRouter(dependencies=[Depends(require_api_key(ctx.settings))])
    protected.include_router(create_assets_router(ctx))
    protected.include_router(create_policy_definitions_router(ctx))
    protected.include_router(create_contract_definitions_router(ctx))
    protected.include_router(create_catalog_requests_router(ctx))
    router.include_router(protected)
    return router


def create_router(ctx: Any) -> APIRouter:
    """All management routes (API key checked on each), plus the unauthenticated ``/openapi.json``."""
    router = create_catalog_management_router(ctx)
    siblings = _sibling_routers(ctx)
    if siblings:
        protected = APIRouter(dependencies=[Depends(require_api_key(ctx.settings))])
        for sibling in siblings:
            protected.include_router(sibling)
        router.include_router(protected)
    return router


__all__ = ["create_catalog_management_router", "create_router"]
