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

from connector.protocol.catalog_routes import create_catalog_router
from connector.protocol.negotiation_routes import create_negotiation_router
from connector.protocol.transfer_routes import create_transfer_router

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


def install_protocol_routes(app: FastAPI, ctx: ConnectorContext) -> None:
    @app.get("/.well-known/dspace-version")
    async def dspace_version() -> JSONResponse:
        return JSONResponse(version_response(ctx))

    app.include_router(create_catalog_router(ctx))
    app.include_router(create_negotiation_router(ctx))
    app.include_router(create_transfer_router(ctx))
