"""The policies package's exception hierarchy; callers map it to problem+json or one CLI line."""

from __future__ import annotations


class PolicyError(Exception):
    """Base of every error this package raises on purpose (bad input, unknown terms, ...)."""

    code: str = "policy_error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code

    @property
    def message(self) -> str:
        return str(self)
