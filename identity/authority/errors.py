"""Authority errors, mapped to problem+json by the app and to one line by the CLI."""

from __future__ import annotations

from identity.dcp.errors import DcpError


class AuthorityError(DcpError):
    """Any failure of the authority that a caller can act on; ``status`` is the HTTP status to answer."""

    code = "authority_error"
    status = 400


class SettingsError(AuthorityError):
    """The authority configuration file or an environment override is invalid."""

    code = "settings_invalid"


class UnknownParticipant(AuthorityError):
    """The DID is not in the participant directory."""

    code = "unknown_participant"
    status = 403


class UnknownCredential(AuthorityError):
    """No issued credential (or credential definition) with that id."""

    code = "unknown_credential"
    status = 404
