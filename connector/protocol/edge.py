"""The HTTP edge of the DSP surface: read a body safely, authenticate, answer DSP error bodies.

Every inbound body is size-limited (``limits.max_body_bytes``) and depth-limited (``limits.max_json_depth``)
before it is parsed further, normalised to the compact DSP form with pinned contexts, and validated against
the official schema of the expected ``@type``.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

from fastapi import Request
from fastapi.responses import JSONResponse

from connector.errors import ConnectorError
from connector.http_body import read_limited
from connector.logs import CORRELATION_HEADER, set_correlation_id
from connector.protocol.errors import MessageInvalid
from connector.protocol.jsonld import DSP_CONTEXT, json_depth, normalise
from connector.protocol.schemas import validate_message
from connector.trust import Party
from identity.errors import IdentityError
from policies.errors import PolicyError

if TYPE_CHECKING:
    from connector.context import ConnectorContext

log = logging.getLogger("pactum.connector.protocol")


async def read_json(request: Request, ctx: ConnectorContext) -> Any:
    """The body as JSON within the configured size and depth limits."""
    body = await read_limited(request, ctx.settings.limits.max_body_bytes)
    try:
        data = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise MessageInvalid(f"request body is not valid JSON: {str(exc)[:200]}", code="body_not_json") from exc
    depth_limit = ctx.settings.limits.max_json_depth
    # a value is at most one level deeper than the number of arrays and objects in it, so a body with fewer
    # brackets than the limit (every DSP message we expect) needs no walk over the parsed value
    brackets = body.count(b"{") + body.count(b"[")
    if brackets >= depth_limit and json_depth(data, depth_limit) > depth_limit:
        raise MessageInvalid(f"JSON nesting deeper than the limit of {depth_limit}", code="json_too_deep")
    return data


async def read_message(request: Request, ctx: ConnectorContext, *expected: str) -> dict[str, Any]:
    """Read, normalise and schema-validate a DSP message whose @type must be one of ``expected``."""
    message = normalise(await read_json(request, ctx))
    message_type = message.get("@type")
    if message_type not in expected:
        raise MessageInvalid(f"unexpected @type {message_type!r} here; expected {' or '.join(expected)}",
                             code="unexpected_type")
    return validate_message(message, str(message_type))


async def authenticate(request: Request, ctx: ConnectorContext) -> Party:
    """The verified caller of a DSP request (TrustError 401 otherwise); sets the correlation id."""
    set_correlation_id(request.headers.get(CORRELATION_HEADER))
    return await ctx.trust.verify_request(request.headers.get("authorization"))


# Every error a DSP handler may raise on purpose; each becomes a DSP error body, never a traceback.
DSP_ERRORS: tuple[type[Exception], ...] = (ConnectorError, PolicyError, IdentityError)


def error_pids(message: dict[str, Any], path_pid_value: str | None, path_pid: str | None) -> tuple[str, str]:
    """(providerPid, consumerPid) for an error body: the message's, with the pid from the URL path filling
    in the side the message did not name (the error schemas require both)."""
    provider_pid, consumer_pid = message.get("providerPid"), message.get("consumerPid")
    if path_pid_value and not isinstance(provider_pid if path_pid == "providerPid" else consumer_pid, str):
        if path_pid == "providerPid":
            provider_pid = path_pid_value
        else:
            consumer_pid = path_pid_value
    return str(provider_pid or ""), str(consumer_pid or "")


def dsp_error(error_type: str, exc: Exception, *, provider_pid: str | None = None,
              consumer_pid: str | None = None) -> JSONResponse:
    """A ContractNegotiationError / TransferError / CatalogError body with ``code`` and ``reason``."""
    body: dict[str, Any] = {"@context": [DSP_CONTEXT], "@type": error_type}
    if error_type != "CatalogError":  # the schemas require both pids; an unknown one is an empty string
        body["providerPid"] = provider_pid or ""
        body["consumerPid"] = consumer_pid or ""
    code = str(getattr(exc, "code", "error"))
    status = int(getattr(exc, "status", 400) or 400) if isinstance(exc, ConnectorError | IdentityError) else 400
    body["code"] = code
    body["reason"] = [str(exc)]
    allowed = getattr(exc, "allowed", None)
    if allowed:
        body["reason"].append("allowed now: " + ", ".join(allowed))
    log.info("DSP %s %s: %s", error_type, code, exc)
    return JSONResponse(body, status_code=status)
