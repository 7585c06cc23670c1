"""The outbox's own HTTP clients: no cookies, the configured TLS trust; hooks get the message in its transaction."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from connector.delivery import MAX_PARALLEL_DELIVERIES, DeliveryClients
from connector.outbox import Outgoing
from connector.storage.tables_protocol import OutboxRow
from identity.tls import ensure_certificates
from tests.connector.test_outbox import all_sent, enqueue, until
from tests.connector.test_protocol_support import context, free_port, serve


class CookieSetter:
    """A real endpoint that sets a cookie on every answer and records the Cookie header it is sent."""

    def __init__(self) -> None:
        self.cookies: list[str | None] = []
        self.app = FastAPI()

        @self.app.post("/{path:path}")
        async def receive(path: str, request: Request) -> Response:
            self.cookies.append(request.headers.get("cookie"))
            return Response(json.dumps({"ok": True}), status_code=200,
                            headers={"set-cookie": "session=tracked; Path=/"})


def test_deliveries_keep_no_cookie_a_counterparty_sets(tmp_path: Path) -> None:
    receiver = CookieSetter()
    with serve(receiver.app) as base, context(tmp_path) as ctx:
        async def scenario() -> None:
            worker = asyncio.create_task(ctx.outbox.run_worker())
            for n in range(3):
                await asyncio.to_thread(enqueue, ctx, f"{base}/c", "proc-cookie", n)
                await until(lambda n=n: len(receiver.cookies) == n + 1, 5)
            await ctx.outbox.stop_worker()
            worker.cancel()
            await ctx.http.aclose()

        asyncio.run(scenario())
        assert receiver.cookies == [None, None, None]


def test_one_pool_per_origin_sized_to_the_parallel_deliveries(tmp_path: Path) -> None:
    first, second = CookieSetter(), CookieSetter()
    with serve(first.app) as one, serve(second.app) as two, context(tmp_path) as ctx:
        clients = DeliveryClients.for_context(ctx)

        async def scenario() -> None:
            for url in (f"{one}/a", f"{two}/b", f"{one}/c"):
                answer = await clients.post(url, content="{}", headers={"Content-Type": "application/json"})
                assert answer.status == 200 and answer.json() == {"ok": True}
            assert clients.origins == [one, two]
            assert clients.timeout == ctx.http.timeout
            pool = clients.pool_for(f"{one}/x")
            assert pool is clients.pool_for(f"{one}/y") and pool is not clients.pool_for(f"{two}/x")
            assert pool.limit == MAX_PARALLEL_DELIVERIES and pool.idle == 1  # two requests, one connection
            await clients.close_idle(60)  # just used: kept
            assert clients.origins == [one, two]
            await clients.close_idle(0)
            assert clients.origins == []
            answer = await clients.post(f"{two}/d", content="{}", headers={})  # opened again when needed
            assert answer.status == 200 and clients.origins == [two]
            await clients.aclose()
            await ctx.http.aclose()

        asyncio.run(scenario())
        assert len(first.cookies) == 2 and len(second.cookies) == 2 and set(first.cookies + second.cookies) == {None}


def deliver_once(ctx: Any, url: str, process_id: str, timeout: float = 5) -> OutboxRow:
    """Run the worker until the row of ``process_id`` was tried once; return it."""
    def tried() -> bool:
        with ctx.sessions() as session:
            row = session.scalars(select(OutboxRow).where(OutboxRow.process_id == process_id)).one()
            return bool(row.status != "pending" or row.attempts)

    async def scenario() -> None:
        worker = asyncio.create_task(ctx.outbox.run_worker())
        await asyncio.to_thread(enqueue, ctx, url, process_id, 1)
        await until(tried, timeout)
        await ctx.outbox.stop_worker()
        worker.cancel()
        await ctx.http.aclose()

    asyncio.run(scenario())
    with ctx.sessions() as session:
        return session.scalars(select(OutboxRow).where(OutboxRow.process_id == process_id)).one()


def test_deliveries_over_https_trust_the_configured_data_space_ca_only(tmp_path: Path) -> None:
    made = ensure_certificates(tmp_path / "tls", ["receiver"], also=["127.0.0.1"])
    receiver = CookieSetter()
    server = made.servers["receiver"]
    with serve(receiver.app, ssl_certfile=str(server.cert_file), ssl_keyfile=str(server.key_file)) as base:
        with context(tmp_path / "trusting", tls={"ca_file": str(made.ca_file)}) as ctx:
            row = deliver_once(ctx, f"{base}/dsp", "proc-tls")
            assert row.status == "sent" and len(receiver.cookies) == 1
        with context(tmp_path / "public-cas-only") as ctx:
            row = deliver_once(ctx, f"{base}/dsp", "proc-untrusted")
            assert row.status == "pending" and "CERTIFICATE_VERIFY_FAILED" in (row.last_error or "")
            assert len(receiver.cookies) == 1  # nothing reached the server


def test_hooks_receive_the_message_with_its_attributes_in_an_open_transaction(tmp_path: Path) -> None:
    receiver = CookieSetter()
    seen: list[tuple[Any, Any]] = []
    with serve(receiver.app) as base, context(tmp_path) as ctx:
        def hook(session: Session, row: Outgoing, payload: Any) -> None:
            assert isinstance(session, Session) and session.in_transaction()
            seen.append((row, payload))

        ctx.outbox.on_delivered("ContractNegotiationEventMessage", hook)

        async def scenario() -> None:
            worker = asyncio.create_task(ctx.outbox.run_worker())
            await asyncio.to_thread(enqueue, ctx, f"{base}/h", "proc-hooked", 4)
            await until(lambda: bool(seen) and all_sent(ctx), 5)
            await ctx.outbox.stop_worker()
            worker.cancel()
            await ctx.http.aclose()

        asyncio.run(scenario())
        row, payload = seen[0]
        assert isinstance(row, Outgoing) and payload == {"ok": True}
        assert (row.process_id, row.kind, row.message_type, row.url, row.recipient_did, row.correlation_id) == (
            "proc-hooked", "negotiation", "ContractNegotiationEventMessage", f"{base}/h", "did:web:peer", "corr-1")
        assert json.loads(row.body)["n"] == 4 and isinstance(row.id, int)


def test_an_unreachable_counterparty_is_retried_not_failed(tmp_path: Path) -> None:
    with context(tmp_path) as ctx:
        row = deliver_once(ctx, f"http://127.0.0.1:{free_port()}/dsp", "proc-down")
        assert row.status == "pending" and row.attempts == 1 and "ConnectError" in (row.last_error or "")


def test_an_unusable_url_fails_for_good_at_once_and_tells_the_process(tmp_path: Path) -> None:
    failures: list[tuple[str, int | None, str]] = []
    with context(tmp_path) as ctx:
        ctx.outbox.on_failed("negotiation", lambda row, status, detail: failures.append((row.process_id, status,
                                                                                          detail)))
        row = deliver_once(ctx, "http://[not-an-address/dsp", "proc-bad-url")
        assert row.status == "failed" and row.attempts == 1
        assert failures and failures[0][:2] == ("proc-bad-url", None) and "URL" in failures[0][2]
