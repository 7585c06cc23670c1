"""Idempotent inbound handling on SQLite and PostgreSQL: a repeat gets the same answer and changes nothing."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from starlette.requests import Request

from connector.protocol.errors import MessageInvalid
from connector.protocol.inbound import digest_path
from connector.protocol.processing import Answer, canonical_json, handle_once, message_digest
from connector.storage.db import open_database
from connector.storage.tables_protocol import NegotiationRow


def _row(pid: str, state: str) -> NegotiationRow:
    now = datetime.now(UTC)
    return NegotiationRow(id=pid, role="provider", state=state, consumer_pid="c", provider_pid=pid,
                          counterparty_did="did:web:c", counterparty_address="http://c", approval="auto",
                          created_at=now, updated_at=now)


def _state_of(session: Session, pid: str) -> str | None:
    row = session.get(NegotiationRow, pid)
    return row.state if row is not None else None


def test_a_repeat_is_answered_from_the_log(database_url: str) -> None:
    engine, sessions = open_database(database_url)
    calls = []

    def create(session: Session) -> Answer:
        calls.append(1)
        session.add(_row("p1", "REQUESTED"))
        return Answer(201, {"providerPid": "p1"}, "p1")

    digest = message_digest("did:web:c", "/negotiations/request", {"@type": "X", "consumerPid": "c"})
    first = handle_once(sessions, digest, create, _state_of)
    again = handle_once(sessions, digest, create, _state_of)
    assert first == (Answer(201, {"providerPid": "p1"}, "p1"), True)
    assert again == (Answer(201, {"providerPid": "p1"}, "p1"), False)
    assert len(calls) == 1
    with sessions.begin() as session:
        assert session.scalar(select(func.count()).select_from(NegotiationRow)) == 1
        row = session.get(NegotiationRow, "p1")
        assert row is not None
        row.state = "AGREED"  # the negotiation moved on; the creating request is still the same request
    assert handle_once(sessions, digest, create, _state_of) == (Answer(201, {"providerPid": "p1"}, "p1"), False)
    engine.dispose()


def test_the_same_bytes_after_the_process_moved_on_are_a_new_message(database_url: str) -> None:
    engine, sessions = open_database(database_url)
    with sessions.begin() as session:
        session.add(_row("p2", "SUSPENDED"))

    def resume(session: Session) -> Answer:
        row = session.get(NegotiationRow, "p2")
        assert row is not None
        row.state = "STARTED"
        return Answer(200, None, "p2")

    digest = message_digest("did:web:c", "/transfers/p2/start", {"@type": "TransferStartMessage"})
    assert handle_once(sessions, digest, resume, _state_of)[1] is True
    assert handle_once(sessions, digest, resume, _state_of)[1] is False  # still STARTED: a duplicate
    with sessions.begin() as session:
        row = session.get(NegotiationRow, "p2")
        assert row is not None
        row.state = "SUSPENDED"  # suspended again in between
    assert handle_once(sessions, digest, resume, _state_of)[1] is True
    engine.dispose()


def test_digest_depends_on_caller_path_and_canonical_body() -> None:
    a = message_digest("did:web:a", "/p", {"x": 1, "y": 2})
    assert a == message_digest("did:web:a", "/p", {"y": 2, "x": 1})
    assert a != message_digest("did:web:b", "/p", {"x": 1, "y": 2})
    assert a != message_digest("did:web:a", "/q", {"x": 1, "y": 2})


def test_a_copy_that_raced_in_gets_the_winners_answer_and_changes_nothing(database_url: str) -> None:
    """Two copies of one message handled at once (no process lock): one answer is stored, the other copy's
    changes are rolled back with its failed log entry, and it answers as the winner did."""
    engine, sessions = open_database(database_url)
    barrier = threading.Barrier(2, timeout=10)
    digest = message_digest("did:web:c", "/negotiations/request", {"@type": "X", "consumerPid": "raced"})

    def copy(pid: str) -> Callable[[Session], Answer]:
        def handle(session: Session) -> Answer:
            barrier.wait()  # both copies have looked the digest up and found nothing
            session.add(_row(pid, "REQUESTED"))
            session.flush()
            return Answer(201, {"providerPid": pid}, pid)
        return handle

    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda pid: handle_once(sessions, digest, copy(pid), _state_of), ["r1", "r2"]))
    assert sorted(new for _, new in results) == [False, True]
    winner = next(answer for answer, new in results if new)
    assert [answer for answer, _ in results] == [winner, winner]
    with sessions() as session:
        assert session.scalars(select(NegotiationRow.id)).all() == [winner.process_id]
    engine.dispose()


def test_a_failing_handler_leaves_no_answer_behind(database_url: str) -> None:
    engine, sessions = open_database(database_url)

    def fail(session: Session) -> Answer:
        session.add(_row("p3", "REQUESTED"))
        session.flush()
        raise MessageInvalid("refused")

    digest = message_digest("did:web:c", "/negotiations/request", {"@type": "X", "consumerPid": "failing"})
    with pytest.raises(MessageInvalid):
        handle_once(sessions, digest, fail, _state_of)
    with sessions() as session:
        assert session.get(NegotiationRow, "p3") is None
    answer = handle_once(sessions, digest, lambda session: Answer(200, {"ok": True}, None), _state_of)
    assert answer == (Answer(200, {"ok": True}, None), True)  # nothing was recorded for the failed copy
    engine.dispose()


# keys from both sides of the one place code point and UTF-16 order disagree (U+E000..U+FFFF vs astral)
_KEYS = st.sampled_from(["a", "\ue000", "\uffff", "\U0001f600", "\U00010000", "é"]) | st.text(max_size=4)
_SCALARS = (st.none() | st.booleans() | st.text(max_size=8) | st.floats(allow_nan=False, allow_infinity=False)
            | st.integers(min_value=-(2**60), max_value=2**60) | st.integers(min_value=-99, max_value=99)
            | st.sampled_from(["\x00\x1f\x7f\"\\/\b\f\n\r\t", "\u2028\u2029", "\U0001f600", "é"]))
_JSON = st.recursive(_SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_KEYS, inner, max_size=5),
                     max_leaves=25)


@settings(max_examples=400, deadline=None)
@given(_JSON)
def test_canonical_json_is_rfc8785(value: Any) -> None:
    """The json.dumps path writes exactly RFC 8785's bytes, and refuses exactly what rfc8785 refuses."""
    try:
        expected = rfc8785.dumps(value)
    except rfc8785.CanonicalizationError:
        with pytest.raises(MessageInvalid) as info:
            canonical_json(value)
        assert info.value.code == "message_not_canonical"
        return
    assert canonical_json(value) == expected


