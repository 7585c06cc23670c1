"""One place that turns every error an HTTP edge can meet into RFC 9457 problem+json.

WHY: the four surfaces (protocol, management, data, identity) must never leak a traceback or answer
with FastAPI's default ``{"detail": ...}``; operators and counterparties get the same shape everywhere:
``type``, ``title``, ``status``, ``detail`` and Pactum's stable ``code``. ``install_error_handlers(app)``
is called on every app the connector builds.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from connector.errors import ConnectorError
from identity.errors import IdentityError
from policies.errors import PolicyError

PROBLEM_JSON = "application/problem+json"
log = logging.getLogger("pactum.connector.http")

_HTTP_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
               405: "method_not_allowed", 406: "not_acceptable", 409: "conflict", 413: "body_too_large",
               415: "unsupported_media_type", 422: "request_invalid", 429: "too_many_requests"}


class BodyTooLarge(ConnectorError):
    code = "body_too_large"
    status = 413


def problem(status: int, code: str, detail: str, **extra: Any) -> dict[str, Any]:
    """The problem+json body (a plain dict, for callers that embed or log it)."""
    return {"type": f"urn:pactum:error:{code}", "title": code.replace("_", " "), "status": status,
            "detail": detail, "code": code, **extra}


def problem_response(status: int, code: str, detail: str, **extra: Any) -> JSONResponse:
    """An RFC 9457 problem+json answer with the stable ``code``."""
    return JSONResponse(problem(status, code, detail, **extra), status_code=status, media_type=PROBLEM_JSON)


def _status_of(exc: Exception, default: int) -> int:
    raw = getattr(exc, "status", None) or getattr(exc, "status_code", None)
    try:
        status = int(raw) if raw is not None else default
    except (TypeError, ValueError):
        return default
    return status if 400 <= status <= 599 else default


def connector_problem(exc: ConnectorError) -> JSONResponse:
    return problem_response(_status_of(exc, 400), exc.code, str(exc))


def policy_problem(exc: PolicyError) -> JSONResponse:
    """Policy errors are the caller's input (a policy that does not parse or uses unknown terms): 400."""
    return problem_response(400, f"policy_{exc.code}" if not exc.code.startswith("policy") else exc.code, str(exc))


def identity_problem(exc: IdentityError) -> JSONResponse:
    return problem_response(_status_of(exc, 400), str(getattr(exc, "code", "identity_error")), str(exc))


def validation_detail(exc: RequestValidationError) -> str:
    """FastAPI's validation errors as one readable line: ``where: what`` for the first, plus a count."""
    errors = exc.errors()
    if not errors:
        return "the request is not valid"
    first = errors[0]
    where = ".".join(str(p) for p in first.get("loc", ()) if p != "body") or "body"
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{where}: {first.get('msg', 'invalid')}{more}"


def install_error_handlers(app: FastAPI) -> None:
    """Map ConnectorError, PolicyError, IdentityError, validation and HTTP errors to problem+json."""

    @app.exception_handler(ConnectorError)
    async def _connector(_request: Request, exc: ConnectorError) -> JSONResponse:
        return connector_problem(exc)

    @app.exception_handler(PolicyError)
    async def _policy(_request: Request, exc: PolicyError) -> JSONResponse:
        return policy_problem(exc)

    @app.exception_handler(IdentityError)
    async def _identity(_request: Request, exc: IdentityError) -> JSONResponse:
        return identity_problem(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return problem_response(400, "request_invalid", validation_detail(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        detail = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
        response = problem_response(exc.status_code, code, detail)
        for name, value in (exc.headers or {}).items():
            response.headers[name] = value
        return response

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.error("unhandled error on %s %s: %s", request.method, request.url.path, exc, exc_info=exc)
        return problem_response(500, "internal_error", "the connector failed to handle this request; see its log")
