"""Data-plane errors: each has a stable ``code`` and the HTTP status the data port answers with."""

from __future__ import annotations

from connector.errors import ConnectorError


class DataPlaneError(ConnectorError):
    code = "dataplane_error"
    status = 400


class TokenInvalid(DataPlaneError):
    """Missing, malformed, badly signed, expired, revoked or for another transfer."""

    code = "token_invalid"
    status = 401


class AccessRefused(DataPlaneError):
    """The token is fine but the agreement or transfer no longer allows this use."""

    code = "access_refused"
    status = 403


class UsageExhausted(AccessRefused):
    code = "usage_exhausted"


class TransferNotActive(AccessRefused):
    code = "transfer_not_active"


class PathRefused(DataPlaneError):
    """A sub path that would leave the asset's folder (``..``, absolute, symlink) or does not exist."""

    code = "path_refused"
    status = 403


class RangeNotSatisfiable(DataPlaneError):
    code = "range_not_satisfiable"
    status = 416


class SourceUnavailable(DataPlaneError):
    code = "source_unavailable"
    status = 502


class UnknownTransfer(DataPlaneError):
    code = "unknown_transfer"
    status = 404


class SinkError(DataPlaneError):
    code = "sink_error"
    status = 502
