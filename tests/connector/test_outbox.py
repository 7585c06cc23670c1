"""The outbox delivers at once when woken, in order per process, retries with backoff, and gives up cleanly."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request, Response
from sqlalchemy import select

from connector.context import ConnectorContext
from connector.outbox import MAX_DELAY, backoff
from connector.storage.tables_protocol import OutboxRow
from identity.dcp.jws import parse_jws
from tests.connector.test_protocol_support import context, serve


class Receiver:
    """A real HTTP endpoint that answers from a script of statuses and records what arrives."""

    def __init__(self) -> None:
        self.received: list[tuple[str, dict[str, Any], str, float]] = []
        self.script: dict[str, list[int]] = {}
        self.app = FastAPI()

        @self.app.post("/{path:path}")
        async def receive(path: str, request: Request) -> Response:
            body = await request.json()
            self.received.append((path, body, request.headers.get("authorization", ""), time.monotonic()))
            statuses = self.script.get(path) or [200]
            status = statuses.pop(0) if len(statuses) > 1 else statuses[0]
            return Response(json.dumps({"reason": [f"scripted {status}"]}), status_code=status)


def enqueue(ctx: ConnectorContext, url: str, process_id: str, n: int) -> None:
    with ctx.sessions.begin() as session:
        ctx.outbox.enqueue(session, process_id=process_id, kind="negotiation",
                           message={"@type": "ContractNegotiationEventMessage", "n": n}, url=url,
                           recipient_did="did:web:peer", correlation_id="corr-1")
    ctx.outbox.wake()


def all_sent(ctx: ConnectorContext) -> bool:
    with ctx.sessions() as session:
        return {r.status for r in session.scalars(select(OutboxRow))} == {"sent"}


async def until(predicate: Any, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.01)


def test_woken_worker_delivers_at_once_in_order_with_a_signed_token(tmp_path: Path, database_url: str) -> None:
    receiver = Receiver()
    with serve(receiver.app) as base, context(tmp_path, database_url) as ctx:
        async def scenario() -> float:
            worker = asyncio.create_task(ctx.outbox.run_worker())
            await asyncio.sleep(0.3)  # the worker is idle now, waiting on its event (30 s timeout)
            started = time.monotonic()
            for n in range(3):
                await asyncio.to_thread(enqueue, ctx, f"{base}/a", "proc-a", n)
            await until(lambda: len(receiver.received) == 3)
            elapsed = receiver.received[-1][3] - started
            await until(lambda: all_sent(ctx))
            await ctx.outbox.stop_worker()
            worker.cancel()
            await ctx.http.aclose()
            return elapsed

        elapsed = asyncio.run(scenario())
        assert elapsed < 5  # woken, not polled
        assert [b["n"] for _, b, _, _ in receiver.received] == [0, 1, 2]
        token = receiver.received[0][2].removeprefix("Bearer ")
        parsed = parse_jws(token)
        assert parsed.verify_with(ctx.wallet.key) and parsed.payload["aud"] == "did:web:peer"
        with ctx.sessions() as session:
            assert {r.status for r in session.scalars(select(OutboxRow))} == {"sent"}


def test_retries_with_backoff_then_delivers(tmp_path: Path) -> None:
    receiver = Receiver()
    receiver.script["b"] = [503, 503, 200]
    with serve(receiver.app) as base, context(tmp_path) as ctx:
        async def scenario() -> None:
            worker = asyncio.create_task(ctx.outbox.run_worker())
            await asyncio.to_thread(enqueue, ctx, f"{base}/b", "proc-b", 1)
            await until(lambda: len(receiver.received) == 3 and all_sent(ctx))
            await ctx.outbox.stop_worker()
            worker.cancel()
            await ctx.http.aclose()

        asyncio.run(scenario())
        gaps = [receiver.received[i + 1][3] - receiver.received[i][3] for i in range(2)]
        assert gaps[0] >= 0.4 and gaps[1] >= 0.9  # 0.5 s, then 1 s
        with ctx.sessions() as session:
            row = session.scalars(select(OutboxRow)).one()
            assert row.status == "sent" and row.attempts == 3


def test_a_refusal_fails_for_good_and_tells_the_process(tmp_path: Path) -> None:
    receiver = Receiver()
    receiver.script["c"] = [400]
    failures: list[tuple[str, int | None, str]] = []
    with serve(receiver.app) as base, context(tmp_path) as ctx:
        ctx.outbox.on_failed("negotiation", lambda row, status, detail: failures.append((row.process_id, status,
                                                                                          detail)))

        async def scenario() -> None:
            worker = asyncio.create_task(ctx.outbox.run_worker())
            await asyncio.to_thread(enqueue, ctx, f"{base}/c", "proc-c", 1)
            await until(lambda: bool(failures))
            await ctx.outbox.stop_worker()
            worker.cancel()
            await ctx.http.aclose()

        asyncio.run(scenario())
        assert failures[0][0] == "proc-c" and failures[0][1] == 400 and "scripted 400" in failures[0][2]
        with ctx.sessions() as session:
            assert session.scalars(select(OutboxRow)).one().status == "failed"


def test_messages_left_pending_are_sent_when_the_worker_starts(tmp_path: Path) -> None:
    receiver = Receiver()
    with serve(receiver.app) as base, context(tmp_path) as ctx:
        enqueue(ctx, f"{base}/d", "proc-d", 7)  # written while no worker runs (e.g. before a crash)

        async def scenario() -> None:
            worker = asyncio.create_task(ctx.outbox.run_worker())
            await until(lambda: len(receiver.received) == 1)
            await ctx.outbox.stop_worker()
            worker.cancel()
            await ctx.http.aclose()

        asyncio.run(scenario())
        assert receiver.received[0][1]["n"] == 7


def test_backoff_is_exponential_and_bounded() -> None:
    assert [backoff(n) for n in (1, 2, 3, 4)] == [0.5, 1.0, 2.0, 4.0]
    assert backoff(50) == MAX_DELAY
