"""Read a request and a state of the world from the short JSON/YAML form authors write by hand.

Short forms (documented in docs/policies.md, "CLI"):

    request: {"action": "use", "target": "...", "assignee": "...", "assigner": "...", "purpose": "...",
              "extra": {...}}
    state:   {"now": "...", "facts": {...}, "credentials": [...], "counters": {...}, "events": [...],
              "asset": {...}, "agreement_time": "...", "memberships": {...}}

Unknown keys are errors, not silently ignored, because a typo ("purpse") would otherwise change a decision
without anyone noticing.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import yaml

from policies import Event, Request, StateOfWorld
from policies.errors import PolicyError

REQUEST_KEYS = ("action", "target", "assignee", "assigner", "purpose", "extra")
STATE_KEYS = ("now", "facts", "credentials", "counters", "events", "asset", "agreement_time", "memberships")
EVENT_KEYS = ("action", "target", "time", "duty", "outcome", "parameters")


class InputError(PolicyError):
    """A request, state of the world or test file that cannot be understood."""

    code = "invalid_input"


def _check_keys(data: Mapping[str, Any], allowed: tuple[str, ...], what: str) -> None:
    unknown = sorted(set(data) - set(allowed))
    if unknown:
        raise InputError(f"{what}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(allowed)}")


def _mapping(value: Any, what: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InputError(f"{what} must be a mapping, got {type(value).__name__}")
    return dict(value)


def _optional_str(data: Mapping[str, Any], key: str, what: str) -> str | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise InputError(f"{what}.{key} must be a string, got {type(value).__name__}")
    return value


def parse_time(value: Any, what: str) -> datetime:
    """An ISO 8601 date-time (YAML may already give a datetime); no zone means UTC."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, date):  # YAML reads 2026-01-02 as a date: midnight UTC
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    if not isinstance(value, str):
        raise InputError(f"{what} must be an ISO 8601 date-time string, got {type(value).__name__}")
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError as exc:
        raise InputError(f"{what} is not an ISO 8601 date-time: {value!r}") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def request_from_dict(data: Any) -> Request:
    """A Request from its short form; ``action`` is required."""
    data = _mapping(data, "request")
    _check_keys(data, REQUEST_KEYS, "request")
    action = _optional_str(data, "action", "request")
    if not action:
        raise InputError("request.action is required (e.g. \"use\")")
    return Request(
        action=action,
        target=_optional_str(data, "target", "request"),
        assignee=_optional_str(data, "assignee", "request"),
        assigner=_optional_str(data, "assigner", "request"),
        purpose=_optional_str(data, "purpose", "request"),
        extra=_mapping(data.get("extra"), "request.extra"),
    )


def _event(data: Any, index: int) -> Event:
    what = f"state.events[{index}]"
    data = _mapping(data, what)
    _check_keys(data, EVENT_KEYS, what)
    action = _optional_str(data, "action", what)
    if not action:
        raise InputError(f"{what}.action is required")
    outcome = data.get("outcome", "performed")
    if outcome not in ("performed", "unperformed"):
        raise InputError(f"{what}.outcome must be 'performed' or 'unperformed', got {outcome!r}")
    time = data.get("time")
    return Event(action=action, target=_optional_str(data, "target", what),
                 time=parse_time(time, f"{what}.time") if time is not None else None,
                 duty=_optional_str(data, "duty", what), outcome=outcome,
                 parameters=_mapping(data.get("parameters"), f"{what}.parameters"))


def state_from_dict(data: Any, *, default_now: datetime | None = None) -> StateOfWorld:
    """A StateOfWorld from its short form; ``now`` defaults to ``default_now`` (else the current time)."""
    data = _mapping(data, "state")
    _check_keys(data, STATE_KEYS, "state")
    now = parse_time(data["now"], "state.now") if data.get("now") is not None else (
        default_now or datetime.now(UTC))
    credentials = data.get("credentials") or []
    if not isinstance(credentials, list) or not all(isinstance(c, Mapping) for c in credentials):
        raise InputError("state.credentials must be a list of credential objects")
    counters = _mapping(data.get("counters"), "state.counters")
    for key, count in counters.items():
        if not isinstance(count, int) or isinstance(count, bool):
            raise InputError(f"state.counters[{key!r}] must be an integer, got {count!r}")
    events = data.get("events") or []
    if not isinstance(events, list):
        raise InputError("state.events must be a list")
    memberships = _mapping(data.get("memberships"), "state.memberships")
    agreement = data.get("agreement_time")
    return StateOfWorld(
        now=now,
        facts=_mapping(data.get("facts"), "state.facts"),
        credentials=tuple(credentials),
        counters=counters,
        events=tuple(_event(e, i) for i, e in enumerate(events)),
        asset=_mapping(data.get("asset"), "state.asset"),
        agreement_time=parse_time(agreement, "state.agreement_time") if agreement is not None else None,
        memberships={k: [v] if isinstance(v, str) else list(v) for k, v in memberships.items()},
    )


def read_structured(path: str | Path) -> Any:
    """Parse a JSON or YAML file (YAML is a superset, but JSON errors read better from the JSON parser)."""
    file = Path(path)
    if not file.is_file():
        raise InputError(f"{path}: no such file")
    text = file.read_text(encoding="utf-8")
    if file.suffix == ".json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(f"{path}:{exc.lineno}:{exc.colno}: invalid JSON: {exc.msg}") from exc
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark is not None else str(path)
        raise InputError(f"{where}: invalid YAML: {getattr(exc, 'problem', exc)}") from exc


def _looks_like_rdf(path: Path, text: str) -> bool:
    if path.suffix in (".ttl", ".jsonld"):
        return True
    stripped = text.lstrip()
    return stripped.startswith("@prefix") or stripped.startswith("{") and '"@context"' in stripped


def load_request(path: str | Path) -> Request:
    """A request from a short-form JSON/YAML file, or a Turtle / JSON-LD ``odrl:Request``."""
    file = Path(path)
    if file.is_file() and _looks_like_rdf(file, file.read_text(encoding="utf-8")):
        from .rdf_inputs import request_from_rdf

        return request_from_rdf(file)
    return request_from_dict(read_structured(path))


def load_state(path: str | Path) -> StateOfWorld:
    """A state of the world from a short-form JSON/YAML file, or a Turtle / JSON-LD SolidLab-style state."""
    file = Path(path)
    if file.is_file() and _looks_like_rdf(file, file.read_text(encoding="utf-8")):
        from .rdf_inputs import state_from_rdf

        return state_from_rdf(file)
    return state_from_dict(read_structured(path))
