"""Reading an untrusted request body within ``limits.max_body_bytes``, for every HTTP edge (DSP, management).

WHY shared: the size limit is one setting and one answer (413 ``body_too_large``) on every port.
"""

from __future__ import annotations

from starlette.requests import Request

from connector.http_errors import BodyTooLarge


async def read_limited(request: Request, limit: int) -> bytes:
    """The raw body, refused (413 ``BodyTooLarge``) as soon as it passes ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge(f"the body is {declared} bytes; the limit is {limit}")
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > limit:
            raise BodyTooLarge(f"the body is larger than the limit of {limit} bytes")
    return bytes(body)

