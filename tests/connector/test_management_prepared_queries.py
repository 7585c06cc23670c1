"""connector.querying.PreparedQueries: the rows, order and errors of apply_query, each shape built once."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine

from connector.management.negotiations import _NEGOTIATION_VIEW, NEGOTIATION_COLUMNS
from connector.querying import Criterion, PreparedQueries, QueryError, QuerySpec, apply_query
from connector.storage.db import open_database
from connector.storage.tables_protocol import NegotiationRow

_C = NegotiationRow.__table__.c
STATES = ("REQUESTED", "AGREED", "FINALIZED", "TERMINATED")
IDS = [f"urn:uuid:n-{i:02d}" for i in range(12)]


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    """One database per backend with 12 negotiations, only read by the tests."""
    if request.param == "sqlite":
        folder: Path = tmp_path_factory.mktemp("prepared")
        url = f"sqlite:///{folder / 'q.db'}"
    else:
        import psycopg

        server_url: str = request.getfixturevalue("postgres_server")
        with psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute("CREATE DATABASE prepared_queries")
        url = server_url.rsplit("/", 1)[0] + "/prepared_queries"
    engine, sessions = open_database(url)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    with sessions.begin() as session:
        for i, pid in enumerate(IDS):
            session.add(NegotiationRow(
                id=pid, role="consumer" if i % 3 else "provider", state=STATES[i % 4], consumer_pid=pid,
                provider_pid=f"urn:uuid:p-{i % 5}" if i % 2 else None, counterparty_did=f"did:web:peer{i % 3}",
                counterparty_address=f"http://peer{i % 3}.example/dsp", approval="auto",
                agreement_id=f"urn:uuid:a-{i}" if i % 4 == 2 else None, correlation_id=str(i % 7),
                created_at=start + timedelta(minutes=i % 6), updated_at=start))
    yield engine
    engine.dispose()


def _run(engine: Engine, stmt: Any, params: dict[str, Any]) -> list[tuple[Any, ...]]:
    with engine.connect() as conn:
        return [tuple(row) for row in conn.execute(stmt, params)]


def _outcome(engine: Engine, build: Any) -> tuple[str, Any]:
    """("rows", rows) or ("error", the QueryError's code, or the type of any other failure)."""
    try:
        stmt, params = build()
        return "rows", _run(engine, stmt, params)
    except QueryError as exc:
        return "error", exc.code
    except Exception as exc:  # noqa: BLE001 - a driver's refusal must be the same one on both paths
        return "error", type(exc).__name__


FIELDS = ("id", "edc:id", "state", "type", "counterPartyId", "providerPid", "contractAgreementId", "correlationId",
          "createdAt", "nothing")
scalars = st.one_of(st.sampled_from([*IDS[:4], *STATES, "consumer", "provider", "did:web:peer1", "3", "urn:uuid:p-1"]),
                    st.integers(-2, 8), st.none(), st.booleans(), st.floats(0, 3), st.text(max_size=3))
values = st.one_of(scalars, st.lists(scalars, max_size=4), st.dictionaries(st.just("a"), st.integers(), max_size=1))
criteria = st.builds(Criterion, st.sampled_from(FIELDS),
                     st.sampled_from(("=", "!=", "<", ">", "<=", ">=", "in", "in", "like", "ilike")), values)
specs = st.builds(QuerySpec, st.lists(criteria, max_size=3).map(tuple),
                  st.sampled_from([None, "id", "state", "createdAt", "nothing"]), st.sampled_from(["ASC", "DESC"]),
                  st.integers(0, 4), st.integers(1, 6))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(first=specs, second=specs)
def test_the_rows_and_errors_are_those_of_apply_query(engine: Engine, first: QuerySpec, second: QuerySpec) -> None:
    prepared = PreparedQueries(_NEGOTIATION_VIEW, NEGOTIATION_COLUMNS, default_sort=_C.id, size=4)
    for spec in (first, second, first, second):  # the second time of each from the stored shape
        expected = _outcome(engine, lambda s=spec: (
            apply_query(_NEGOTIATION_VIEW, s, NEGOTIATION_COLUMNS, default_sort=_C.id), {}))
        assert _outcome(engine, lambda s=spec: prepared.statement(s)) == expected, spec


def _in(ids: list[Any], **paging: Any) -> QuerySpec:
    return QuerySpec((Criterion("id", "in", ids),), **paging)


def test_values_are_bound_at_each_execution_never_stored_with_the_statement(engine: Engine) -> None:
    prepared = PreparedQueries(_NEGOTIATION_VIEW, NEGOTIATION_COLUMNS, default_sort=_C.id)
    first = prepared.statement(_in(IDS[:3], limit=10))
    second = prepared.statement(_in(IDS[5:7], offset=1, limit=5))
    assert first[0] is second[0]  # one shape, one statement
    assert [row[0] for row in _run(engine, *first)] == IDS[:3]
    assert [row[0] for row in _run(engine, *second)] == IDS[6:7]
    by_state = [prepared.statement(QuerySpec((Criterion("state", "=", s),))) for s in ("AGREED", "TERMINATED")]
    assert by_state[0][0] is by_state[1][0]
    assert {row[2] for row in _run(engine, *by_state[0])} == {"AGREED"}
    assert {row[2] for row in _run(engine, *by_state[1])} == {"TERMINATED"}


def test_a_value_error_is_still_raised_for_a_known_shape(engine: Engine) -> None:
    prepared = PreparedQueries(_NEGOTIATION_VIEW, NEGOTIATION_COLUMNS, default_sort=_C.id)
    prepared.statement(_in(IDS[:2]))
    for bad in ([], [{"a": 1}], [["x"]]):
        with pytest.raises(QueryError) as caught:
            prepared.statement(_in(bad))
        assert caught.value.code == "query_criterion_invalid"
    with pytest.raises(QueryError) as unknown:
        prepared.statement(QuerySpec((Criterion("nothing", "in", IDS[:2]),)))
    assert unknown.value.code == "query_field_unknown"


def test_null_like_and_bool_values_are_never_bound(engine: Engine) -> None:
    prepared = PreparedQueries(_NEGOTIATION_VIEW, NEGOTIATION_COLUMNS, default_sort=_C.id)
    without_provider = prepared.statement(QuerySpec((Criterion("providerPid", "=", None),), limit=50))
    assert without_provider[1] == {} and len(_run(engine, *without_provider)) == 6  # IS NULL, not = NULL
    prepared.statement(QuerySpec((Criterion("state", "like", "AG%"),)))
    prepared.statement(QuerySpec((Criterion("state", "=", True),)))
    assert len(prepared._statements) == 0


def test_at_most_size_shapes_are_kept_the_least_recently_used_dropped(engine: Engine) -> None:
    prepared = PreparedQueries(_NEGOTIATION_VIEW, NEGOTIATION_COLUMNS, default_sort=_C.id, size=3)
    shapes = [QuerySpec((Criterion(f, "=", "x"),)) for f in ("id", "state", "counterPartyId", "providerPid")]
    kept = [prepared.statement(spec)[0] for spec in shapes[:3]]
    assert prepared.statement(shapes[0])[0] is kept[0]  # used again: now the most recent
    prepared.statement(shapes[3])
    assert len(prepared._statements) == 3
    assert prepared.statement(shapes[0])[0] is kept[0]
    assert prepared.statement(shapes[1])[0] is not kept[1]  # dropped, built again
