"""The connector's exception hierarchy; the HTTP edge maps it to problem+json, the CLI to one line."""

from __future__ import annotations


class ConnectorError(Exception):
    """Base of every error the connector raises on purpose.

    ``status`` is the HTTP status the edge answers with; ``code`` a stable machine-readable id.
    """

    code: str = "connector_error"
    status: int = 400

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status

    @property
    def message(self) -> str:
        return str(self)


class ConfigError(ConnectorError):
    """A configuration file or environment variable is invalid."""

    code = "config_invalid"


class NotFoundError(ConnectorError):
    code = "not_found"
    status = 404


class ConflictError(ConnectorError):
    code = "conflict"
    status = 409
