"""Typed values and the twelve ODRL operators, as pure functions.

Right operands are converted to Python values once, at compile time (datetime, Decimal, timedelta, str);
left-operand values coming from facts are coerced to the right operand's type at evaluation time.
A comparison that cannot be made (wrong type, unparsable value) answers ``None``: indeterminate,
never silently true or false.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from policies.errors import PolicyError
from policies.model import Term
from policies.vocab import ODRL, XSD

_DURATION = re.compile(
    r"^(?P<sign>-)?P(?:(?P<y>\d+(?:\.\d+)?)Y)?(?:(?P<mo>\d+(?:\.\d+)?)M)?(?:(?P<w>\d+(?:\.\d+)?)W)?"
    r"(?:(?P<d>\d+(?:\.\d+)?)D)?(?:T(?:(?P<h>\d+(?:\.\d+)?)H)?(?:(?P<mi>\d+(?:\.\d+)?)M)?"
    r"(?:(?P<s>\d+(?:\.\d+)?)S)?)?$"
)

NUMERIC_TYPES = frozenset(
    XSD + n
    for n in ("decimal", "integer", "int", "long", "short", "byte", "double", "float", "nonNegativeInteger",
              "positiveInteger", "negativeInteger", "nonPositiveInteger", "unsignedInt", "unsignedLong")
)
DURATION_TYPES = frozenset(XSD + n for n in ("duration", "dayTimeDuration", "yearMonthDuration"))


class InvalidValueError(PolicyError):
    """A right operand whose lexical form does not match its datatype."""

    code = "invalid_value"


def parse_duration(text: str) -> timedelta:
    """xsd:duration -> timedelta. Years count 365 days and months 30 days (documented approximation)."""
    m = _DURATION.match(text.strip())
    if not m or text.strip() in ("P", "-P") or text.strip().endswith("T"):
        raise InvalidValueError(f"not an xsd:duration: {text!r}")
    parts = {k: float(v) if v else 0.0 for k, v in m.groupdict().items() if k != "sign"}
    days = parts["y"] * 365 + parts["mo"] * 30 + parts["w"] * 7 + parts["d"]
    delta = timedelta(days=days, hours=parts["h"], minutes=parts["mi"], seconds=parts["s"])
    return -delta if m.group("sign") else delta


def format_duration(delta: timedelta) -> str:
    """timedelta -> xsd:duration (days and seconds only; exact)."""
    sign = "-" if delta < timedelta(0) else ""
    delta = abs(delta)
    out = f"{sign}P{delta.days}D" if delta.days else f"{sign}P"
    secs = delta.seconds + delta.microseconds / 1_000_000
    if secs or not delta.days:
        out += f"T{secs:g}S"
    return out


def parse_datetime(text: str) -> datetime:
    """xsd:dateTime -> aware datetime (no zone means UTC)."""
    t = text.strip().replace("Z", "+00:00")
    if " " in t and "T" not in t:
        t = t.replace(" ", "T", 1)
    try:
        value = datetime.fromisoformat(t)
    except ValueError as exc:
        raise InvalidValueError(f"not an xsd:dateTime: {text!r}") from exc
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def term_to_python(term: Term, data_type: str | None = None) -> Any:
    """The Python value of a right operand (datatype from the literal, else the constraint's dataType)."""
    if term.is_iri:
        return term.value
    dt = term.datatype if term.datatype and term.datatype != XSD + "string" else data_type
    text = term.value
    if dt is None or dt == XSD + "string" or dt == XSD + "anyURI":
        return text
    try:
        if dt == XSD + "dateTime" or dt == XSD + "dateTimeStamp":
            return parse_datetime(text)
        if dt == XSD + "date":
            return date.fromisoformat(text.strip()[:10])
        if dt in DURATION_TYPES:
            return parse_duration(text)
        if dt in NUMERIC_TYPES:
            return Decimal(text.strip())
        if dt == XSD + "boolean":
            return text.strip() in ("true", "1")
    except (ValueError, InvalidOperation) as exc:
        raise InvalidValueError(f"right operand {text!r} is not a valid {dt}") from exc
    return text


def _as_datetime(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    if isinstance(value, str):
        try:
            return parse_datetime(value)
        except InvalidValueError:
            return None
    return None


def _as_decimal(value: Any) -> Decimal | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, Decimal):
        return value
    if isinstance(value, int | float | str):
        try:
            return Decimal(str(value))
        except InvalidOperation:
            return None
    return None


def _as_duration(value: Any) -> timedelta | None:
    if isinstance(value, timedelta):
        return value
    if isinstance(value, str):
        try:
            return parse_duration(value)
        except InvalidValueError:
            return None
    return None


def coerce(value: Any, like: Any) -> Any:
    """Convert a fact value to the type of the right operand ``like``; None if impossible."""
    if isinstance(like, bool):
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value in ("true", "false"):
            return value == "true"
        return None
    if isinstance(like, datetime | date):
        return _as_datetime(value)
    if isinstance(like, Decimal):
        return _as_decimal(value)
    if isinstance(like, timedelta):
        return _as_duration(value)
    if isinstance(like, str):
        if isinstance(value, str):
            return value
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, int | Decimal):
            return str(value)
        return None
    return value


