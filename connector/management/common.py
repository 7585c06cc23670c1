"""Shared pieces of the management API: API-key auth, bounded JSON(-LD) bodies, QuerySpec, IdResponse, output.

Every management router (assets, policy and contract definitions, catalog requests, negotiations,
transfers, agreements, EDRs) uses these so auth, limits, error shapes and JSON-LD handling are identical.
:class:`ManagementApp` serves the few routes an operator calls for every process (start, query, read)
without FastAPI's per-request machinery; see its docstring.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session, sessionmaker
from starlette.types import Receive, Scope, Send

from connector import jsonld
from connector.config import Settings, management_api_key
from connector.direct_routes import DirectRoutes, Endpoint, problem_for
from connector.errors import ConnectorError
from connector.http_body import read_limited
from connector.http_errors import BodyTooLarge, problem, problem_response
from connector.querying import (
    Criterion,
    QueryError,
    QuerySpec,
    apply_filters,
    apply_query,
    field_key,
    query_spec_from_json,
    query_spec_from_node,
)

__all__ = [
    "API_KEY_HEADER", "BodyTooLarge", "Criterion", "DirectRoute", "ManagementApp", "ManagementContext",
    "QueryError", "QuerySpec",
    "Unauthorized", "apply_filters", "apply_query", "compacted", "field_key", "id_response", "json_response",
    "problem", "problem_response", "query_spec_from_json", "query_spec_from_node", "read_json_body",
    "read_jsonld_body", "read_query_spec", "require_api_key",
]

API_KEY_HEADER = "X-Api-Key"
JSON_TYPES = ("application/json", "application/ld+json")


class ManagementContext(Protocol):
    """What the management routers need from E's ``ConnectorContext``."""

    @property
    def settings(self) -> Settings: ...

    @property
    def sessions(self) -> sessionmaker[Session]: ...

    @property
    def did(self) -> str: ...


class Unauthorized(ConnectorError):
    code = "unauthorized"
    status = 401


class UnsupportedMediaType(ConnectorError):
    code = "unsupported_media_type"
    status = 415


class BodyInvalid(ConnectorError):
    code = "body_invalid"
    status = 400


# ---- auth ------------------------------------------------------------------------------------------------

def presented_key(request: Request) -> str | None:
    """The key from ``X-Api-Key`` (any case) or ``Authorization: Bearer``."""
    key = request.headers.get(API_KEY_HEADER)
    if key:
        return key.strip()
    auth = request.headers.get("authorization", "")
    scheme, _, value = auth.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return None


def require_api_key(settings: Settings) -> Callable[[Request], Awaitable[None]]:
    """A FastAPI dependency accepting only the configured management key (constant-time comparison).

    Fails closed: with no key configured every call is refused, so a forgotten setting never opens the API.
    """
    expected = management_api_key(settings)
    expected_bytes = expected.encode("utf-8") if expected else None

    async def check(request: Request) -> None:
        if expected_bytes is None:
            raise Unauthorized("the management API has no key configured (set management.api_key_env or "
                               "management.api_key); every request is refused", code="api_key_not_configured")
        given = presented_key(request)
        if given is None:
            raise Unauthorized(f"missing API key: send it as '{API_KEY_HEADER}: <key>' or "
                               f"'Authorization: Bearer <key>'", code="api_key_missing")
        if not hmac.compare_digest(given.encode("utf-8"), expected_bytes):
            raise Unauthorized("the API key is not valid", code="api_key_invalid")

    return check


# ---- bodies ----------------------------------------------------------------------------------------------

def json_depth(value: Any, limit: int) -> int:
    """Nesting depth of ``value``; stops early (raising) once ``limit`` is passed."""
    depth = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, level = stack.pop()
        if isinstance(node, dict | list):
            if level > limit:
                raise BodyInvalid(f"the JSON body is nested deeper than {limit} levels", code="json_too_deep")
            depth = max(depth, level)
            children = node.values() if isinstance(node, dict) else node
            stack.extend((child, level + 1) for child in children)
    return depth


async def read_body_bytes(request: Request, settings: Settings) -> bytes:
    """The raw body, refused (413) as soon as it passes ``limits.max_body_bytes``."""
    return await read_limited(request, settings.limits.max_body_bytes)


def media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";", 1)[0].strip().lower()


async def read_json_body(request: Request, settings: Settings, *, required: bool = True) -> Any:
    """A JSON body within the size and depth limits; ``None`` for an empty optional body."""
    kind = media_type(request)
    if kind and kind not in JSON_TYPES and not kind.endswith("+json"):
        raise UnsupportedMediaType(f"expected application/json or application/ld+json, got {kind}")
    raw = await read_body_bytes(request, settings)
    if not raw.strip():
        if required:
            raise BodyInvalid("a JSON body is required", code="body_missing")
        return None
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BodyInvalid(f"the body is not valid JSON: {exc}", code="json_invalid") from exc
    limit = settings.limits.max_json_depth
    # a value nests at most as deep as it has arrays and objects, so a body with no more brackets than the
    # limit (every request an operator usually sends) needs no walk over the parsed value (18 us of a request)
    if raw.count(b"{") + raw.count(b"[") > limit:
        json_depth(data, limit)
    return data


