"""Errors of the TLS helpers: each with a stable code, raised instead of ssl/OS errors."""

from __future__ import annotations

from identity.errors import IdentityError


class TlsError(IdentityError):
    """A CA or certificate file that cannot be read, written or used."""

    code = "tls_error"
