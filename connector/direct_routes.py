"""Routes answered straight from the ASGI call, before FastAPI's middleware, router scan and dependencies.

WHY: the protocol app's DSP messages and the management routes an operator calls for every process are
small requests whose endpoints read their own bodies and answer their own errors; FastAPI's per-request
machinery around them cost more CPU than the endpoints themselves. The apps that serve such routes
(:class:`connector.protocol.direct.ProtocolApp`, :class:`connector.management.common.ManagementApp`) keep them
registered on FastAPI too (OpenAPI, 404, 405, redirects), match them here first, and answer what an endpoint
raises with :func:`problem_for`, the same problem+json the app's error handlers give.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from starlette.responses import Response
from starlette.routing import compile_path
from starlette.types import Scope

from connector.errors import ConnectorError
from connector.http_errors import connector_problem, identity_problem, policy_problem, problem_response
from identity.errors import IdentityError
from policies.errors import PolicyError

log = logging.getLogger("pactum.connector.http")

Endpoint = Callable[..., Awaitable[Response]]  # called with ``request=`` and the path parameters by name


class RouteLike(Protocol):
    """What a directly served route declares (a Starlette path template, e.g. ``/negotiations/{pid}``)."""

    @property
    def method(self) -> str: ...

    @property
    def path(self) -> str: ...

    @property
    def endpoint(self) -> Endpoint: ...


@dataclass(frozen=True)
class _Compiled:
    method: str
    regex: re.Pattern[str]
    convertors: dict[str, Any]
    endpoint: Endpoint


class DirectRoutes:
    """Routes in registration order (below ``prefix``), matched on method and path as Starlette matches them."""

    def __init__(self, routes: Iterable[RouteLike], prefix: str = "") -> None:
        self._routes: list[_Compiled] = []
        for route in routes:
            regex, _format, convertors = compile_path(prefix + route.path)
            self._routes.append(_Compiled(route.method, regex, convertors, route.endpoint))

    def match(self, method: str, path: str) -> tuple[Endpoint, dict[str, Any]] | None:
        """The endpoint and converted path parameters of the first route matching both, else None."""
        for route in self._routes:
            if route.method != method:
                continue
            found = route.regex.match(path)
            if found is not None:
                params = {key: route.convertors[key].convert(value) for key, value in found.groupdict().items()}
                return route.endpoint, params
        return None


def problem_for(exc: Exception, scope: Scope) -> Response:
    """What the app's error handlers (``connector.http_errors``) answer for an error an endpoint raised."""
    if isinstance(exc, ConnectorError):
        return connector_problem(exc)
    if isinstance(exc, PolicyError):
        return policy_problem(exc)
    if isinstance(exc, IdentityError):
        return identity_problem(exc)
    log.error("unhandled error on %s %s: %s", scope["method"], scope["path"], exc, exc_info=exc)
    return problem_response(500, "internal_error", "the connector failed to handle this request; see its log")
