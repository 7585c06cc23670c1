"""The operators' Management API (EDC v3 shapes), mounted by ``connector.app`` under ``/management``.

``create_router(ctx)`` assembles the catalog side (assets, policy and contract definitions, catalog
requests) and the process side (negotiations, agreements, transfers, EDRs). Every route except
``/openapi.json`` needs the API key. With ``test_hooks = true`` (never in production) it also mounts
``/test/negotiations`` and ``/test/transfers`` (``connector.management.test_hooks``); otherwise those paths
do not exist (404, absent from the OpenAPI document).
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from connector.management import agreements, edrs, negotiations, test_hooks, transfers
from connector.management.assets import create_assets_router
from connector.management.catalog_requests import create_catalog_requests_router
from connector.management.common import require_api_key
from connector.management.contract_definitions import create_contract_definitions_router
from connector.management.policy_definitions import create_policy_definitions_router

log = logging.getLogger("pactum.connector.management")

# The process side: each module's factory takes the context and returns its router.
PROCESS_ROUTERS = (negotiations.create_router, agreements.create_router, transfers.create_router,
                   edrs.create_router)


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
    protected = APIRouter(dependencies=[Depends(require_api_key(ctx.settings))])
    for factory in PROCESS_ROUTERS:
        protected.include_router(factory(ctx))
    if ctx.settings.test_hooks:
        log.warning("test_hooks is on: /management/test/negotiations and /management/test/transfers let any "
                    "holder of the management key start processes; never in production")
        protected.include_router(test_hooks.create_router(ctx))
    router.include_router(protected)
    return router


__all__ = ["create_catalog_management_router", "create_router"]