@pytest.mark.parametrize("value", [{"b": 1, "a": [True, None, "x"]}, {"\U0001f600": 1, "\uffff": 2, "\ue000": 3},
                                   {"n": 2**53 - 1}, {"f": 1.5e21}, ["\x01\u2028"], {"": {}}])
def test_canonical_json_of_typical_and_edge_values(value: Any) -> None:
    assert canonical_json(value) == rfc8785.dumps(value)


@pytest.mark.parametrize("value", [{"n": 2**53}, {"f": float("nan")}, {"f": float("inf")}, {"s": "\ud800"},
                                   {"\udfff": 1}])
def test_a_message_without_a_canonical_form_is_invalid_not_a_crash(value: Any) -> None:
    with pytest.raises(MessageInvalid) as info:
        message_digest("did:web:c", "/p", value)
    assert info.value.code == "message_not_canonical"


@pytest.mark.parametrize("path", ["/negotiations/request", "/negotiations/urn:uuid:1/events", "/a b/ü/%41",
                                  "/x?y#z\\w", "/transfers/urn:p;v=1/start", "//double//slash/", "/"])
def test_the_digest_path_is_the_one_earlier_digests_were_taken_over(path: str) -> None:
    """Digests stored before the path was read from the scope directly still match: same path string."""
    scope = {"type": "http", "method": "POST", "path": path, "root_path": "", "query_string": b"q=1",
             "headers": [(b"host", b"127.0.0.1:8080")], "scheme": "http", "server": ("127.0.0.1", 8080)}
    assert digest_path(scope) == Request(scope).url.path
