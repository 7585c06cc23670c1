"""DCP-specific errors; each carries a stable ``code`` so edges can map it to HTTP status and problem+json."""

from __future__ import annotations

from identity.errors import IdentityError


class DcpError(IdentityError):
    """Any failure in a DCP exchange; ``status`` is the HTTP status an edge should answer with."""

    code = "dcp_error"
    status: int = 400

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None) -> None:
        super().__init__(message, code=code)
        if status is not None:
            self.status = status


class MessageInvalid(DcpError):
    """A DCP message does not match its JSON schema."""

    code = "message_invalid"
    status = 400


class TokenError(DcpError):
    """A self-issued ID token or access token was rejected; ``code`` names the exact reason."""

    code = "token_invalid"
    status = 401


class NotAuthorized(DcpError):
    """The caller is authenticated but not allowed to do this."""

    code = "forbidden"
    status = 403


class NotSupported(DcpError):
    """A valid request for a feature this implementation does not offer (e.g. presentation definitions)."""

    code = "not_implemented"
    status = 501


class NotFound(DcpError):
    """The addressed resource does not exist."""

    code = "not_found"
    status = 404


class RemoteError(DcpError):
    """A counterparty answered with an error or could not be reached."""

    code = "remote_error"
    status = 502
