"""DSP catalog binding: ``POST /catalog/request`` (filter, Link pagination) and ``GET /catalog/datasets/{id}``.

The catalog's content (which datasets and offers this caller may see) is built by ``connector.catalog``
(engineer F) from the contract definitions' access policies; this module authenticates, validates and serves.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from fastapi import Request
from fastapi.responses import JSONResponse, Response

from connector.errors import ConnectorError
from connector.protocol.direct import DspRoute
from connector.protocol.edge import DSP_ERRORS, authenticate, dsp_error, read_message
from connector.protocol.errors import ProtocolError
from connector.protocol.jsonld import DSP_CONTEXT
from connector.protocol.schemas import validate_message
from connector.threads import in_thread

if TYPE_CHECKING:
    from connector.context import ConnectorContext

DEFAULT_PAGE = 50
MAX_PAGE = 500
TAG = "dsp-catalog"


class CatalogUnavailable(ConnectorError):
    code = "catalog_unavailable"
    status = 503


def _catalog_module() -> Any:
    try:
        return importlib.import_module("connector.catalog")
    except ModuleNotFoundError as exc:
        raise CatalogUnavailable("this connector has no catalog yet") from exc


def _page(request: Request) -> tuple[int, int]:
    try:
        offset = int(request.query_params.get("offset", "0"))
        limit = int(request.query_params.get("limit", str(DEFAULT_PAGE)))
    except ValueError as exc:
        raise ProtocolError("offset and limit must be integers", code="bad_pagination") from exc
    if offset < 0 or not 0 < limit <= MAX_PAGE:
        raise ProtocolError(f"offset must be >= 0 and limit between 1 and {MAX_PAGE}", code="bad_pagination")
    return offset, limit


def _links(request: Request, offset: int, limit: int, total: int) -> str | None:
    base = str(request.url.remove_query_params(["offset", "limit"]))
    links = []
    if offset > 0:
        links.append(f'<{base}?offset={max(0, offset - limit)}&limit={limit}>; rel="previous"')
    if offset + limit < total:
        links.append(f'<{base}?offset={offset + limit}&limit={limit}>; rel="next"')
    return ", ".join(links) or None


def _page_of(result: Any) -> tuple[dict[str, Any], int]:
    """``build_catalog``'s answer as (catalog, total): a dict with ``.total``, or a (catalog, total) pair."""
    if isinstance(result, tuple):
        return result[0], int(result[1])
    datasets = result.get("dataset", [])
    counted = len(datasets) if isinstance(datasets, list) else 1
    return result, int(getattr(result, "total", counted))


def catalog_routes(ctx: ConnectorContext) -> list[DspRoute]:
    async def catalog_request(request: Request) -> Response:
        try:
            party = await authenticate(request, ctx)
            message = await read_message(request, ctx, "CatalogRequestMessage")
            offset, limit = _page(request)
            module = _catalog_module()
            result = await in_thread(module.build_catalog, ctx, party, message.get("filter"), offset, limit)
            catalog, total = _page_of(result)
        except DSP_ERRORS as exc:
            return dsp_error("CatalogError", exc)
        body = {"@context": [DSP_CONTEXT], **{k: v for k, v in catalog.items() if k != "@context"}}
        try:
            validate_message(body, "Catalog")  # never send what the schema forbids
        except DSP_ERRORS as exc:
            return dsp_error("CatalogError", ConnectorError(f"this connector built an invalid catalog: {exc}",
                                                            code="catalog_invalid", status=500))
        response = JSONResponse(body)
        link = _links(request, offset, limit, total)
        if link:
            response.headers["Link"] = link
        return response

    async def dataset(dataset_id: str, request: Request) -> Response:
        try:
            party = await authenticate(request, ctx)
            module = _catalog_module()
            found = await in_thread(module.get_dataset, ctx, party, dataset_id)
        except DSP_ERRORS as exc:
            return dsp_error("CatalogError", exc)
        body = {"@context": [DSP_CONTEXT], **{k: v for k, v in found.items() if k != "@context"}}
        try:
            validate_message(body, "Dataset")
        except DSP_ERRORS as exc:
            return dsp_error("CatalogError", ConnectorError(f"this connector built an invalid dataset: {exc}",
                                                            code="catalog_invalid", status=500))
        return JSONResponse(body)

    return [DspRoute("POST", "/catalog/request", catalog_request, "catalog_request", TAG),
            DspRoute("GET", "/catalog/datasets/{dataset_id:path}", dataset, "dataset", TAG)]
