"""An automatic step taken in the transaction of the message that made it due, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy.orm import Session

from connector import negotiation as neg
from connector.errors import ConnectorError
from connector.storage.db import open_database
from connector.storage.tables_protocol import NegotiationRow


def _requested(pid: str, approval: str = "auto") -> NegotiationRow:
    return neg._new_row("provider", id=pid, state="REQUESTED", consumer_pid=f"{pid}:c", provider_pid=pid,
                        counterparty_did="did:web:consumer.example", counterparty_address="http://127.0.0.1:1/cb",
                        approval=approval, pending="agree")


def _stored(sessions: Any, pid: str) -> NegotiationRow:
    with sessions() as session:
        row = session.get(NegotiationRow, pid)
        assert row is not None
        return row


def _message_then_step(sessions: Any, pid: str, approval: str = "auto") -> None:
    """What an inbound request does: the handler's change (a new process, flushed), then the step."""
    with sessions.begin() as session:
        session.add(_requested(pid, approval))
        session.flush()
        neg.step_after_message(None, session, pid)  # type: ignore[arg-type]


def test_a_failing_step_is_undone_but_the_message_that_made_it_due_is_kept(
        database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    _engine, sessions = open_database(database_url)

    def half_made_agreement(ctx: Any, session: Session, row: NegotiationRow, body: dict[str, Any]) -> None:
        row.agreement_id = "urn:agreement:half-made"
        row.state = "AGREED"
        session.flush()  # written inside the step's savepoint, then refused
        raise ConnectorError("the agreement could not be made")

    monkeypatch.setitem(neg._STEPS, "agree", half_made_agreement)
    _message_then_step(sessions, "urn:uuid:failing-step")
    row = _stored(sessions, "urn:uuid:failing-step")
    assert (row.state, row.pending, row.agreement_id) == ("REQUESTED", "agree", None)


def test_a_step_is_committed_with_the_message(database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    _engine, sessions = open_database(database_url)

    def agree(ctx: Any, session: Session, row: NegotiationRow, body: dict[str, Any]) -> None:
        row.agreement_id = "urn:agreement:made"
        neg._set_state(row, "AGREED")

    monkeypatch.setitem(neg._STEPS, "agree", agree)
    _message_then_step(sessions, "urn:uuid:step-taken")
    row = _stored(sessions, "urn:uuid:step-taken")
    assert (row.state, row.pending, row.agreement_id) == ("AGREED", None, "urn:agreement:made")


def test_a_manual_step_waits_for_the_operator(database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    _engine, sessions = open_database(database_url)
    taken: list[str] = []
    monkeypatch.setitem(neg._STEPS, "agree", lambda ctx, session, row, body: taken.append(row.id))
    _message_then_step(sessions, "urn:uuid:manual", approval="manual")
    assert taken == []
    assert _stored(sessions, "urn:uuid:manual").pending == "agree"
