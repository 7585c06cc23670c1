"""EDC's QuerySpec (filterExpression, sortField, sortOrder, offset, limit) as data, and applied to SQL.

WHY here and not in the management package: the catalog builder evaluates contract definitions'
``assetsSelector`` criteria with the same semantics, and E's and G's list endpoints apply QuerySpecs to their
own tables; all of them share one parser and one translation to SQLAlchemy so ``=``/``in``/``like`` mean the
same everywhere. Field names are given by each caller as a mapping from the names clients may use to
columns, so an unknown field is a clear 400 rather than a silent empty result.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy import Boolean, ColumnElement, Select, String, and_, bindparam, cast, func
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import QueryableAttribute

from connector import jsonld
from connector.errors import ConnectorError

OPERATORS = ("=", "!=", "<", ">", "<=", ">=", "in", "like", "ilike")
MAX_LIMIT = 1000
DEFAULT_LIMIT = 50


class QueryError(ConnectorError):
    """A QuerySpec or criterion that cannot be applied (unknown field, operator, bad paging)."""

    code = "query_invalid"
    status = 400


@dataclass(frozen=True)
class Criterion:
    """One ``operandLeft operator operandRight`` condition."""

    left: str
    operator: str
    right: Any

    def to_json(self) -> dict[str, Any]:
        return {"@type": "Criterion", "operandLeft": self.left, "operator": self.operator,
                "operandRight": self.right}


@dataclass(frozen=True)
class QuerySpec:
    """Which rows, in which order, which page."""

    filters: tuple[Criterion, ...] = ()
    sort_field: str | None = None
    sort_order: Literal["ASC", "DESC"] = "ASC"
    offset: int = 0
    limit: int = DEFAULT_LIMIT
    extra: Mapping[str, Any] = field(default_factory=dict)


def _check_operator(operator: Any) -> str:
    op = str(operator).strip().lower() if isinstance(operator, str) else None
    if op not in OPERATORS:
        raise QueryError(f"operator {operator!r} is not supported; use one of {', '.join(OPERATORS)}",
                         code="query_operator_unknown")
    return op


def criterion_from_node(node: Mapping[str, Any]) -> Criterion:
    """A Criterion from an expanded JSON-LD node (``edc:operandLeft`` ...)."""
    left = jsonld.first(node, jsonld.EDC + "operandLeft")
    if not isinstance(left, str) or not left:
        raise QueryError("a criterion needs 'operandLeft' (the field to compare)", code="query_criterion_invalid")
    operator = _check_operator(jsonld.first(node, jsonld.EDC + "operator"))
    raw_right = jsonld.values(node, jsonld.EDC + "operandRight")
    if not raw_right:
        raise QueryError(f"criterion on {left!r} needs 'operandRight'", code="query_criterion_invalid")
    right: Any = [jsonld.plain(v) for v in raw_right] if len(raw_right) > 1 or operator == "in" else \
        jsonld.plain(raw_right[0])
    if operator == "in":
        flat: list[Any] = []
        for item in right:
            flat.extend(item if isinstance(item, list) else [item])
        right = flat
    return Criterion(left, operator, right)


def criteria_from_nodes(nodes: Sequence[Any]) -> tuple[Criterion, ...]:
    out = []
    for node in nodes:
        if not isinstance(node, Mapping):
            raise QueryError("each criterion must be an object with operandLeft, operator, operandRight",
                             code="query_criterion_invalid")
        out.append(criterion_from_node(node))
    return tuple(out)


def _int(node: Mapping[str, Any], name: str, default: int) -> int:
    value = jsonld.first(node, jsonld.EDC + name)
    if value is None:
        return default
    if isinstance(value, bool):
        raise QueryError(f"'{name}' must be a whole number", code="query_paging_invalid")
    try:
        number = int(value)
    except (TypeError, ValueError) as exc:
        raise QueryError(f"'{name}' must be a whole number, got {value!r}", code="query_paging_invalid") from exc
    if str(number) != str(value).strip() and not isinstance(value, int | float):
        raise QueryError(f"'{name}' must be a whole number, got {value!r}", code="query_paging_invalid")
    return number


def query_spec_from_node(node: Mapping[str, Any] | None) -> QuerySpec:
    """A QuerySpec from an expanded JSON-LD node; None or an empty node means "first page, no filter"."""
    if not node:
        return QuerySpec()
    offset = _int(node, "offset", 0)
    limit = _int(node, "limit", DEFAULT_LIMIT)
    if offset < 0:
        raise QueryError(f"'offset' must be 0 or more, got {offset}", code="query_paging_invalid")
    if not 1 <= limit <= MAX_LIMIT:
        raise QueryError(f"'limit' must be from 1 to {MAX_LIMIT}, got {limit}", code="query_paging_invalid")
    order = jsonld.first(node, jsonld.EDC + "sortOrder", "ASC")
    if not isinstance(order, str) or order.upper() not in ("ASC", "DESC"):
        raise QueryError(f"'sortOrder' must be ASC or DESC, got {order!r}", code="query_sort_invalid")
    sort_field = jsonld.first(node, jsonld.EDC + "sortField")
    if sort_field is not None and not isinstance(sort_field, str):
        raise QueryError("'sortField' must be a string", code="query_sort_invalid")
    filters = criteria_from_nodes(jsonld.values(node, jsonld.EDC + "filterExpression"))
    return QuerySpec(filters, sort_field or None, "DESC" if order.upper() == "DESC" else "ASC", offset, limit)


def query_spec_from_json(body: Mapping[str, Any] | None) -> QuerySpec:
    """A QuerySpec from a compact JSON(-LD) request body (bare terms in the EDC namespace)."""
    if not body:
        return QuerySpec()
    node = jsonld.expand_one(dict(body), what="QuerySpec")
    declared = jsonld.types_of(node)
    if declared and jsonld.EDC + "QuerySpec" not in declared:
        raise QueryError(f"expected a QuerySpec, but the body's @type is {', '.join(declared)}",
                         code="type_mismatch")
    return query_spec_from_node(node)


# ---- SQL ---------------------------------------------------------------------------------------------------

SqlColumn = ColumnElement[Any] | QueryableAttribute[Any]
FieldResolver = Callable[[str], "SqlColumn | Callable[[Criterion], ColumnElement[bool]] | None"]


def field_key(name: str) -> str:
    """The spelling-independent key of a field name: bare, ``edc:``-prefixed and full EDC IRIs all agree."""
    name = name.strip()
    if name.startswith("properties."):
        name = name[len("properties."):].strip("'\"")
    if name == "@id":
        return "id"
    iri = jsonld.expand_iri(name)
    return iri[len(jsonld.EDC):] if iri.startswith(jsonld.EDC) else iri


def condition(column: SqlColumn, criterion: Criterion) -> ColumnElement[bool]:
    """``column <op> right`` as a SQL expression (pure translation, no I/O)."""
    op, right = criterion.operator, criterion.right
    if op == "in":
        items = right if isinstance(right, list) else [right]
        if not items:
            raise QueryError(f"'in' on {criterion.left!r} needs a non-empty list", code="query_criterion_invalid")
        return column.in_([_scalar(v, criterion) for v in items])
    value = _scalar(right, criterion)
    if op == "=":
        return column == value
    if op == "!=":
        return column != value
    if op == "<":
        return column < value
    if op == ">":
        return column > value
    if op == "<=":
        return column <= value
    if op == ">=":
        return column >= value
    pattern = str(value)
    if (len(pattern) - len(pattern.rstrip("\\"))) % 2 == 1:
        raise QueryError(f"the {op} pattern {pattern!r} ends with a lone escape character '\\'",
                         code="query_criterion_invalid")
    return PortableLike(cast(column, String), pattern, ignore_case=op == "ilike")


class PortableLike(ColumnElement[bool]):
    """``column LIKE pattern`` (or ILIKE) that selects the same rows on SQLite and PostgreSQL.

    WHY: SQLite's LIKE ignores ASCII case and knows no escape character, PostgreSQL's LIKE is case-sensitive
    and escapes with a backslash; so on SQLite the pattern is rewritten to the equivalent (case-sensitive)
    GLOB, lower-cased on both sides for ``ilike``.
    """

    inherit_cache = False  # the pattern is not part of a cache key; such statements are compiled each time
    type = Boolean()

    def __init__(self, column: ColumnElement[Any], pattern: str, *, ignore_case: bool = False) -> None:
        self.column = column
        self.pattern = pattern
        self.ignore_case = ignore_case


_GLOB_LITERAL = {"*": "[*]", "?": "[?]", "[": "[[]"}


def like_to_glob(pattern: str) -> str:
    """A LIKE pattern (``%``, ``_``, ``\\`` escaping the next character, as PostgreSQL reads it) as GLOB."""
    out: list[str] = []
    chars = iter(pattern)
    for ch in chars:
        if ch == "\\":
            literal = next(chars, "\\")
            out.append(_GLOB_LITERAL.get(literal, literal))
        elif ch == "%":
            out.append("*")
        elif ch == "_":
            out.append("?")
        else:
            out.append(_GLOB_LITERAL.get(ch, ch))
    return "".join(out)


@compiles(PortableLike)
def _compile_like(element: PortableLike, compiler: Any, **kw: Any) -> str:
    column = element.column
    expr = column.ilike(element.pattern) if element.ignore_case else column.like(element.pattern)
    return str(compiler.process(expr, **kw))


@compiles(PortableLike, "sqlite")
def _compile_like_sqlite(element: PortableLike, compiler: Any, **kw: Any) -> str:
    column: Any = func.lower(element.column) if element.ignore_case else element.column
    pattern = like_to_glob(element.pattern.lower() if element.ignore_case else element.pattern)
    return str(compiler.process(column.op("GLOB", is_comparison=True)(pattern), **kw))


def _scalar(value: Any, criterion: Criterion) -> Any:
    if isinstance(value, dict | list):
        raise QueryError(f"operandRight of {criterion.left!r} must be a plain value", code="query_criterion_invalid")
    return value


def apply_filters(stmt: Select[Any], criteria: Sequence[Criterion], resolve: FieldResolver) -> Select[Any]:
    """Add one WHERE per criterion; ``resolve`` maps a field key to a column or to a condition builder."""
    conditions: list[ColumnElement[bool]] = []
    for criterion in criteria:
        target = resolve(field_key(criterion.left))
        if target is None:
            raise QueryError(f"cannot filter on {criterion.left!r}: unknown field", code="query_field_unknown")
        conditions.append(condition(target, criterion) if isinstance(target, ColumnElement | QueryableAttribute)
                          else target(criterion))
    return stmt.where(and_(*conditions)) if conditions else stmt


def apply_query(stmt: Select[Any], spec: QuerySpec, columns: Mapping[str, SqlColumn], *,
                default_sort: SqlColumn, resolve: FieldResolver | None = None) -> Select[Any]:
    """Filter, sort and page ``stmt`` by ``spec``; ``columns`` maps field keys (see ``field_key``) to columns.

    ``resolve`` handles fields that are not plain columns (e.g. an asset's free-form properties). Sorting is
    stable: ties are broken by ``default_sort`` so paging never repeats or skips rows.
    """
    def lookup(key: str) -> Any:
        if key in columns:
            return columns[key]
        return resolve(key) if resolve is not None else None

    stmt = apply_filters(stmt, spec.filters, lookup)
    return _sorted(stmt, spec, columns, default_sort).offset(spec.offset).limit(spec.limit)


def _sorted(stmt: Select[Any], spec: QuerySpec, columns: Mapping[str, SqlColumn],
            default_sort: SqlColumn) -> Select[Any]:
    if spec.sort_field:
        key = field_key(spec.sort_field)
        sort_column = columns.get(key)
        if sort_column is None:
            raise QueryError(f"cannot sort by {spec.sort_field!r}: unknown field; sortable fields are "
                             f"{', '.join(sorted(columns))}", code="query_sort_invalid")
        ordered = sort_column.desc() if spec.sort_order == "DESC" else sort_column.asc()
        return stmt.order_by(ordered, default_sort)
    return stmt.order_by(default_sort)


Shape = tuple[tuple[tuple[str, str, str], ...], str | None, str]


class PreparedQueries:
    """QuerySpecs applied to one base SELECT with every value a bound parameter, each shape's statement built
    once: the same rows, order and errors as :func:`apply_query` on the same arguments.

    WHY: for each query, building a fresh SELECT (a bind parameter per value, the order, the paging) and
    SQLAlchemy's cache key of it cost about as much CPU as running it (an operator's ``id in [...]`` query of
    10 negotiations on SQLite). The SQL of a query depends only on its shape: each criterion's field (as
    spelled), operator and the Python types of its values, the sort field and order; the values (an ``in``
    list as one expanding parameter, the offset and the limit) are bound at each execution.

    Invalidation: none is needed. A statement depends only on its shape and on this object's base, columns
    and default sort, which are fixed when it is made; values are never part of it. At most ``size`` shapes
    are kept (the least recently used is dropped).

    Built by :func:`apply_query` each time instead: a shape seen for the first time (which also raises
    every error of a bad field, operator or sort in apply_query's order), ``like``/``ilike`` (the pattern
    is part of the SQL, see PortableLike), and any value that is not a ``str`` or an ``int`` (``None``
    compares as IS NULL, a bool, float or structure has its own rules or errors), and any value of another
    Python type than its column's (see ``_typed_as_columns``), so binding a value never changes what a
    query means.
    """

    def __init__(self, base: Select[Any], columns: Mapping[str, SqlColumn], *, default_sort: SqlColumn,
                 size: int = 64) -> None:
        self.base = base
        self.columns = columns
        self.default_sort = default_sort
        self.size = size
        self._statements: OrderedDict[Shape, Select[Any]] = OrderedDict()
        self._lock = threading.Lock()  # queries run in worker threads

    def statement(self, spec: QuerySpec) -> tuple[Select[Any], dict[str, Any]]:
        """The statement for ``spec`` and the parameters to execute it with."""
        found = _bindable(spec)
        if found is None:
            return apply_query(self.base, spec, self.columns, default_sort=self.default_sort), {}
        shape, params = found
        with self._lock:
            stmt = self._statements.get(shape)
            if stmt is not None:
                self._statements.move_to_end(shape)
                return stmt, params
        built = apply_query(self.base, spec, self.columns, default_sort=self.default_sort)  # its errors, its order
        if not self._typed_as_columns(spec):
            return built, {}
        stmt = self._prepare(spec)
        with self._lock:
            self._statements[shape] = stmt
            while len(self._statements) > self.size:
                self._statements.popitem(last=False)
        return stmt, params

    def _typed_as_columns(self, spec: QuerySpec) -> bool:
        """Whether every value has its column's Python type (a str for a string column).

        WHY: a literal compared with a column of another type is bound as its own type (a str with a
        DateTime column as a string); a bound parameter takes the column's type. Only where both agree is
        the prepared statement the same query (the shape includes the values' types).
        """
        for criterion in spec.filters:
            try:
                expected = self.columns[field_key(criterion.left)].type.python_type
            except NotImplementedError:
                return False
            items = criterion.right if isinstance(criterion.right, list) else [criterion.right]
            if any(type(value) is not expected for value in items):
                return False
        return True

    def _prepare(self, spec: QuerySpec) -> Select[Any]:
        conditions: list[ColumnElement[bool]] = []
        for number, criterion in enumerate(spec.filters):
            column = self.columns[field_key(criterion.left)]
            if criterion.operator == "in":
                conditions.append(column.in_(bindparam(f"spec_{number}", expanding=True)))
            else:
                conditions.append(condition(column, Criterion(criterion.left, criterion.operator,
                                                              bindparam(f"spec_{number}"))))
        stmt = self.base.where(and_(*conditions)) if conditions else self.base
        return _sorted(stmt, spec, self.columns, self.default_sort).offset(
            bindparam("spec_offset")).limit(bindparam("spec_limit"))


def _bindable(spec: QuerySpec) -> tuple[Shape, dict[str, Any]] | None:
    """The shape of ``spec`` and its values as parameters, or None when it must be built with its values."""
    params: dict[str, Any] = {"spec_offset": spec.offset, "spec_limit": spec.limit}
    for number, criterion in enumerate(spec.filters):
        right = criterion.right
        if criterion.operator == "in":
            items = right if isinstance(right, list) else [right]
            if not items or not all(type(v) is str or type(v) is int for v in items):
                return None
            params[f"spec_{number}"] = list(items)
        elif criterion.operator in ("like", "ilike") or not (type(right) is str or type(right) is int):
            return None
        else:
            params[f"spec_{number}"] = right
    shape = (tuple((c.left, c.operator, _types(c.right)) for c in spec.filters), spec.sort_field, spec.sort_order)
    return shape, params


def _types(right: Any) -> str:
    return ",".join(sorted({type(v).__name__ for v in right})) if isinstance(right, list) else type(right).__name__
