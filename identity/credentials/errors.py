"""Credential errors. Verification never raises these to callers (it reports codes); issuing does."""

from __future__ import annotations

from identity.errors import IdentityError


class CredentialError(IdentityError):
    """A credential, presentation or JWT is malformed or fails a check; ``code`` names which."""

    code = "malformed"


class CredentialTooLarge(CredentialError):
    """Input exceeds the byte limit (defence against multi-megabyte tokens)."""

    code = "too_large"


class CredentialTooDeep(CredentialError):
    """JSON nesting exceeds the depth limit (defence against stack exhaustion)."""

    code = "too_deep"


class AlgorithmNotAllowed(CredentialError):
    """JOSE ``alg`` outside the allow-list (``none`` and HMAC are never allowed)."""

    code = "alg_not_allowed"


class SignatureInvalid(CredentialError):
    """The signature does not verify with the resolved key."""

    code = "signature_invalid"
