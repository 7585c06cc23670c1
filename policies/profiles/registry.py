"""The profile registry: which ODRL profiles Pactum understands and which left operands they add.

A policy that declares a profile not registered here, or uses a left operand no registered profile
defines, is never evaluated as if the constraint held: the rule becomes indeterminate and the
decision is deny (see docs/policies.md, "Profiles").
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from policies.errors import PolicyError
from policies.operands import CORE_SPECS, LeftOperandSpec


class UnknownTermError(PolicyError):
    """A profile, left operand or operator that Pactum does not understand."""

    code = "unknown_term"

    def __init__(self, message: str, *, term: str = "", code: str | None = None) -> None:
        super().__init__(message, code=code)
        self.term = term


@dataclass(frozen=True)
class Profile:
    """An ODRL profile plug-in: its identifiers, namespace(s), prefix and left operands."""

    iri: str
    prefix: str
    namespaces: tuple[str, ...]
    left_operands: Mapping[str, LeftOperandSpec]
    aliases: tuple[str, ...] = ()
    description: str = ""
    contexts: Mapping[str, dict] = field(default_factory=lambda: MappingProxyType({}))  # type: ignore[type-arg]


_lock = threading.RLock()
_profiles: dict[str, Profile] = {}
_operands: dict[str, LeftOperandSpec] = {}
_prefixes: dict[str, str] = {}


def register(profile: Profile) -> None:
    """Add (or replace) a profile; its left operands become understood everywhere."""
    from policies.jsonld import register_context

    with _lock:
        for ident in (profile.iri, *profile.aliases):
            _profiles[ident.rstrip("#/")] = profile
        for iri, spec in profile.left_operands.items():
            _operands[iri] = spec
        _prefixes[profile.prefix] = profile.namespaces[0]
    for url, doc in profile.contexts.items():
        register_context(url, doc)


def unregister(iri: str) -> None:
    """Remove a profile and its left operands (tests, hot reload)."""
    with _lock:
        profile = _profiles.get(iri.rstrip("#/"))
        if profile is None:
            return
        for ident in [k for k, v in _profiles.items() if v is profile]:
            del _profiles[ident]
        for operand in profile.left_operands:
            _operands.pop(operand, None)
        if _prefixes.get(profile.prefix) == profile.namespaces[0]:
            del _prefixes[profile.prefix]


def get(iri: str) -> Profile:
    """The profile registered under ``iri`` (or one of its aliases); UnknownTermError otherwise."""
    _ensure_builtins()
    profile = _profiles.get(iri.rstrip("#/"))
    if profile is None:
        raise UnknownTermError(f"ODRL profile {iri} is not supported by Pactum", term=iri)
    return profile


def find(iri: str) -> Profile | None:
    """Like get() but None when unknown."""
    _ensure_builtins()
    return _profiles.get(iri.rstrip("#/"))


def profiles() -> tuple[Profile, ...]:
    """Every registered profile (each once)."""
    _ensure_builtins()
    return tuple({id(p): p for p in _profiles.values()}.values())


def left_operand(iri: str) -> LeftOperandSpec | None:
    """How to decide the left operand ``iri`` (core ODRL or from a profile), or None if not understood."""
    spec = CORE_SPECS.get(iri)
    if spec is not None:
        return spec
    _ensure_builtins()
    return _operands.get(iri)


def prefix_namespace(prefix: str) -> str | None:
    """The namespace behind a registered profile prefix ("xb" -> https://w3id.org/pactum/xborder/v1#)."""
    _ensure_builtins()
    return _prefixes.get(prefix)


def namespace_prefix(iri: str) -> str | None:
    """Compact ``iri`` with a registered profile prefix, or None."""
    _ensure_builtins()
    for prefix, ns in _prefixes.items():
        if iri.startswith(ns) and len(iri) > len(ns):
            return f"{prefix}:{iri[len(ns):]}"
    return None


_builtins_loaded = False


def _ensure_builtins() -> None:
    global _builtins_loaded
    if _builtins_loaded:
        return
    with _lock:  # re-entrant: register() takes it too; other threads wait until both are in
        if _builtins_loaded:
            return
        from policies.profiles import catenax, xborder

        register(xborder.PROFILE)
        register(catenax.PROFILE)
        _builtins_loaded = True