def normalise_right(value: Any) -> Any:
    """Dates compare as midnight-UTC datetimes."""
    if isinstance(value, date) and not isinstance(value, datetime):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    return value


def as_values(value: Any) -> tuple[Any, ...]:
    """A left-operand value as a tuple (facts may be scalars or collections)."""
    if isinstance(value, list | tuple | set | frozenset):
        return tuple(value)
    return (value,)


Broader = Callable[[Any], Iterable[Any]]


def _same(left: Any, right: Any) -> bool | None:
    c = coerce(left, right)
    if c is None:
        return None
    return bool(c == right)


def _order(left: Any, right: Any, rank: dict[str, int] | None) -> tuple[Any, Any] | None:
    if rank is not None:
        lr, rr = rank.get(str(left)), rank.get(str(right))
        if lr is None or rr is None:
            return None
        return lr, rr
    c = coerce(left, right)
    if c is None or isinstance(right, bool):
        return None
    return c, right


def _compare(op: str, left: Any, rights: tuple[Any, ...], rank: dict[str, int] | None) -> bool | None:
    if len(rights) != 1:
        return None
    right = rights[0]
    lefts = as_values(left)
    if not lefts:
        return None
    results = []
    for item in lefts:
        pair = _order(item, right, rank)
        if pair is None:
            return None
        a, b = pair
        try:
            if op == "lt":
                results.append(a < b)
            elif op == "lteq":
                results.append(a <= b)
            elif op == "gt":
                results.append(a > b)
            else:
                results.append(a >= b)
        except TypeError:
            return None
    return all(results)


def _member(value: Any, candidates: tuple[Any, ...], broader: Broader) -> bool | None:
    """value equals a candidate, or belongs (via groups/partOf) to one."""
    unknown = False
    for cand in candidates:
        same = _same(value, cand)
        if same:
            return True
        if same is None:
            unknown = True
    if isinstance(value, str):
        groups = set(broader(value))
        if groups and any(isinstance(c, str) and c in groups for c in candidates):
            return True
    return None if unknown else False


