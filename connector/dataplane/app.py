"""The data port: token-guarded data requests, token refresh, receipts, duty reports, and the push inbox.

Routes (all answer problem+json on errors):

- ``GET  /data/{transferId}[/{path}]``            bearer EDR token; Range supported when nothing is rewritten
- ``POST /token``                                 ``grant_type=refresh_token&refresh_token=...`` (form)
- ``POST /receipts/{transferId}``                 ``{"receipt": <JWS signed by the consumer>}``
- ``POST /duties/{transferId}/fulfilment``        ``{"statement": <JWS signed by the consumer>}``
- ``PUT  /inbox/{transferId}``                    consumer side: a provider pushes the bytes here
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import uuid
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from connector.dataplane.errors import DataPlaneError, TokenInvalid
from connector.dataplane.service import DUTY_HEADER, DataPlane, Release
from connector.errors import ConnectorError
from connector.logs import CORRELATION_HEADER, correlation
from identity.errors import IdentityError
from policies.errors import PolicyError

PROBLEM = "application/problem+json"
log = logging.getLogger("pactum.dataplane")


def problem(status: int, title: str, detail: str, code: str) -> JSONResponse:
    return JSONResponse({"type": f"https://w3id.org/pactum/problems/{code}", "title": title, "status": status,
                         "detail": detail, "code": code}, status_code=status, media_type=PROBLEM)


def _bearer(request: Request) -> str | None:
    return _bearer_value(request.headers.get("authorization"))


def _bearer_value(value: str | None) -> str | None:
    if not value:
        return None
    scheme, _, token = value.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token else value.strip()


async def _json_body(request: Request, limit: int) -> dict[str, Any]:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise DataPlaneError(f"request body over the {limit}-byte limit", code="body_too_large", status=413)
    raw = bytearray()
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > limit:
            raise DataPlaneError(f"request body over the {limit}-byte limit", code="body_too_large", status=413)
    try:
        data = json.loads(raw)
    except ValueError:
        raise DataPlaneError("request body is not JSON", code="body_invalid") from None
    if not isinstance(data, dict):
        raise DataPlaneError("request body must be a JSON object", code="body_invalid")
    return data


class CorrelationMiddleware:
    """Take ``X-Correlation-Id`` from the request (or mint one), log under it, and echo it back.

    A plain ASGI middleware: unlike ``@app.middleware("http")`` it adds no extra task per request and
    never buffers a streaming body.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        raw = dict(scope.get("headers") or []).get(CORRELATION_HEADER.lower().encode("latin-1"))
        corr = raw.decode("latin-1") if raw else uuid.uuid4().hex

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (CORRELATION_HEADER.encode("latin-1"),
                                                            corr.encode("latin-1"))]
            await send(message)

        with correlation(corr):
            await self.app(scope, receive, send_with_id)


DATA_PREFIX = "/data/"
_CORRELATION_KEY = CORRELATION_HEADER.lower().encode("latin-1")