def check_type(node: dict[str, Any], what: str) -> dict[str, Any]:
    """A body that declares an ``@type`` must declare ``what`` (e.g. a PolicyDefinition posted to assets is a 400)."""
    declared = jsonld.types_of(node)
    if declared and jsonld.EDC + what not in declared:
        shown = ", ".join(jsonld.compact_iri(t) for t in declared)
        raise BodyInvalid(f"expected a {what}, but the body's @type is {shown}", code="type_mismatch")
    return node


async def read_jsonld_body(request: Request, settings: Settings, *, what: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The body as given and as one expanded JSON-LD node (bare terms in the EDC namespace) of type ``what``."""
    data = await read_json_body(request, settings)
    if not isinstance(data, dict):
        raise BodyInvalid(f"the body must be one JSON object (a {what})")
    return data, check_type(jsonld.expand_one(data, what=what), what)


async def read_query_spec(request: Request, settings: Settings) -> QuerySpec:
    """An optional QuerySpec body (EDC's ``POST .../request``); no body means the first page, unfiltered."""
    data = await read_json_body(request, settings, required=False)
    if data is None:
        return QuerySpec()
    if not isinstance(data, dict):
        raise BodyInvalid("the body must be a QuerySpec object")
    return query_spec_from_json(data)


# ---- output ----------------------------------------------------------------------------------------------

def id_response(resource_id: str, created_at: int) -> dict[str, Any]:
    """EDC's ``IdResponse`` for a creation (``createdAt`` in epoch milliseconds)."""
    return {"@context": dict(jsonld.EDC_CONTEXT), "@type": "IdResponse", "@id": resource_id,
            "createdAt": created_at}


def _with_lists(node: dict[str, Any], lists: Sequence[str]) -> dict[str, Any]:
    """Compaction turns one-element arrays into single values; keep the named keys arrays, as EDC clients expect."""
    for key in lists:
        if key in node and not isinstance(node[key], list):
            node[key] = [node[key]]
    return node


def compacted(documents: Mapping[str, Any] | Sequence[Mapping[str, Any]], *, lists: Sequence[str] = ()) -> Any:
    """One document or a list, compacted with the EDC context; each item carries its own ``@context``.

    ``lists`` names top-level keys that stay arrays even with one element (e.g. ``assetsSelector``).
    """
    if isinstance(documents, Mapping):
        return _with_lists(jsonld.compact(dict(documents)), lists)
    items = list(documents)
    if not items:
        return []
    graph = jsonld.compact({"@graph": items})
    nodes = graph.get("@graph")
    if nodes is None:  # a single node is not wrapped in @graph
        nodes = [{k: v for k, v in graph.items() if k != "@context"}]
    context = graph.get("@context", jsonld.EDC_CONTEXT)
    return [_with_lists({"@context": context, **node}, lists) for node in nodes]


def json_response(content: Any, status: int = 200) -> JSONResponse:
    return JSONResponse(content, status_code=status)


# ---- served directly -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class DirectRoute:
    """One management route (also registered on FastAPI, with the same endpoint) that is served directly."""

    method: str  # GET or POST
    path: str  # a Starlette path template below the management prefix: /v3/transferprocesses/{transfer_id}
    endpoint: Endpoint


class ManagementApp(FastAPI):
    """FastAPI, except that the routes given to :meth:`serve_directly` go straight to their endpoint.

    WHY: an operator (or a benchmark watching its negotiations) calls a few routes for every process:
    start, query by ids, read, read the state. Behind nested routers, FastAPI's per-request work for one of
    them (middleware stack, a scan of every included router, dependency solving, the API key checked
    twice) cost more CPU than the route itself: about 0.7 ms of a 3 ms query on the development machine.
    The direct path keeps what the stack gave these routes: the API key is checked first, by the same
    check; every error becomes the same problem+json (:func:`connector.direct_routes.problem_for`, the
    app's handlers' answers). Everything else (another method: 405; a trailing slash; HEAD; unknown
    paths; every other route and ``/openapi.json``) still goes through FastAPI, where the same endpoints
    are registered, so the OpenAPI document is unchanged.
    """

    _direct: DirectRoutes | None = None
    _check_key: Callable[[Request], Awaitable[None]] | None = None

    def serve_directly(self, routes: Iterable[DirectRoute], *, settings: Settings, prefix: str) -> None:
        """Serve ``routes`` (mounted at ``prefix`` on this app, behind the management key) directly."""
        self._direct = DirectRoutes(routes, prefix)
        self._check_key = require_api_key(settings)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # a root path would make Starlette match a shorter path; let it (connector.app never sets one)
        found = self._direct.match(scope["method"], scope["path"]) if (
            self._direct and scope["type"] == "http" and not scope.get("root_path")) else None
        if found is None:
            await super().__call__(scope, receive, send)
            return
        endpoint, params = found
        scope["path_params"] = params
        request = Request(scope, receive)
        try:
            assert self._check_key is not None
            await self._check_key(request)
            response = await endpoint(request=request, **params)
        except Exception as exc:  # noqa: BLE001 - answered as the app's error handlers answer it
            response = problem_for(exc, scope)
        await response(scope, receive, send)
