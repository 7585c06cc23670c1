"""HTTP helpers shared by the DCP servers: problem+json answers and bearer-token extraction."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

from fastapi import Request
from fastapi.responses import JSONResponse

from identity.dcp.errors import DcpError, TokenError
from identity.errors import IdentityError

PROBLEM_TYPE_BASE = "https://pactum.dev/problems/"


def problem(status: int, code: str, detail: str, **extra: Any) -> JSONResponse:
    """An RFC 9457 problem+json response with a stable ``code`` member."""
    body = {"type": PROBLEM_TYPE_BASE + code, "title": code.replace("_", " "), "status": status,
            "detail": detail, "code": code, **extra}
    headers = {"WWW-Authenticate": 'Bearer error="invalid_token"'} if status == 401 else None
    return JSONResponse(body, status_code=status, media_type="application/problem+json", headers=headers)


def problem_from(exc: IdentityError) -> JSONResponse:
    """Map any identity error to problem+json; DCP errors carry their own status, others are 400."""
    status = exc.status if isinstance(exc, DcpError) else 400
    return problem(status, exc.code, str(exc))


def bearer_token(request: Request) -> str:
    """The token of an ``Authorization: Bearer`` header; TokenError(401) when missing."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise TokenError("missing 'Authorization: Bearer <self-issued ID token>' header", code="token_missing")
    return token.strip()


MAX_BODY_BYTES = 2 * 1024 * 1024  # a CredentialMessage with a handful of JWTs is a few KiB


async def json_body(request: Request, *, max_bytes: int = MAX_BODY_BYTES) -> Any:
    """The request body parsed as JSON; DcpError 400 when it is not JSON, 413 when it is too large."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise DcpError(f"request body exceeds {max_bytes} bytes", code="body_too_large", status=413)
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > max_bytes:
            raise DcpError(f"request body exceeds {max_bytes} bytes", code="body_too_large", status=413)
    try:
        return json.loads(body)
    except ValueError:
        raise DcpError("request body is not valid JSON", code="body_not_json") from None


def did_document_path(did: str) -> str:
    """The HTTP path a did:web document is fetched from (``/.well-known/did.json`` or ``/<path>/did.json``)."""
    if not did.startswith("did:web:"):
        return "/.well-known/did.json"
    from identity.dids.web import did_web_url

    return urlsplit(did_web_url(did)).path
