"""Mount the DSP 2025-1 HTTPS bindings on the protocol app.

The bindings live at the root of the protocol address (``settings.protocol_url``), which the version
metadata advertises as ``path``; the ``serviceId`` is the DID URL of the connector's DataService entry, so
a caller learns which DID to address its self-issued token to before it sends anything else.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from fastapi import FastAPI
from fastapi.responses import JSONResponse

from connector.protocol.catalog_routes import catalog_routes
from connector.protocol.direct import DspRoute, ProtocolApp
from connector.protocol.negotiation_routes import negotiation_routes
from connector.protocol.transfer_routes import transfer_routes

if TYPE_CHECKING:
    from connector.context import ConnectorContext

DSP_VERSION = "2025-1"
DCP_AUTH = {"protocol": "DCP", "version": "1.0", "profile": ["vc20-bssl/jwt", "vc11-sl2021/jwt"]}


def version_response(ctx: ConnectorContext) -> dict[str, Any]:
    """The ``/.well-known/dspace-version`` answer (schema ``VersionResponse``)."""
    path = urlsplit(ctx.settings.protocol_url).path or "/"
    return {
        "protocolVersions": [{
            "version": DSP_VERSION,
            "path": path,
            "binding": "HTTPS",
            "auth": DCP_AUTH,
            "serviceId": f"{ctx.did}#dataservice",
            "identifierType": ctx.did.split(":", 2)[0] + ":" + ctx.did.split(":", 2)[1],
        }]
    }


def dsp_routes(ctx: ConnectorContext) -> list[DspRoute]:
    """The catalog, negotiation and transfer bindings' routes, in the order they are matched."""
    return [*catalog_routes(ctx), *negotiation_routes(ctx), *transfer_routes(ctx)]


def install_protocol_routes(app: FastAPI, ctx: ConnectorContext) -> None:
    """Register the version metadata and the DSP routes; a :class:`ProtocolApp` also serves the DSP routes
    directly (FastAPI keeps them for the OpenAPI document and answers what they do not match)."""
    @app.get("/.well-known/dspace-version")
    async def dspace_version() -> JSONResponse:
        return JSONResponse(version_response(ctx))

    routes = dsp_routes(ctx)
    for route in routes:
        app.add_api_route(route.path, route.endpoint, methods=[route.method], name=route.name, tags=[route.tag],
                          response_model=None)
    if isinstance(app, ProtocolApp):
        app.serve_directly(routes)
