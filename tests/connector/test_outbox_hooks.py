"""Delivery hooks run off the event loop: a delivered hook inside the transaction that marks its message sent
(under the process's lock), a failed hook in the worker thread after the failure is committed.

Also the real hooks the negotiation and transfer modules register: the counterparty's pid from its 201 answer.
"""

from __future__ import annotations

import asyncio
import json
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI, Request, Response
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from connector.context import ConnectorContext
from connector.errors import ConnectorError
from connector.outbox import Outgoing
from connector.storage.tables_protocol import NegotiationRow, OutboxRow, TransferRow
from tests.connector.test_outbox import all_sent, enqueue
from tests.connector.test_outbox_wakeups import run_until
from tests.connector.test_protocol_support import context, serve


class Answering:
    """A real endpoint answering 201 with a scripted JSON body per path (default: a fresh providerPid)."""

    def __init__(self) -> None:
        self.bodies: dict[str, list[dict[str, Any]]] = {}
        self.received: list[str] = []
        self.app = FastAPI()

        @self.app.post("/{path:path}")
        async def receive(path: str, request: Request) -> Response:
            await request.body()
            self.received.append(path)
            script = self.bodies.get(path) or [{}]
            body = script.pop(0) if len(script) > 1 else script[0]
            return Response(json.dumps(body), status_code=201, media_type="application/json")


def run_worker_until(ctx: ConnectorContext, predicate: Any, timeout: float = 10) -> None:
    asyncio.run(run_until(ctx, predicate, timeout))


def statuses(ctx: ConnectorContext) -> list[str]:
    with ctx.sessions() as session:
        return list(session.scalars(select(OutboxRow.status).order_by(OutboxRow.id)))


def test_a_delivered_hook_runs_in_a_worker_thread_in_the_transaction_that_marks_the_message_sent(
        tmp_path: Path, database_url: str) -> None:
    receiver = Answering()
    seen: list[dict[str, Any]] = []
    with serve(receiver.app) as base, context(tmp_path, database_url) as ctx:
        loop_thread = threading.current_thread()  # asyncio.run runs the loop in this thread

        def hook(session: Session, row: Outgoing, payload: Any) -> None:
            status = session.execute(select(OutboxRow.status).where(OutboxRow.id == row.id)).scalar_one()
            seen.append({"thread": threading.current_thread(), "status": status,
                         "locked": ctx.extras["locks"](row.process_id).locked(), "payload": payload})
            session.execute(text("CREATE TABLE hook_marks (process_id VARCHAR(50))"))
            session.execute(text("INSERT INTO hook_marks VALUES (:p)"), {"p": row.process_id})

        ctx.outbox.on_delivered("ContractNegotiationEventMessage", hook)
        receiver.bodies["h"] = [{"answer": 1}]
        enqueue(ctx, f"{base}/h", "proc-h", 0)
        run_worker_until(ctx, lambda: bool(seen) and all_sent(ctx))
        with ctx.engine.connect() as conn:
            marks = list(conn.execute(text("SELECT process_id FROM hook_marks")).scalars())
    assert seen[0]["thread"] is not loop_thread
    assert seen[0]["status"] == "sent"  # the same transaction already holds the outcome
    assert seen[0]["locked"] and seen[0]["payload"] == {"answer": 1}
    assert marks == ["proc-h"]  # the hook's write committed with it


def test_a_failing_delivered_hook_rolls_back_its_changes_and_the_message_stays_sent(tmp_path: Path,
                                                                                     database_url: str) -> None:
    receiver = Answering()
    calls: list[int] = []
    with serve(receiver.app) as base, context(tmp_path, database_url) as ctx:
        with ctx.engine.begin() as conn:
            conn.execute(text("CREATE TABLE hook_marks (n INTEGER)"))

        def hook(session: Session, row: Outgoing, payload: Any) -> None:
            n = json.loads(row.body)["n"]
            calls.append(n)
            session.execute(text("INSERT INTO hook_marks VALUES (:n)"), {"n": n})
            if n == 0:
                raise RuntimeError("the hook breaks")

        ctx.outbox.on_delivered("ContractNegotiationEventMessage", hook)
        enqueue(ctx, f"{base}/f", "proc-f", 0)
        enqueue(ctx, f"{base}/f", "proc-f", 1)
        run_worker_until(ctx, lambda: len(receiver.received) == 2 and all_sent(ctx))
        with ctx.engine.connect() as conn:
            marks = list(conn.execute(text("SELECT n FROM hook_marks")).scalars())
        assert statuses(ctx) == ["sent", "sent"]
    assert calls == [0, 1] and marks == [1]  # the failing hook's insert is gone, the next message went out


