"""The worker starts deliveries from commits, not from scans of the pending table, and loses nothing.

Each scenario bounds the wait well below the worker's safety scan (connector.outbox.SAFETY_SCAN, 30 s), so a
message that only a safety scan would find fails the test.
"""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import event, select, update
from sqlalchemy.orm import Session

from connector.context import ConnectorContext
from connector.outbox import SAFETY_SCAN, Outgoing, now_utc
from connector.storage.tables_protocol import OutboxRow
from tests.connector.test_outbox import Receiver, all_sent, enqueue, until
from tests.connector.test_protocol_support import context, serve

PROMPT = 5.0  # seconds: "at once" here, far below the safety scan
assert PROMPT < SAFETY_SCAN / 3


def add(ctx: ConnectorContext, session: Session, url: str, process_id: str, n: int) -> None:
    ctx.outbox.enqueue(session, process_id=process_id, kind="negotiation",
                       message={"@type": "ContractNegotiationEventMessage", "n": n}, url=url,
                       recipient_did="did:web:peer", correlation_id=None)


async def run_until(ctx: ConnectorContext, predicate: Any, timeout: float = PROMPT) -> None:
    worker = asyncio.create_task(ctx.outbox.run_worker())
    try:
        await until(predicate, timeout)
    finally:
        await ctx.outbox.stop_worker()
        worker.cancel()
        await ctx.http.aclose()


def numbers(receiver: Receiver, path: str) -> list[int]:
    return [body["n"] for p, body, _, _ in receiver.received if p == path]


def test_a_commit_during_the_last_read_of_a_chain_is_still_sent_at_once(tmp_path: Path, database_url: str) -> None:
    """Another thread commits a row for the process right after its chain read "nothing more"."""
    receiver = Receiver()
    with serve(receiver.app) as base, context(tmp_path, database_url) as ctx:
        outbox = ctx.outbox
        original = outbox._record
        injected = threading.Event()

        def record_then_a_concurrent_commit(message: Outgoing, *args: Any) -> Any:
            ready = original(message, *args)  # the chain's read of the next row is done (and found none)
            if not injected.is_set():
                injected.set()
                enqueue(ctx, f"{base}/race", message.process_id, 1)  # commits (and wakes) from this thread
            return ready

        outbox._record = record_then_a_concurrent_commit  # type: ignore[method-assign,assignment]
        enqueue(ctx, f"{base}/race", "proc-race", 0)
        asyncio.run(run_until(ctx, lambda: len(receiver.received) == 2 and all_sent(ctx)))
        assert injected.is_set() and numbers(receiver, "race") == [0, 1]


def test_a_commit_while_a_hook_of_the_chain_runs_is_still_sent_at_once(tmp_path: Path) -> None:
    """A hook enqueues a follow-up in the delivery's own transaction, while the process's chain is under way.

    The chain read the process's next row before the hook wrote one, so it must read again once that commits.
    """
    receiver = Receiver()
    with serve(receiver.app) as base, context(tmp_path) as ctx:
        def follow_up(session: Session, row: Outgoing, payload: Any) -> None:
            if row.process_id == "proc-hook" and len(receiver.received) == 1:
                add(ctx, session, f"{base}/hook", row.process_id, 1)

        ctx.outbox.on_delivered("ContractNegotiationEventMessage", follow_up)
        enqueue(ctx, f"{base}/hook", "proc-hook", 0)
        asyncio.run(run_until(ctx, lambda: len(receiver.received) == 2 and all_sent(ctx)))
        assert numbers(receiver, "hook") == [0, 1]


def test_deliveries_read_only_their_own_process_not_the_pending_table(tmp_path: Path, database_url: str) -> None:
    receiver = Receiver()
    with serve(receiver.app) as base, context(tmp_path, database_url) as ctx:
        statements: list[str] = []
        event.listen(ctx.engine, "before_cursor_execute",
                     lambda conn, cursor, sql, params, context, many: statements.append(" ".join(sql.split())))

        async def scenario() -> None:
            worker = asyncio.create_task(ctx.outbox.run_worker())
            await asyncio.sleep(0.2)  # the start-up scan is done
            for n in range(3):
                await asyncio.gather(*(asyncio.to_thread(enqueue, ctx, f"{base}/p{p}", f"proc-{p}", n)
                                       for p in range(8)))
            await until(lambda: len(receiver.received) == 24 and all_sent(ctx), PROMPT)
            await ctx.outbox.stop_worker()
            worker.cancel()
            await ctx.http.aclose()

        asyncio.run(scenario())
        scans = [s for s in statements if s.startswith("SELECT") and "FROM dsp_outbox WHERE dsp_outbox.status" in s]
        assert len(scans) == 1, scans  # only the start-up scan, none per wake or per delivery
        assert all(numbers(receiver, f"p{p}") == [0, 1, 2] for p in range(8))


