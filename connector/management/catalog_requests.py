"""``/v3/catalog/request`` and ``/v3/catalog/dataset/request``: the consumer asks a counterparty's DSP catalog.

The request is signed with DCP (a self-issued token for the counterparty's DID, learned from its DSP
version metadata when ``counterPartyId`` is not given) and carries the correlation id, so the provider's
logs of the same catalog request can be found. The counterparty's answer is returned as it came (DSP
2025-1 compact JSON-LD) once it passed the DSP schema and a size cap; refusals and invalid answers become a
502 problem naming the counterparty's reason.
"""

from __future__ import annotations

import json
import uuid
from typing import Any, Protocol
from urllib.parse import quote, urlsplit

import httpx
from fastapi import APIRouter, Request

from connector import jsonld
from connector.errors import ConnectorError
from connector.logs import CORRELATION_HEADER, correlation, current_correlation_id
from connector.management.common import BodyInvalid, ManagementContext, json_depth, read_jsonld_body
from connector.management.openapi import CATALOG_REQUEST_BODY, DATASET_REQUEST_BODY, json_body
from connector.protocol.schemas import validate_message
from connector.querying import QuerySpec, query_spec_from_node

CATALOG = "/v3/catalog"
PROTOCOLS = ("dataspace-protocol-http:2025-1", "dataspace-protocol-http")
DSP_CONTEXT = jsonld.DSP_CONTEXT_URL
MAX_ANSWER_BYTES = 32 * 1024 * 1024  # a counterparty's catalog page; more is refused, not buffered
MAX_ANSWER_DEPTH = 64


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


def _refusal(status: int, raw: bytes, url: str) -> CounterpartyError:
    """The counterparty's refusal, with its DSP ``reason`` or problem ``detail`` when it gave one."""
    reason = ""
    try:
        body = json.loads(raw)
        if isinstance(body, dict):
            found = body.get("reason") or body.get("detail") or body.get("code") or ""
            reason = "; ".join(str(r) for r in found) if isinstance(found, list) else str(found)
    except ValueError:
        reason = raw[:200].decode("utf-8", "replace")
    return CounterpartyError(f"{url} answered {status}" + (f": {reason[:500]}" if reason else ""),
                             code="counterparty_refused")


async def _read_capped(response: httpx.Response, limit: int) -> bytes | None:
    """The body, or None once it passes ``limit`` bytes (the rest is not read)."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


async def _call(ctx: CatalogClientContext, method: str, url: str, expected: str, **kwargs: Any) -> dict[str, Any]:
    """One DSP call; the answer is size-capped, parsed and checked against the DSP schema of ``expected``."""
    try:
        async with ctx.http.stream(method, url, **kwargs) as response:
            if response.status_code != 200:
                raise _refusal(response.status_code, await _read_capped(response, 65536) or b"", url)
            raw = await _read_capped(response, MAX_ANSWER_BYTES)
            if raw is None:
                raise CounterpartyError(f"{url} answered more than {MAX_ANSWER_BYTES} bytes; refused",
                                        code="counterparty_answer_too_large")
    except httpx.HTTPError as exc:
        raise CounterpartyError(f"cannot reach {url}: {exc.__class__.__name__}",
                                code="counterparty_unreachable") from exc
    try:
        body = json.loads(raw)
        json_depth(body, MAX_ANSWER_DEPTH)
    except (ValueError, ConnectorError) as exc:
        raise CounterpartyError(f"{url} did not answer usable JSON: {exc}", code="counterparty_answer_invalid") from exc
    try:
        return validate_message(body, expected)
    except ConnectorError as exc:
        raise CounterpartyError(f"{url} answered an invalid {expected}: {exc}",
                                code="counterparty_answer_invalid") from exc


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
    return await _call(ctx, "POST", url, "Catalog", json=catalog_request_message(spec), headers=headers,
                       params={"offset": spec.offset, "limit": spec.limit})


async def request_dataset(ctx: CatalogClientContext, node: dict[str, Any]) -> dict[str, Any]:
    """Fetch one dataset of the counterparty's catalog for an expanded ``DatasetRequest`` node."""
    _check_protocol(node)
    dataset_id = node.get("@id")
    if not isinstance(dataset_id, str) or not dataset_id:
        raise BodyInvalid("'@id' (the dataset id) is required", code="dataset_id_missing")
    address = _address(node)
    headers = await _headers(ctx, node, address)
    return await _call(ctx, "GET", f"{address}/catalog/datasets/{quote(dataset_id, safe='')}", "Dataset",
                       headers=headers)


def request_correlation_id(request: Request) -> str:
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
        with correlation(request_correlation_id(request)):
            return await request_catalog(ctx, node)

    @router.post(CATALOG + "/dataset/request", summary="Fetch one dataset of a counterparty's DSP catalog",
                 openapi_extra=json_body(DATASET_REQUEST_BODY))
    async def dataset_request(request: Request) -> dict[str, Any]:
        _raw, node = await read_jsonld_body(request, ctx.settings, what="DatasetRequest")
        with correlation(request_correlation_id(request)):
            return await request_dataset(ctx, node)

    return router