def test_a_failed_hook_runs_off_the_loop_after_the_failure_is_committed(tmp_path: Path) -> None:
    failures: list[dict[str, Any]] = []
    with context(tmp_path) as ctx:
        loop_thread = threading.current_thread()

        def failed(row: OutboxRow, status: int | None, detail: str) -> None:
            with ctx.sessions() as session:  # its own transaction sees the committed outcome
                stored = session.get(OutboxRow, row.id)
                failures.append({"thread": threading.current_thread(), "status": stored.status if stored else None,
                                 "row": row, "detail": detail})

        ctx.outbox.on_failed("negotiation", failed)
        enqueue(ctx, "ftp://127.0.0.1/never", "proc-x", 0)
        run_worker_until(ctx, lambda: bool(failures))
    assert failures[0]["thread"] is not loop_thread and failures[0]["status"] == "failed"
    assert isinstance(failures[0]["row"], OutboxRow) and failures[0]["row"].process_id == "proc-x"
    assert "UnsupportedProtocol" in failures[0]["detail"]


def test_a_coroutine_function_is_refused_as_a_hook(tmp_path: Path) -> None:
    async def delivered(session: Session, row: Outgoing, payload: Any) -> None:
        return None

    async def failed(row: OutboxRow, status: int | None, detail: str) -> None:
        return None

    with context(tmp_path) as ctx:
        with pytest.raises(ConnectorError, match="plain function") as caught:
            ctx.outbox.on_delivered("ContractNegotiationEventMessage", delivered)  # type: ignore[arg-type]
        assert caught.value.code == "outbox_hook_not_plain"
        with pytest.raises(ConnectorError, match="plain function"):
            ctx.outbox.on_failed("negotiation", failed)  # type: ignore[arg-type]


# ---- the registered peer-pid hooks ----------------------------------------------------------------------
def _negotiation(pid: str, role: str, consumer_pid: str | None, provider_pid: str | None) -> NegotiationRow:
    now = datetime.now(UTC)
    return NegotiationRow(id=pid, role=role, state="REQUESTED", consumer_pid=consumer_pid, provider_pid=provider_pid,
                          counterparty_did="did:web:peer", counterparty_address="http://peer", created_at=now,
                          updated_at=now)


def _send(ctx: ConnectorContext, url: str, process_id: str, message_type: str, kind: str) -> None:
    with ctx.sessions.begin() as session:
        ctx.outbox.enqueue(session, process_id=process_id, kind=kind, message={"@type": message_type}, url=url,
                           recipient_did="did:web:peer", correlation_id=None)


def test_the_counterpartys_pid_from_its_201_answer_is_recorded_once_on_our_role(tmp_path: Path,
                                                                                 database_url: str) -> None:
    receiver = Answering()
    receiver.bodies["request"] = [{"providerPid": "urn:uuid:first"}, {"providerPid": "urn:uuid:second"}]
    receiver.bodies["offer"] = [{"consumerPid": "urn:uuid:their-consumer"}]
    receiver.bodies["transfer"] = [{"providerPid": "urn:uuid:transfer-provider"}]
    receiver.bodies["other"] = [{"providerPid": "urn:uuid:not-ours"}]
    with serve(receiver.app) as base, context(tmp_path, database_url) as ctx:
        now = datetime.now(UTC)
        with ctx.sessions.begin() as session:
            session.add(_negotiation("neg-consumer", "consumer", "neg-consumer", None))
            session.add(_negotiation("neg-provider", "provider", None, "neg-provider"))
            session.add(_negotiation("neg-wrong-role", "provider", "urn:uuid:c", None))
            session.add(TransferRow(id="tp-consumer", role="consumer", state="REQUESTED", consumer_pid="tp-consumer",
                                    provider_pid=None, transfer_type="HttpData-PULL", counterparty_did="did:web:peer",
                                    counterparty_address="http://peer", agreement_id="agr", created_at=now,
                                    updated_at=now))
        _send(ctx, f"{base}/request", "neg-consumer", "ContractRequestMessage", "negotiation")
        _send(ctx, f"{base}/request", "neg-consumer", "ContractRequestMessage", "negotiation")  # a second answer
        _send(ctx, f"{base}/offer", "neg-provider", "ContractOfferMessage", "negotiation")
        _send(ctx, f"{base}/other", "neg-wrong-role", "ContractRequestMessage", "negotiation")
        _send(ctx, f"{base}/transfer", "tp-consumer", "TransferRequestMessage", "transfer")
        run_worker_until(ctx, lambda: len(receiver.received) == 5 and all_sent(ctx))
        with ctx.sessions() as session:
            pids = {n.id: (n.consumer_pid, n.provider_pid) for n in session.scalars(select(NegotiationRow))}
            transfer = session.get(TransferRow, "tp-consumer")
            assert transfer is not None and transfer.provider_pid == "urn:uuid:transfer-provider"
    assert pids["neg-consumer"] == ("neg-consumer", "urn:uuid:first")  # recorded once, not overwritten
    assert pids["neg-provider"] == ("urn:uuid:their-consumer", "neg-provider")
    assert pids["neg-wrong-role"] == ("urn:uuid:c", None)  # a consumer's hook: not our role here