def test_a_commit_is_enough_even_without_wake_and_from_a_session_of_another_factory(tmp_path: Path) -> None:
    receiver = Receiver()
    with serve(receiver.app) as base, context(tmp_path) as ctx:
        async def scenario() -> None:
            worker = asyncio.create_task(ctx.outbox.run_worker())
            await asyncio.sleep(0.2)

            def commit_both() -> None:
                with ctx.sessions.begin() as session:
                    add(ctx, session, f"{base}/own", "proc-own", 0)
                with Session(ctx.engine) as foreign, foreign.begin():
                    add(ctx, foreign, f"{base}/foreign", "proc-foreign", 0)

            await asyncio.to_thread(commit_both)  # and no ctx.outbox.wake()
            await until(lambda: len(receiver.received) == 2, PROMPT)
            await ctx.outbox.stop_worker()
            worker.cancel()
            await ctx.http.aclose()

        asyncio.run(scenario())
        assert sorted(p for p, _, _, _ in receiver.received) == ["foreign", "own"]


def test_a_message_enqueued_in_a_savepoint_goes_out_when_the_outer_transaction_commits(tmp_path: Path) -> None:
    receiver = Receiver()
    with serve(receiver.app) as base, context(tmp_path) as ctx:
        async def scenario() -> float:
            worker = asyncio.create_task(ctx.outbox.run_worker())
            await asyncio.sleep(0.2)

            def nested() -> float:
                with ctx.sessions.begin() as session:
                    with session.begin_nested():
                        add(ctx, session, f"{base}/nested", "proc-nested", 0)
                    time.sleep(0.3)  # released savepoint, outer transaction still open
                    committed = time.monotonic()
                return committed

            committed = await asyncio.to_thread(nested)
            ctx.outbox.wake()
            await until(lambda: len(receiver.received) == 1, PROMPT)
            await ctx.outbox.stop_worker()
            worker.cancel()
            await ctx.http.aclose()
            return committed

        committed = asyncio.run(scenario())
        assert receiver.received[0][3] >= committed


def test_a_retry_left_pending_by_a_previous_run_waits_for_its_time_then_goes_out(tmp_path: Path) -> None:
    receiver = Receiver()
    with serve(receiver.app) as base, context(tmp_path) as ctx:
        enqueue(ctx, f"{base}/later", "proc-later", 0)
        enqueue(ctx, f"{base}/later", "proc-later", 1)  # behind it, in order
        with ctx.sessions.begin() as session:  # as a crashed run would leave it: first row due in 1 s
            first = min(session.scalars(select(OutboxRow.id)))
            session.execute(update(OutboxRow).where(OutboxRow.id == first)
                            .values(attempts=1, next_attempt_at=now_utc() + timedelta(seconds=1)))
        started = time.monotonic()
        asyncio.run(run_until(ctx, lambda: len(receiver.received) == 2 and all_sent(ctx)))
        assert numbers(receiver, "later") == [0, 1]
        assert receiver.received[0][3] - started >= 0.8
        with ctx.sessions() as session:
            assert set(session.scalars(select(OutboxRow.attempts))) == {1, 2}


def test_an_enqueue_that_is_rolled_back_sends_nothing(tmp_path: Path) -> None:
    receiver = Receiver()
    with serve(receiver.app) as base, context(tmp_path) as ctx:
        async def scenario() -> None:
            worker = asyncio.create_task(ctx.outbox.run_worker())
            await asyncio.sleep(0.2)

            def write() -> None:
                try:
                    with ctx.sessions.begin() as session:
                        add(ctx, session, f"{base}/gone", "proc-gone", 0)
                        raise RuntimeError("the state change failed")
                except RuntimeError:
                    pass
                with ctx.sessions.begin() as session:
                    savepoint = session.begin_nested()
                    add(ctx, session, f"{base}/gone", "proc-undone", 0)
                    savepoint.rollback()
                    add(ctx, session, f"{base}/kept", "proc-kept", 0)

            await asyncio.to_thread(write)
            await until(lambda: len(receiver.received) == 1, PROMPT)
            await asyncio.sleep(0.3)  # room for anything wrongly sent
            await ctx.outbox.stop_worker()
            worker.cancel()
            await ctx.http.aclose()

        asyncio.run(scenario())
        assert [p for p, _, _, _ in receiver.received] == ["kept"]
        with ctx.sessions() as session:
            assert list(session.scalars(select(OutboxRow.process_id))) == ["proc-kept"]
