"""Parse and format DCP scope strings (``alias:discriminator[:operation]``) in the forms used in the wild.

WHY several aliases: the DCP spec form (``org.eclipse.dspace.dcp.vc.type``), the EDC form
(``org.eclipse.edc.vc.type``) and the Tractus-X form (``org.eclipse.tractusx.vc.type``) all circulate; a
credential service must understand all of them, while the form it emits is a configuration choice.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from identity.dcp.errors import DcpError

ScopeForm = Literal["dcp", "edc", "tractusx"]

TYPE_ALIASES: dict[str, ScopeForm] = {
    "org.eclipse.dspace.dcp.vc.type": "dcp",
    "org.eclipse.edc.vc.type": "edc",
    "org.eclipse.tractusx.vc.type": "tractusx",
}
ID_ALIASES = ("org.eclipse.dspace.dcp.vc.id", "org.eclipse.edc.vc.id", "org.eclipse.tractusx.vc.id")
_ALIAS_OF_FORM: dict[ScopeForm, str] = {form: alias for alias, form in TYPE_ALIASES.items()}
OPERATIONS = ("read", "write", "all", "*")


class ScopeError(DcpError):
    """A scope string cannot be understood."""

    code = "invalid_scope"
    status = 400


@dataclass(frozen=True)
class Scope:
    """One parsed scope: access of ``operation`` to credentials selected by type or by id."""

    kind: Literal["type", "id"]
    value: str
    operation: str = "read"

    def allows(self, other: Scope) -> bool:
        """True when a grant of ``self`` covers a request for ``other`` (same target, operation included)."""
        if (self.kind, self.value) != (other.kind, other.value):
            return False
        return self.operation in ("all", "*") or self.operation == other.operation

    def format(self, form: ScopeForm = "dcp") -> str:
        """Render in the given alias form; DCP spec form by default."""
        if self.kind == "type":
            return f"{_ALIAS_OF_FORM[form]}:{self.value}:{self.operation}"
        return f"org.eclipse.dspace.dcp.vc.id:{self.value}:{self.operation}"


def parse_scope(text: str) -> Scope:
    """Parse ``<alias>:<discriminator>[:<operation>]``; the operation defaults to ``read`` (spec form)."""
    if not isinstance(text, str) or not text.strip():
        raise ScopeError("a scope must be a non-empty string")
    for alias in (*TYPE_ALIASES, *ID_ALIASES):
        if text.startswith(alias + ":"):
            rest = text[len(alias) + 1 :]
            discriminator, _, operation = rest.partition(":")
            if not discriminator:
                raise ScopeError(f"scope {text!r} names no credential type or id")
            operation = operation or "read"
            if operation not in OPERATIONS:
                raise ScopeError(f"scope {text!r} has unknown operation {operation!r}")
            kind: Literal["type", "id"] = "type" if alias in TYPE_ALIASES else "id"
            return Scope(kind, discriminator, operation)
    raise ScopeError(f"unsupported scope alias in {text!r} (expected e.g. org.eclipse.dspace.dcp.vc.type:X:read)")


def parse_scopes(texts: Iterable[str]) -> list[Scope]:
    """Parse several scopes, failing on the first bad one."""
    return [parse_scope(t) for t in texts]


def type_scope(credential_type: str, operation: str = "read", form: ScopeForm = "dcp") -> str:
    """The scope string that asks for credentials of ``credential_type``."""
    return Scope("type", credential_type, operation).format(form)


def granted(requested: Scope, grants: Iterable[Scope]) -> bool:
    """True when any grant covers the requested scope."""
    return any(g.allows(requested) for g in grants)