def apply_operator(
    op: str, left: Any, rights: tuple[Any, ...], *, is_list: bool, broader: Broader,
    rank: dict[str, int] | None = None,
) -> bool | None:
    """Decide ``left op rights``. ``op`` is the local name of an ODRL operator."""
    if op in ("lt", "lteq", "gt", "gteq"):
        return _compare(op, left, rights, rank)
    lefts = as_values(left)
    if op in ("eq", "neq"):
        if len(lefts) > 1 or isinstance(left, list | tuple | set | frozenset):
            # a multi-valued fact (e.g. several credentials): eq means "contains"; list == list is set equality
            if is_list or len(rights) > 1:
                left_set = {str(v) for v in lefts}
                result: bool | None = left_set == {str(r) for r in rights}
            else:
                result = any(_same(v, rights[0]) for v in lefts)
        elif len(rights) == 1 and not is_list:
            result = _same(lefts[0], rights[0])
        else:
            result = _member(lefts[0], rights, lambda _v: ())
        if result is None:
            return None
        return result if op == "eq" else not result
    if op in ("isA", "isPartOf"):
        outcomes = [_member(v, rights, broader) for v in lefts]
        if any(o is None for o in outcomes) and not all(outcomes):
            return None
        return all(outcomes)
    if op == "hasPart":
        left_set = set(lefts)
        found = []
        for r in rights:
            found.append(r in left_set or any(v in set(broader(r)) for v in lefts))
        return all(found)
    if op == "isAllOf":
        return all(any(_same(v, r) for v in lefts) for r in rights)
    if op in ("isAnyOf", "isNoneOf"):
        outcomes = [_member(v, rights, broader) for v in lefts]
        if any(outcomes):
            hit: bool | None = True
        elif any(o is None for o in outcomes):
            hit = None
        else:
            hit = False
        if hit is None:
            return None
        return hit if op == "isAnyOf" else not hit
    return None


def operator_name(iri: str) -> str | None:
    """Local name of a core ODRL operator IRI, else None."""
    if iri.startswith(ODRL):
        name = iri[len(ODRL):]
        if name in ("eq", "neq", "lt", "lteq", "gt", "gteq", "isA", "hasPart", "isPartOf", "isAllOf", "isAnyOf",
                    "isNoneOf"):
            return name
    return None


_ORDER_OPS = {
    "lt": lambda a, b: a < b, "lteq": lambda a, b: a <= b, "gt": lambda a, b: a > b, "gteq": lambda a, b: a >= b,
}
FastCheck = Callable[[Any], Any]  # value -> True / False / NotImplemented (take the general path)


def make_fast_check(op: str, rights: tuple[Any, ...], *, is_list: bool, rank: dict[str, int] | None,
                    groups: dict[str, frozenset[str]]) -> FastCheck | None:
    """A specialised comparison for the common shapes (one typed right operand, sets of strings).

    Precomputed once per constraint; answers NotImplemented whenever the value is not of the expected
    type, so the general path (coercion, lists, memberships) still decides those. Same results, fewer
    allocations: this is what makes >= 50,000 evaluations per second possible.
    """
    if rank is not None or not rights:
        return None
    if len(rights) == 1 and not is_list:
        right = rights[0]
        if isinstance(right, bool):
            return None
        if isinstance(right, str) and op in ("eq", "neq") and not groups:
            want = op == "eq"

            def str_eq(v: Any) -> Any:
                if type(v) is str:
                    return (v == right) is want
                return NotImplemented

            return str_eq
        compare = _ORDER_OPS.get(op)
        if compare is not None and isinstance(right, Decimal):
            def num_cmp(v: Any) -> Any:
                t = type(v)
                if t is int or t is Decimal:  # floats go the general way (compared by their decimal text)
                    return compare(v, right)
                return NotImplemented

            return num_cmp
        if compare is not None and isinstance(right, datetime):
            def dt_cmp(v: Any) -> Any:
                if type(v) is datetime and v.tzinfo is not None:
                    return compare(v, right)
                return NotImplemented

            return dt_cmp
        if compare is not None and isinstance(right, timedelta):
            def td_cmp(v: Any) -> Any:
                if type(v) is timedelta:
                    return compare(v, right)
                return NotImplemented

            return td_cmp
    if op in ("isAnyOf", "isNoneOf", "isPartOf", "isA") and all(isinstance(r, str) for r in rights):
        rset = frozenset(rights)
        want = op != "isNoneOf"

        def str_in(v: Any) -> Any:
            if type(v) is str:
                hit = v in rset or (bool(groups) and not rset.isdisjoint(groups.get(v, ())))
                return hit is want
            return NotImplemented

        return str_in
    return None
