"""Assemble and run a connector: four uvicorn servers (protocol, management, data, identity) in one loop.

WHY one process with four ports: an operator manages one process, while each surface keeps its own port
so the management API can stay on loopback and the data plane can be split out later. ``serve`` blocks
until SIGTERM/SIGINT, then stops accepting, drains the servers, stops the outbox worker and closes the
database and HTTP client.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable, Callable
from typing import Any

import uvicorn
from fastapi import FastAPI
from fastapi.responses import JSONResponse

from connector import negotiation, transfer
from connector.config import Settings
from connector.context import CREDENTIAL_SERVICE_PATH, ConnectorContext, build_context
from connector.dashboard import create_router as create_dashboard_router
from connector.dataplane import DataPlane, create_app
from connector.errors import ConnectorError
from connector.http_errors import install_error_handlers
from connector.logs import configure_logging
from connector.management import create_router as create_management_router
from connector.management import negotiations as management_negotiations
from connector.management import transfers as management_transfers
from connector.management.common import ManagementApp
from connector.protocol.direct import ProtocolApp
from connector.protocol.routers import install_protocol_routes
from identity.dcp.credential_service import create_credential_service_router
from identity.dcp.http import did_document_path

log = logging.getLogger("pactum.connector.app")

def _health_route(app: FastAPI, ctx: ConnectorContext, surface: str) -> None:
    @app.get("/health", include_in_schema=False)
    async def health() -> dict[str, str]:
        return {"status": "ok", "surface": surface, "did": ctx.did}


def build_protocol_app(ctx: ConnectorContext) -> FastAPI:
    """The DSP surface: version metadata, catalog, negotiation and transfer bindings (served directly)."""
    app = ProtocolApp(title=f"Pactum DSP ({ctx.settings.participant.name})", docs_url=None, redoc_url=None)
    install_error_handlers(app)
    _health_route(app, ctx, "protocol")
    install_protocol_routes(app, ctx)
    return app


def build_management_app(ctx: ConnectorContext) -> FastAPI:
    """Operators' API under ``/management`` (EDC v3 shapes)."""
    app = ManagementApp(title=f"Pactum management ({ctx.settings.participant.name})")
    install_error_handlers(app)
    _health_route(app, ctx, "management")
    app.include_router(create_dashboard_router(ctx), prefix="/dashboard")
    app.include_router(create_management_router(ctx), prefix="/management")
    app.serve_directly([*management_negotiations.direct_routes(ctx), *management_transfers.direct_routes(ctx)],
                       settings=ctx.settings, prefix="/management")
    return app


def build_data_app(ctx: ConnectorContext) -> FastAPI:
    """The data plane's app: EDR-authenticated pulls, push inbox, receipts, duty reports."""
    app: FastAPI = create_app(ctx)
    return app


def build_identity_app(ctx: ConnectorContext) -> FastAPI:
    """The DID document (did:web) and this connector's DCP credential service."""
    app = FastAPI(title=f"Pactum identity ({ctx.settings.participant.name})", docs_url=None, redoc_url=None)
    install_error_handlers(app)
    _health_route(app, ctx, "identity")
    wallet = ctx.wallet

    @app.get(did_document_path(wallet.did))
    async def did_document() -> JSONResponse:
        return JSONResponse(wallet.did_document(), media_type="application/did+json")

    app.include_router(create_credential_service_router(
        wallet, resolver=ctx.resolver, jti_store=ctx.jti_store, prefix=CREDENTIAL_SERVICE_PATH))
    return app


def attach_dataplane(ctx: ConnectorContext) -> None:
    """Give the transfer state machine its data plane, wired to the state machine's callbacks."""
    if ctx.dataplane is None:
        ctx.dataplane = DataPlane.from_context(ctx, **dataplane_hooks(ctx))


def dataplane_hooks(ctx: ConnectorContext) -> dict[str, Any]:
    """The transfer state machine's callbacks the data plane needs (state lookups, suspend, complete)."""
    result: dict[str, Any] = transfer.dataplane_hooks(ctx)
    return result


async def resume_processes(ctx: ConnectorContext) -> None:
    """After a (re)start: take every automatic step that was decided but not yet taken."""
    await negotiation.resume_all(ctx)
    await transfer.resume_all(ctx)


def _server(app: FastAPI, hostport: str, settings: Settings) -> uvicorn.Server:
    host, _, port = hostport.rpartition(":")
    config = uvicorn.Config(app, host=host.strip("[]"), port=int(port), log_config=None, access_log=False,
                            lifespan="on", timeout_graceful_shutdown=5, limit_concurrency=2000,
                            ssl_certfile=settings.tls.cert_file, ssl_keyfile=settings.tls.key_file)
    server = uvicorn.Server(config)
    # serve() owns SIGTERM/SIGINT for all four servers; uvicorn must not install (and later re-raise) its own
    server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]
    return server


async def run(settings: Settings, *, stop: asyncio.Event | None = None,
              ready: Callable[[ConnectorContext], Awaitable[None] | None] | None = None) -> None:
    """Run the four servers and the outbox worker until ``stop`` is set (or a server dies)."""
    stop = stop or asyncio.Event()
    ctx = build_context(settings)
    attach_dataplane(ctx)
    apps = {
        "protocol": (build_protocol_app(ctx), settings.listen.protocol),
        "management": (build_management_app(ctx), settings.listen.management),
        "data": (build_data_app(ctx), settings.listen.data),
        "identity": (build_identity_app(ctx), settings.listen.identity),
    }
    servers = {name: _server(app, hostport, settings) for name, (app, hostport) in apps.items()}
    tasks = {name: asyncio.create_task(s.serve(), name=f"uvicorn-{name}") for name, s in servers.items()}
    worker = asyncio.create_task(ctx.outbox.run_worker(), name="outbox-worker")
    stopper = asyncio.create_task(stop.wait(), name="stop-signal")
    try:
        while not all(s.started for s in servers.values()):
            done = [t for t in tasks.values() if t.done()]
            if done:
                break
            await asyncio.sleep(0.02)
        if all(s.started for s in servers.values()):
            log.info("connector %s serving: protocol %s, management %s, data %s, identity %s",
                     ctx.did, settings.listen.protocol, settings.listen.management, settings.listen.data,
                     settings.listen.identity)
            await resume_processes(ctx)
            if ready is not None:
                result = ready(ctx)
                if result is not None:
                    await result
        await asyncio.wait([stopper, *tasks.values()], return_when=asyncio.FIRST_COMPLETED)
    finally:
        for server in servers.values():
            server.should_exit = True
        await asyncio.gather(*tasks.values(), return_exceptions=True)
        await ctx.outbox.stop_worker()
        worker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await worker
        stopper.cancel()
        await ctx.aclose()
        log.info("connector %s stopped", ctx.did)
    failed = [name for name, s in servers.items() if not s.started]
    if failed and not stop.is_set():
        raise ConnectorError(f"could not start the {', '.join(failed)} server(s); is the port already in use?",
                             code="listen_failed")


def serve(settings: Settings) -> None:
    """Blocking entry point of ``pactum connector serve``: run until SIGTERM or SIGINT."""
    configure_logging(settings.log_level, participant=settings.participant.name)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await run(settings, stop=stop)

    with asyncio.Runner(loop_factory=_fast_loop_factory()) as runner:
        runner.run(main())


def _fast_loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's event loop when installed (less CPU per request on every port), else asyncio's own.

    The servers run inside this loop, so uvicorn's own ``loop`` setting never applies; its ``http="auto"``
    already picks httptools when installed.
    """
    try:
        import uvloop
    except ImportError:
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory
