"""The protocol app: FastAPI for every route, except that DSP messages go straight to their endpoint.

WHY: every DSP message is one small request, and FastAPI's per-request machinery around it (error,
body-limit, exception and exit-stack middleware, the router's scan, dependency solving) cost about four
times what the direct call costs (about 190 us per message against 45 us on the development machine, a
DSP error answered in both cases). The DSP endpoints need none of it: each reads its own body within the
size and depth limits, authenticates, and answers every error it expects with a DSP error body itself.

The direct path keeps what the stack gave them: the same endpoints with the same arguments, problem+json
for anything they do not answer themselves (a 500 for a bug, logged), and the correlation id. Everything
else (another method on a DSP path: 405; an unknown path: 404; a trailing slash; HEAD; ``/health``,
``/.well-known/dspace-version``, ``/openapi.json``) still goes through FastAPI, where the DSP routes are
registered too, so the OpenAPI document lists them as before.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from fastapi import FastAPI
from starlette.requests import Request
from starlette.types import Message, Receive, Scope, Send

from connector.direct_routes import DirectRoutes, Endpoint, problem_for
from connector.logs import CORRELATION_HEADER, correlation

__all__ = ["DspRoute", "Endpoint", "ProtocolApp"]

_CORRELATION_KEY = CORRELATION_HEADER.lower().encode("latin-1")


@dataclass(frozen=True)
class DspRoute:
    """One DSP binding route: registered on FastAPI (OpenAPI, 404/405) and served directly."""

    method: str  # GET or POST
    path: str  # a Starlette path template: /negotiations/{pid}/events, /catalog/datasets/{dataset_id:path}
    endpoint: Endpoint
    name: str  # FastAPI's route name (the OpenAPI operationId is derived from it)
    tag: str


class ProtocolApp(FastAPI):
    """FastAPI, with the DSP routes served directly (see module docstring) and the correlation id of every
    request logged under and echoed back in ``X-Correlation-Id``."""

    direct: DirectRoutes | None = None

    def serve_directly(self, routes: Iterable[DspRoute]) -> None:
        self.direct = DirectRoutes(routes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        corr = _correlation_id(scope)
        if corr is not None:
            send = _echoing(send, corr)
        with correlation(corr):
            # a root path would make Starlette match a shorter path; let it (it never happens: see connector.app)
            found = self.direct.match(scope["method"], scope["path"]) if self.direct and not scope.get(
                "root_path") else None
            if found is None:
                await super().__call__(scope, receive, send)
                return
            endpoint, params = found
            scope["path_params"] = params
            try:
                response = await endpoint(request=Request(scope, receive), **params)
            except Exception as exc:  # noqa: BLE001 - answered as the app's error handlers answer it
                response = problem_for(exc, scope)
            await response(scope, receive, send)


def _correlation_id(scope: Scope) -> str | None:
    for key, value in scope["headers"]:
        if key == _CORRELATION_KEY:
            return str(value.decode("latin-1"))
    return None


def _echoing(send: Send, corr: str) -> Send:
    header = (_CORRELATION_KEY, corr.encode("latin-1"))

    async def send_with_id(message: Message) -> None:
        if message["type"] == "http.response.start":
            message["headers"] = [*message.get("headers", ()), header]
        await send(message)

    return send_with_id
