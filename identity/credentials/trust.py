"""Which issuers are trusted for which credential types.

A credential is trusted only if its issuer is trusted for EVERY specific type it claims (so an issuer trusted
for MembershipCredential cannot smuggle in a DismantlerCredential by adding the type). ``"*"`` trusts an
issuer for any type. Types are matched literally or by their local name (``cx:Foo`` / ``https://…#Foo``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from identity.errors import IdentityError

WILDCARD = "*"
GENERIC_TYPES = frozenset({"VerifiableCredential"})


class TrustListError(IdentityError):
    """A trust list file or mapping is malformed."""

    code = "trust_list_invalid"


def _local_name(type_name: str) -> str:
    for sep in ("#", "/", ":"):
        if sep in type_name:
            type_name = type_name.rsplit(sep, 1)[1]
    return type_name


class TrustList:
    """Mapping credential type -> set of trusted issuer DIDs (``"*"`` = any type)."""

    def __init__(self, mapping: Mapping[str, Iterable[str]] | None = None) -> None:
        self._by_type: dict[str, set[str]] = {}
        for type_name, issuers in (mapping or {}).items():
            if isinstance(issuers, str) or not isinstance(type_name, str):
                raise TrustListError(f"trust list entry for {type_name!r} must be a list of issuer DIDs")
            for issuer in issuers:
                self.add(type_name, issuer)

    @classmethod
    def from_file(cls, path: str | Path) -> TrustList:
        """Load ``{"<type>": ["did:..."]}`` JSON."""
        try:
            data = json.loads(Path(path).read_text("utf-8"))
        except (OSError, ValueError) as exc:
            raise TrustListError(f"cannot read trust list {path}: {exc}") from None
        if not isinstance(data, dict):
            raise TrustListError("trust list must be a JSON object of type -> [issuer DIDs]")
        return cls(data)

    def add(self, type_name: str, issuer: str) -> None:
        if not isinstance(issuer, str) or not issuer:
            raise TrustListError("issuer must be a non-empty string")
        self._by_type.setdefault(_local_name(type_name) if type_name != WILDCARD else WILDCARD, set()).add(issuer)

    def remove(self, type_name: str, issuer: str) -> None:
        self._by_type.get(_local_name(type_name) if type_name != WILDCARD else WILDCARD, set()).discard(issuer)

    def to_dict(self) -> dict[str, list[str]]:
        return {t: sorted(issuers) for t, issuers in sorted(self._by_type.items())}

    def untrusted_types(self, issuer: str, types: Iterable[str]) -> list[str]:
        """The claimed types ``issuer`` is NOT trusted for (empty list = trusted)."""
        if issuer in self._by_type.get(WILDCARD, ()):
            return []
        specific = [t for t in types if t not in GENERIC_TYPES] or ["VerifiableCredential"]
        return [t for t in specific if issuer not in self._by_type.get(_local_name(t), ())]

    def is_trusted(self, issuer: str, types: Iterable[str]) -> bool:
        """Pure decision: is ``issuer`` trusted for every specific type in ``types``?"""
        return not self.untrusted_types(issuer, types)

    def __repr__(self) -> str:
        return f"TrustList({self.to_dict()!r})"


def as_trust_list(value: TrustList | Mapping[str, Any] | None) -> TrustList | None:
    """Accept a TrustList or a plain mapping (convenient for callers and config)."""
    if value is None or isinstance(value, TrustList):
        return value
    return TrustList(value)
