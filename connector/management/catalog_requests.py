"""``/v3/catalog/request`` and ``/v3/catalog/dataset/request``: the consumer asks a counterparty's DSP catalog.

The request is signed with DCP (a self-issued token for the counterparty's DID, learned from its DSP
version metadata when ``counterPartyId`` is not given) and carries the correlation id, so the provider's
logs of the same catalog request can be found. The counterparty's answer is returned as it came (DSP
2025-1 compact JSON-LD); its refusals become a 502 problem naming the counterparty's reason.
"""

from __future__ import annotations

import uuid
from typing import Any, Protocol
from urllib.parse import quote, urlsplit

import httpx
from fastapi import APIRouter, Request

from connector import jsonld
from connector.errors import ConnectorError
from connector.logs import CORRELATION_HEADER, correlation, current_correlation_id
from connector.management.common import BodyInvalid, ManagementContext, read_jsonld_body
from connector.management.openapi import CATALOG_REQUEST_BODY, DATASET_REQUEST_BODY, json_body
from connector.querying import QuerySpec, query_spec_from_node

CATALOG = "/v3/catalog"
PROTOCOLS = ("dataspace-protocol-http:2025-1", "dataspace-protocol-http")
DSP_CONTEXT = jsonld.DSP_CONTEXT_URL


class CounterpartyError(ConnectorError):
    """The counterparty could not be reached or refused the request."""

    code = "counterparty_error"
    status = 502


class CatalogClientContext(ManagementContext, Protocol):
    @property
    def http(self) -> httpx.AsyncClient: ...

    @property
    def trust(self) -> Any: ...


def _address(node: dict[str, Any]) -> str:
    address = jsonld.string(node, jsonld.EDC + "counterPartyAddress", what="the counterparty's DSP URL",
                            required=True)
    assert address is not None
    parts = urlsplit(address)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise BodyInvalid(f"counterPartyAddress = {address!r}: expected the counterparty's absolute http(s) DSP URL",
                          code="counterparty_address_invalid")
    return address.rstrip("/")


def _check_protocol(node: dict[str, Any]) -> None:
    protocol = jsonld.string(node, jsonld.EDC + "protocol", what="the protocol name")
    if protocol is not None and protocol not in PROTOCOLS:
        raise BodyInvalid(f"protocol = {protocol!r}: this connector speaks {PROTOCOLS[0]}", code="protocol_unsupported")


async def _headers(ctx: CatalogClientContext, node: dict[str, Any], address: str) -> dict[str, str]:
    did = jsonld.string(node, jsonld.EDC + "counterPartyId", what="the counterparty's DID")
    if not did:
        did = await ctx.trust.discover_did(address)
    if not did.startswith("did:"):
        raise BodyInvalid(f"counterPartyId = {did!r}: expected the counterparty's DID", code="counterparty_id_invalid")
    return {"Authorization": ctx.trust.authorization(did),
            CORRELATION_HEADER: current_correlation_id() or f"urn:uuid:{uuid.uuid4()}",
            "Content-Type": "application/json"}


def _refusal(response: httpx.Response, url: str) -> CounterpartyError:
    reason = ""
    try:
        body = response.json()
        if isinstance(body, dict):
            raw = body.get("reason") or body.get("detail") or body.get("code") or ""
            reason = "; ".join(str(r) for r in raw) if isinstance(raw, list) else str(raw)
    except ValueError:
        reason = response.text[:200]
    return CounterpartyError(f"{url} answered {response.status_code}" + (f": {reason}" if reason else ""),
                             code="counterparty_refused")


async def _call(ctx: CatalogClientContext, method: str, url: str, **kwargs: Any) -> dict[str, Any]:
    try:
        response = await ctx.http.request(method, url, **kwargs)
    except httpx.HTTPError as exc:
        raise CounterpartyError(f"cannot reach {url}: {exc.__class__.__name__}",
                                code="counterparty_unreachable") from exc
    if response.status_code != 200:
        raise _refusal(response, url)
    try:
        body = response.json()
    except ValueError as exc:
        raise CounterpartyError(f"{url} did not answer JSON", code="counterparty_answer_invalid") from exc
    if not isinstance(body, dict):
        raise CounterpartyError(f"{url} did not answer a JSON object", code="counterparty_answer_invalid")
    return body


def catalog_request_message(spec: QuerySpec) -> dict[str, Any]:
    """The DSP CatalogRequestMessage; the QuerySpec's criteria travel as the (EDC-style) ``filter``."""
    return {"@context": [DSP_CONTEXT], "@type": "CatalogRequestMessage",
            "filter": [c.to_json() for c in spec.filters]}


async def request_catalog(ctx: CatalogClientContext, node: dict[str, Any]) -> dict[str, Any]:
    """Fetch one page of the counterparty's catalog for an expanded ``CatalogRequest`` node."""
    _check_protocol(node)
    address = _address(node)
    spec_nodes = jsonld.values(node, jsonld.EDC + "querySpec")
    spec = query_spec_from_node(spec_nodes[0]) if spec_nodes else QuerySpec()
    headers = await _headers(ctx, node, address)
    url = address + "/catalog/request"
    return await _call(ctx, "POST", url, json=catalog_request_message(spec), headers=headers,
                       params={"offset": spec.offset, "limit": spec.limit})


async def request_dataset(ctx: CatalogClientContext, node: dict[str, Any]) -> dict[str, Any]:
    """Fetch one dataset of the counterparty's catalog for an expanded ``DatasetRequest`` node."""
    _check_protocol(node)
    dataset_id = node.get("@id")
    if not isinstance(dataset_id, str) or not dataset_id:
        raise BodyInvalid("'@id' (the dataset id) is required", code="dataset_id_missing")
    address = _address(node)
    headers = await _headers(ctx, node, address)
    return await _call(ctx, "GET", f"{address}/catalog/datasets/{quote(dataset_id, safe='')}", headers=headers)


def _correlation_id(request: Request) -> str:
    """The operator's correlation id (header) if given, else the current one, else a new one."""
    given = request.headers.get(CORRELATION_HEADER, "").strip()
    if given and len(given) <= 200 and given.isprintable():
        return given
    return current_correlation_id() or f"urn:uuid:{uuid.uuid4()}"


def create_catalog_requests_router(ctx: CatalogClientContext) -> APIRouter:
    router = APIRouter(tags=["catalog"])

    @router.post(CATALOG + "/request", summary="Fetch a counterparty's DSP catalog",
                 openapi_extra=json_body(CATALOG_REQUEST_BODY))
    async def catalog_request(request: Request) -> dict[str, Any]:
        _raw, node = await read_jsonld_body(request, ctx.settings, what="CatalogRequest")
        with correlation(_correlation_id(request)):
            return await request_catalog(ctx, node)

    @router.post(CATALOG + "/dataset/request", summary="Fetch one dataset of a counterparty's DSP catalog",
                 openapi_extra=json_body(DATASET_REQUEST_BODY))
    async def dataset_request(request: Request) -> dict[str, Any]:
        _raw, node = await read_jsonld_body(request, ctx.settings, what="DatasetRequest")
        with correlation(_correlation_id(request)):
            return await request_dataset(ctx, node)

    return router
