"""Errors of the DSP edge; each maps to a DSP error body (``code`` and ``reason``) with the right status."""

from __future__ import annotations

from connector.errors import ConnectorError


class ProtocolError(ConnectorError):
    """A DSP message is malformed, unexpected or not allowed now."""

    code = "protocol_error"
    status = 400


class MessageInvalid(ProtocolError):
    """The message does not match the official DSP JSON Schema (the reason names the schema path)."""

    code = "message_invalid"


class InvalidTransition(ProtocolError):
    """The message is valid but not allowed in the process's current state (DSP: 400)."""

    code = "invalid_transition"

    def __init__(self, message: str, *, allowed: tuple[str, ...] = (), code: str | None = None,
                 status: int | None = None) -> None:
        super().__init__(message, code=code, status=status)
        self.allowed = allowed


class ProcessNotFound(ProtocolError):
    """Unknown process, or one the caller is not a party to (DSP answers 404 for both)."""

    code = "not_found"
    status = 404


class CounterpartyError(ProtocolError):
    """The counterparty answered a DSP message with an error or could not be reached."""

    code = "counterparty_error"
    status = 502
