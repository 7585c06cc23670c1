"""``/v3/policydefinitions``: ODRL policies, checked by the policy engine before anything is stored.

JSON-LD bodies use EDC's shape ``{"@id", "@type": "PolicyDefinition", "policy": {...ODRL...}}``; a body of
type ``text/turtle`` is one ODRL policy in Turtle (its id is ``?id=`` or the policy's uid).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool

from connector import jsonld
from connector.management.common import (
    BodyInvalid,
    ManagementContext,
    check_type,
    compacted,
    id_response,
    media_type,
    read_body_bytes,
    read_json_body,
    read_query_spec,
)
from connector.management.openapi import POLICY_DEFINITION_BODY, QUERY_SPEC_BODY, json_body
from connector.offers import (
    PolicyDefinition,
    PolicyDefinitionStore,
    policy_definition_from_node,
    policy_definition_from_turtle,
    policy_definition_to_jsonld,
    with_policy_context,
)

POLICIES = "/v3/policydefinitions"
TURTLE_TYPES = ("text/turtle", "application/x-turtle")


def create_policy_definitions_router(ctx: ManagementContext) -> APIRouter:
    router = APIRouter(tags=["policy definitions"])
    store = PolicyDefinitionStore(ctx.sessions)

    async def read_definition(request: Request, definition_id: str | None = None) -> PolicyDefinition:
        if media_type(request) in TURTLE_TYPES:
            raw = await read_body_bytes(request, ctx.settings)
            if not raw.strip():
                raise BodyInvalid("a Turtle policy body is required", code="body_missing")
            wanted = definition_id or request.query_params.get("id")
            return await run_in_threadpool(policy_definition_from_turtle, raw, definition_id=wanted)
        data = await read_json_body(request, ctx.settings)
        if not isinstance(data, dict):
            raise BodyInvalid("the body must be one JSON object (a PolicyDefinition)")

        def parse() -> PolicyDefinition:
            node = check_type(jsonld.expand_one(with_policy_context(data), what="PolicyDefinition"),
                              "PolicyDefinition")
            return policy_definition_from_node(node, definition_id=definition_id)

        return await run_in_threadpool(parse)

    @router.post(POLICIES, summary="Create a policy definition (JSON-LD or Turtle)",
                 openapi_extra=json_body(POLICY_DEFINITION_BODY, turtle=True))
    async def create_policy_definition(request: Request) -> dict[str, Any]:
        definition = await read_definition(request)
        created = await run_in_threadpool(store.create, definition)
        return id_response(created.id, created.created_at)

    @router.post(POLICIES + "/request", summary="Query policy definitions with a QuerySpec",
                 openapi_extra=json_body(QUERY_SPEC_BODY))
    async def query_policy_definitions(request: Request) -> list[dict[str, Any]]:
        spec = await read_query_spec(request, ctx.settings)
        found = await run_in_threadpool(store.query, spec)
        result: list[dict[str, Any]] = await run_in_threadpool(
            compacted, [policy_definition_to_jsonld(d) for d in found])
        return result

    @router.get(POLICIES + "/{definition_id:path}", summary="Get a policy definition")
    async def get_policy_definition(definition_id: str) -> dict[str, Any]:
        definition = await run_in_threadpool(store.get, definition_id)
        result: dict[str, Any] = await run_in_threadpool(compacted, policy_definition_to_jsonld(definition))
        return result

    @router.put(POLICIES + "/{definition_id:path}", status_code=204, summary="Replace a policy definition's policy",
                openapi_extra=json_body(POLICY_DEFINITION_BODY, turtle=True))
    async def update_policy_definition(definition_id: str, request: Request) -> Response:
        definition = await read_definition(request, definition_id)
        await run_in_threadpool(store.update, definition)
        return Response(status_code=204)

    @router.delete(POLICIES + "/{definition_id:path}", status_code=204, summary="Delete an unused policy definition")
    async def delete_policy_definition(definition_id: str) -> Response:
        await run_in_threadpool(store.delete, definition_id)
        return Response(status_code=204)

    return router
