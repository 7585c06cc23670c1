"""What an evaluation is asked (Request) and what is true right now (StateOfWorld), as plain data.

The connector builds these from DSP messages, verified credentials and its own stores; the engine only
reads them. ``EvalContext`` is the per-evaluation view that left-operand resolvers use: it caches
derived facts (valid credentials, group closures) so each is computed at most once per evaluation.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from types import MappingProxyType
from typing import Any, Literal

from policies.errors import PolicyError
from policies.vocab import ODRL, expand


class MissingType:
    """Marker for "no value known" (distinct from None, which may be a real value)."""

    _instance: MissingType | None = None

    def __new__(cls) -> MissingType:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "MISSING"

    def __bool__(self) -> bool:
        return False


MISSING: Any = MissingType()


class DeferredType:
    """The actual value recorded for a constraint this evaluation was asked not to decide."""

    def __repr__(self) -> str:
        return "DEFERRED"


DEFERRED: Any = DeferredType()
_EMPTY: Mapping[str, Any] = MappingProxyType({})


class FactError(PolicyError):
    """A request or state of the world that cannot be evaluated (e.g. a naive datetime)."""

    code = "invalid_facts"


@dataclass(frozen=True)
class Request:
    """Who wants to do what to which asset. ``action`` is an IRI or an ODRL short name ("use")."""

    action: str
    target: str | None = None
    assignee: str | None = None
    assigner: str | None = None
    purpose: str | None = None
    extra: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)

    def __post_init__(self) -> None:
        if not isinstance(self.action, str) or not self.action:
            raise FactError("Request.action must be a non-empty string (an IRI or an ODRL short name)")
        for name in ("target", "assignee", "assigner", "purpose"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, str):
                raise FactError(f"Request.{name} must be a string or None, not {type(value).__name__}")
        if not isinstance(self.extra, Mapping):
            raise FactError("Request.extra must be a mapping")


@dataclass(frozen=True)
class Event:
    """Something that happened and may fulfil a duty: an action performed on a target at a time.

    ``duty`` names the duty's uid when the event is about one specific duty; ``outcome`` "unperformed"
    records that the duty was attested as not performed (violated), e.g. by an auditor.
    ``parameters`` are the event's own facts (payAmount, ...), checked against the duty's refinements.
    """

    action: str
    target: str | None = None
    time: datetime | None = None
    duty: str | None = None
    outcome: Literal["performed", "unperformed"] = "performed"
    parameters: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)


@dataclass(frozen=True)
class StateOfWorld:
    """The facts the evaluation may use. ``now`` must be timezone-aware.

    ``memberships`` maps an asset or party IRI to the collections it is ``odrl:partOf`` (used for
    AssetCollection/PartyCollection targets and for isPartOf/isA).
    """

    now: datetime
    facts: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)
    credentials: Sequence[Mapping[str, Any]] = ()
    counters: Mapping[str, int] = field(default_factory=lambda: _EMPTY)
    events: Sequence[Event] = ()
    asset: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)
    agreement_time: datetime | None = None
    memberships: Mapping[str, Sequence[str]] = field(default_factory=lambda: _EMPTY)

    def __post_init__(self) -> None:
        if not isinstance(self.now, datetime) or self.now.tzinfo is None:
            raise FactError("StateOfWorld.now must be a timezone-aware datetime")
        for name in ("facts", "counters", "asset", "memberships"):
            if not isinstance(getattr(self, name), Mapping):
                raise FactError(f"StateOfWorld.{name} must be a mapping")
        if isinstance(self.credentials, str | bytes | Mapping) or not all(
                isinstance(c, Mapping) for c in self.credentials):
            raise FactError("StateOfWorld.credentials must be a sequence of credential objects (mappings)")
        if not all(isinstance(e, Event) for e in self.events):
            raise FactError("StateOfWorld.events must be Event objects")
        if self.agreement_time is not None and self.agreement_time.tzinfo is None:
            raise FactError("StateOfWorld.agreement_time must be timezone-aware")


@lru_cache(maxsize=8192)
def _key_variants(key: str) -> tuple[str, ...]:
    """A fact may be keyed by short name, prefixed name or IRI; try all spellings."""
    iri = expand(key)
    variants = [key, iri]
    if iri.startswith(ODRL):
        variants.append(iri[len(ODRL):])
        variants.append("odrl:" + iri[len(ODRL):])
    else:
        from policies.profiles.registry import namespace_prefix

        compact = namespace_prefix(iri)
        if compact is not None:
            variants.append(compact)
            variants.append(compact.split(":", 1)[1])
        for sep in ("#", "/"):
            if sep in iri:
                variants.append(iri.rsplit(sep, 1)[1])
                break
    return tuple(dict.fromkeys(variants))


@lru_cache(maxsize=1024)
def _type_names(type_name: str) -> tuple[str, ...]:
    """A credential type as written and by its local name (IRI types end in #Name or /Name)."""
    text = str(type_name)
    return (text, text.rsplit("#", 1)[-1].rsplit("/", 1)[-1])


def _parse_time(value: Any) -> datetime | None:
    if isinstance(value, str):
        return _parse_time_text(value)
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return None


@lru_cache(maxsize=4096)
def _parse_time_text(value: str) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


class EvalContext:
    """Per-evaluation view of request + state with small caches; resolvers receive this."""

    __slots__ = ("request", "state", "now", "_cache", "rule_uid", "event", "has_memberships", "policy_members",
                 "deferred")

    def __init__(self, request: Request, state: StateOfWorld,
                 policy_members: Mapping[str, Sequence[str]] | None = None,
                 deferred: frozenset[str] = frozenset()) -> None:
        self.deferred = deferred  # left-operand IRIs not decided in this evaluation (see evaluate's ``defer``)
        self.request = request
        self.state = state
        self.now = state.now
        self.policy_members = policy_members or _EMPTY
        self.has_memberships = bool(state.memberships) or bool(policy_members)
        self._cache: dict[Any, Any] = {}
        self.rule_uid: str | None = None  # the rule being evaluated (for per-rule counters)
        self.event: Event | None = None  # set while checking a duty's refinements against an event

    def lookup(self, key: str) -> Any:
        """A fact named ``key`` from the event (when checking a duty), request.extra, then state.facts."""
        # no caching: with the usual empty mappings this is a few dict probes (hot path)
        event = self.event
        extra = self.request.extra
        facts = self.state.facts
        if not extra and not facts and event is None:
            return MISSING
        variants = _key_variants(key)
        for source in (event.parameters if event is not None else None, extra, facts):
            if source:
                for variant in variants:
                    if variant in source:
                        return source[variant]
        return MISSING

    def asset_fact(self, *names: str) -> Any:
        """A property of the target asset (state.asset), trying each name in turn."""
        for name in names:
            for variant in _key_variants(name):
                if variant in self.state.asset:
                    return self.state.asset[variant]
        return MISSING

    def valid_credentials(self) -> tuple[Mapping[str, Any], ...]:
        """The counterparty's verified credentials that are within their validity period now."""
        hit = self._cache.get("credentials")
        if hit is not None:
            return hit  # type: ignore[no-any-return]
        valid = []
        for cred in self.state.credentials:
            start = _parse_time(cred.get("validFrom") or cred.get("issuanceDate"))
            end = _parse_time(cred.get("validUntil") or cred.get("expirationDate"))
            if start is not None and self.now < start:
                continue
            if end is not None and self.now > end:
                continue
            valid.append(cred)
        result = tuple(valid)
        self._cache["credentials"] = result
        return result

    def has_credential_type(self, name: str) -> bool:
        """Whether a valid credential of type ``name`` (as written or by local name) is held.

        Checks the type before the validity period, so it is cheap in the common case (hot path).
        """
        for cred in self.state.credentials:
            types = cred.get("type", ())
            if isinstance(types, str):
                types = (types,)
            if name in types or any(name in _type_names(t) for t in types):
                if cred in self.valid_credentials():
                    return True
        return False

    def credential_types(self) -> frozenset[str]:
        """Types of the valid credentials, by their short name (e.g. "MembershipCredential")."""
        hit = self._cache.get("credential_types")
        if hit is not None:
            return hit  # type: ignore[no-any-return]
        names: set[str] = set()
        for cred in self.valid_credentials():
            types = cred.get("type", ())
            for t in [types] if isinstance(types, str) else types:
                names.update(_type_names(t))
        names.discard("VerifiableCredential")
        result = frozenset(names)
        self._cache["credential_types"] = result
        return result

    def memberships(self, iri: str) -> frozenset[str]:
        """Every collection ``iri`` is transitively part of: state.memberships, state.asset and the
        policy document's own odrl:partOf statements."""
        cache_key = ("member", iri)
        hit = self._cache.get(cache_key)
        if hit is not None:
            return hit  # type: ignore[no-any-return]
        state_members = self.state.memberships
        policy_members = self.policy_members
        if policy_members:
            def direct_of(item: str) -> list[str]:
                return list(state_members.get(item, ())) + list(policy_members.get(item, ()))
        else:
            def direct_of(item: str) -> list[str]:
                return list(state_members.get(item, ()))
        extra: tuple[str, ...] = ()
        if iri == self.request.target:
            part_of = self.asset_fact("partOf")
            if part_of is not MISSING:
                extra = (part_of,) if isinstance(part_of, str) else tuple(part_of)
        seen: set[str] = set()
        todo = direct_of(iri) + list(extra)
        while todo:
            item = todo.pop()
            if item not in seen:
                seen.add(item)
                todo.extend(direct_of(item))
        result = frozenset(seen)
        self._cache[cache_key] = result
        return result
