"""``/v3/contractdefinitions``: which assets are offered under which access and contract policies."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool

from connector.management.common import (
    ManagementContext,
    compacted,
    id_response,
    read_jsonld_body,
    read_query_spec,
)
from connector.management.openapi import CONTRACT_DEFINITION_BODY, QUERY_SPEC_BODY, json_body
from connector.offers import (
    ContractDefinition,
    ContractDefinitionStore,
    contract_definition_from_node,
    contract_definition_to_jsonld,
)

CONTRACTS = "/v3/contractdefinitions"
LISTS = ("assetsSelector",)


def create_contract_definitions_router(ctx: ManagementContext) -> APIRouter:
    router = APIRouter(tags=["contract definitions"])
    store = ContractDefinitionStore(ctx.sessions)

    async def read_definition(request: Request, definition_id: str | None = None) -> ContractDefinition:
        _raw, node = await read_jsonld_body(request, ctx.settings, what="ContractDefinition")
        return contract_definition_from_node(node, definition_id=definition_id,
                                             default_approval=ctx.settings.approval)

    @router.post(CONTRACTS, summary="Create a contract definition", openapi_extra=json_body(CONTRACT_DEFINITION_BODY))
    async def create_contract_definition(request: Request) -> dict[str, Any]:
        definition = await read_definition(request)
        created = await run_in_threadpool(store.create, definition)
        return id_response(created.id, created.created_at)

    @router.post(CONTRACTS + "/request", summary="Query contract definitions with a QuerySpec",
                 openapi_extra=json_body(QUERY_SPEC_BODY))
    async def query_contract_definitions(request: Request) -> list[dict[str, Any]]:
        spec = await read_query_spec(request, ctx.settings)
        found = await run_in_threadpool(store.query, spec)
        result: list[dict[str, Any]] = await run_in_threadpool(
            lambda: compacted([contract_definition_to_jsonld(d) for d in found], lists=LISTS))
        return result

    @router.get(CONTRACTS + "/{definition_id:path}", summary="Get a contract definition")
    async def get_contract_definition(definition_id: str) -> dict[str, Any]:
        definition = await run_in_threadpool(store.get, definition_id)
        result: dict[str, Any] = await run_in_threadpool(
            lambda: compacted(contract_definition_to_jsonld(definition), lists=LISTS))
        return result

    @router.put(CONTRACTS, status_code=204, summary="Update a contract definition (id in the body)",
                openapi_extra=json_body(CONTRACT_DEFINITION_BODY))
    async def update_contract_definition(request: Request) -> Response:
        definition = await read_definition(request)
        await run_in_threadpool(store.update, definition)
        return Response(status_code=204)

    @router.put(CONTRACTS + "/{definition_id:path}", status_code=204, summary="Update a contract definition",
                openapi_extra=json_body(CONTRACT_DEFINITION_BODY))
    async def update_contract_definition_by_id(definition_id: str, request: Request) -> Response:
        definition = await read_definition(request, definition_id)
        await run_in_threadpool(store.update, definition)
        return Response(status_code=204)

    @router.delete(CONTRACTS + "/{definition_id:path}", status_code=204, summary="Delete a contract definition")
    async def delete_contract_definition(definition_id: str) -> Response:
        await run_in_threadpool(store.delete, definition_id)
        return Response(status_code=204)

    return router