class DataPortApp(FastAPI):
    """FastAPI for every route, except that ``GET /data/...`` goes straight to :attr:`data_endpoint`.

    WHY: the data request is the one path served thousands of times per second; FastAPI's middleware
    stack (error, telemetry, body-limit, exception and exit-stack layers, routing) cost about as much CPU as
    Pactum's own checks there. The direct path keeps the same behaviour: correlation id in and out,
    problem+json for every refusal, and every check in :meth:`DataPlane.release`.
    """

    data_endpoint: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        endpoint = self.data_endpoint
        if (endpoint is not None and scope["type"] == "http" and scope["method"] == "GET"
                and scope["path"].startswith(DATA_PREFIX)):
            await endpoint(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


def _release_headers(release: Release) -> tuple[int, dict[str, str]]:
    """Status and headers of a granted data request: uses so far, byte ranges when nothing was rewritten."""
    body = release.body
    headers: dict[str, str] = {"X-Pactum-Uses": str(release.grant.uses)}
    status = 200
    if not release.transformed:
        headers["Accept-Ranges"] = "bytes"
        if body.byte_range is not None and body.size is not None:
            status = 206
            headers["Content-Range"] = f"bytes {body.byte_range.start}-{body.byte_range.end}/{body.size}"
    return status, headers


def _content_type(media_type: str) -> bytes:
    """As Starlette's ``Response`` writes it: text types get ``charset=utf-8`` unless they name one."""
    if media_type.startswith("text/") and "charset=" not in media_type.lower():
        media_type += "; charset=utf-8"
    return media_type.encode("latin-1")


def error_response(exc: Exception) -> JSONResponse:
    """The problem+json answer for an error raised while serving (the same mapping as the app's handlers)."""
    if isinstance(exc, ConnectorError):
        return problem(exc.status, exc.__class__.__name__, str(exc), exc.code)
    if isinstance(exc, IdentityError):
        return problem(400, exc.__class__.__name__, str(exc), getattr(exc, "code", "identity_error"))
    if isinstance(exc, PolicyError):
        return problem(422, exc.__class__.__name__, str(exc), getattr(exc, "code", "policy_error"))
    log.exception("data request failed unexpectedly")
    return problem(500, "Internal error", "the data plane failed to serve this request", "internal_error")


def create_data_app(dataplane: DataPlane, *, max_body_bytes: int = 1_048_576, monitor: bool = False) -> FastAPI:
    """The data-port app over an existing :class:`DataPlane`.

    With ``monitor`` the app's lifespan runs the policy monitor (duties, deadlines, re-evaluation) and
    writes a final signed audit checkpoint on shutdown.
    """

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        from connector.usage import PolicyMonitor  # here: connector.usage imports this package

        running = PolicyMonitor(dataplane) if monitor else None
        if running is not None:
            running.start()
        try:
            yield
        finally:
            if running is not None:
                await running.stop()
            await dataplane.drain()
            dataplane.audit.close()

    app = DataPortApp(title="Pactum data plane", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)
    app.state.dataplane = dataplane

    app.add_middleware(CorrelationMiddleware)

    @app.exception_handler(ConnectorError)
    async def connector_error(_request: Request, exc: ConnectorError) -> JSONResponse:
        return problem(exc.status, exc.__class__.__name__, str(exc), exc.code)

    @app.exception_handler(IdentityError)
    async def identity_error(_request: Request, exc: IdentityError) -> JSONResponse:
        return problem(400, exc.__class__.__name__, str(exc), getattr(exc, "code", "identity_error"))

    @app.exception_handler(PolicyError)
    async def policy_error(_request: Request, exc: PolicyError) -> JSONResponse:
        return problem(422, exc.__class__.__name__, str(exc), getattr(exc, "code", "policy_error"))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return problem(exc.status_code, "HTTP error", str(exc.detail), "http_error")

    async def serve(request: Request, transfer_id: str, path: str | None) -> Response:
        return await serve_release(await dataplane.release(transfer_id, _bearer(request), sub_path=path or None,
                                                           range_header=request.headers.get("range")))

    async def serve_release(release: Release) -> Response:
        body = release.body
        status, headers = _release_headers(release)
        if release.data is not None:
            return Response(release.data, status_code=status, media_type=body.content_type, headers=headers)
        if not release.transformed and body.length is not None:
            headers["Content-Length"] = str(body.length)
        assert release.stream is not None
        return StreamingResponse(release.stream, status_code=status, media_type=body.content_type, headers=headers)

    # plain Starlette routes: the hottest path skips FastAPI's per-request dependency solving
    async def data(request: Request) -> Response:
        return await serve(request, request.path_params["transfer_id"], request.path_params.get("path"))

    app.add_route("/data/{transfer_id}", data, methods=["GET"])  # HEAD (and GET if the fast path is off)
    app.add_route("/data/{transfer_id}/{path:path}", data, methods=["GET"])

    async def data_endpoint(scope: Scope, receive: Receive, send: Send) -> None:
        headers = dict(scope["headers"])
        raw_corr = headers.get(_CORRELATION_KEY)
        corr = raw_corr.decode("latin-1") if raw_corr else os.urandom(16).hex()  # 32 hex digits, as uuid4().hex
        transfer_id, _, sub_path = scope["path"][len(DATA_PREFIX):].partition("/")
        with correlation(corr):
            response: Response
            try:
                if not transfer_id:
                    raise DataPlaneError("name a transfer: /data/{transferId}[/{path}]", code="not_found",
                                         status=404)
                auth = headers.get(b"authorization")
                rng = headers.get(b"range")
                release = await dataplane.release(
                    transfer_id, _bearer_value(auth.decode("latin-1") if auth else None),
                    sub_path=sub_path or None, range_header=rng.decode("latin-1") if rng else None)
                small = release.data
                if small is None:
                    response = await serve_release(release)
            except Exception as exc:  # noqa: BLE001 - every failure becomes a problem+json answer
                small, response = None, error_response(exc)
            if small is not None:  # a small body, already counted and logged: two sends, no response object
                status, extra = _release_headers(release)
                await send({"type": "http.response.start", "status": status, "headers": [
                    (b"content-length", str(len(small)).encode("latin-1")),
                    (b"content-type", _content_type(release.body.content_type)),
                    *((k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in extra.items()),
                    (_CORRELATION_KEY, corr.encode("latin-1"))]})
                await send({"type": "http.response.body", "body": small})
                return
            response.headers[CORRELATION_HEADER] = corr
            await response(scope, receive, send)

    app.data_endpoint = data_endpoint

    @app.post("/token")
    async def refresh(request: Request) -> JSONResponse:
        raw = await request.body()
        if len(raw) > 16_384:
            raise DataPlaneError("token request too large", code="body_too_large", status=413)
        form = {k: v[0] for k, v in parse_qs(raw.decode("utf-8", "replace")).items() if v}
        if form.get("grant_type") != "refresh_token" or not isinstance(form.get("refresh_token"), str):
            raise TokenInvalid("expected grant_type=refresh_token and a refresh_token", code="token_request_invalid",
                               status=400)
        try:
            issued = dataplane.tokens.refresh(str(form["refresh_token"]))
        except TokenInvalid as exc:
            dataplane.audit.record("edr.refresh_refused", decision="deny", code=exc.code, reason=str(exc))
            raise
        return JSONResponse({"access_token": issued.access, "refresh_token": issued.refresh, "token_type": "bearer",
                             "expires_in": dataplane.tokens.access_lifetime})

    @app.post("/receipts/{transfer_id}")
    async def receipt(request: Request, transfer_id: str) -> JSONResponse:
        body = await _json_body(request, max_body_bytes)
        if not isinstance(body.get("receipt"), str):
            raise DataPlaneError("expected {\"receipt\": <compact JWS>}", code="body_invalid")
        await dataplane.accept_receipt(transfer_id, body["receipt"])
        return JSONResponse({"stored": True}, status_code=201)

    @app.post("/duties/{transfer_id}/fulfilment")
    async def fulfilment(request: Request, transfer_id: str) -> JSONResponse:
        body = await _json_body(request, max_body_bytes)
        if not isinstance(body.get("statement"), str):
            raise DataPlaneError("expected {\"statement\": <compact JWS>}", code="body_invalid")
        return JSONResponse(await dataplane.accept_fulfilment(transfer_id, body["statement"]))

    @app.put("/inbox/{transfer_id}")
    async def inbox(request: Request, transfer_id: str) -> JSONResponse:
        result = await dataplane.receive_push(transfer_id, _bearer(request), request.stream(),
                                              duty_url=request.headers.get(DUTY_HEADER))
        return JSONResponse({"receipt": result.receipt, "digest": result.digest, "size": result.size})

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    return app


def create_app(ctx: Any) -> FastAPI:
    """The data-port app for a ConnectorContext (uses ``ctx.dataplane``, creating it when missing).

    Its lifespan runs the policy monitor for the whole connector, so serving the data port with
    ``lifespan="on"`` is all the connector app has to do.
    """
    dataplane = ctx.dataplane
    if dataplane is None:
        dataplane = DataPlane.from_context(ctx)
        ctx.dataplane = dataplane
    return create_data_app(dataplane, max_body_bytes=ctx.settings.limits.max_body_bytes, monitor=True)
