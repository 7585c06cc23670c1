"""Data plane end to end over real HTTP: pull with EDR, Range, digests, receipts, refusals of every kind."""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import os
from pathlib import Path
from typing import Any

import httpx
import pytest

from connector.dataplane import FileSink
from connector.dataplane.errors import DataPlaneError
from tests.connector.test_dataplane_support import (
    file_source,
    make_party,
    make_policy,
    serving,
    token_of,
    transfer_info,
)


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def _sha(data: bytes) -> str:
    return "sha-256=" + hashlib.sha256(data).hexdigest()


def test_pull_with_edr_range_digest_and_receipt(database_url: str, tmp_path: Path) -> None:
    content = os.urandom(300_000)
    folder, source = file_source(tmp_path, content=content)

    async def scenario() -> None:
        provider = make_party("provider", database_url, tmp_path, data_sources=[source])
        consumer = make_party("consumer", f"sqlite:///{tmp_path / 'consumer.db'}", tmp_path)
        async with serving(provider, consumer):
            info = transfer_info(provider, consumer, {"source": "source"})
            address = await provider.dataplane.start(info)
            assert address is not None and address["endpoint"] == f"{provider.url}/data/tp-1"
            assert {p["name"] for p in address["endpointProperties"]} >= {"authorization", "authType"}
            # a ranged read straight over HTTP
            async with httpx.AsyncClient() as client:
                r = await client.get(address["endpoint"] + "/data.bin",
                                     headers={"Authorization": f"Bearer {token_of(address)}", "Range": "bytes=10-19"})
                assert r.status_code == 206
                assert r.content == content[10:20]
                assert r.headers["content-range"] == f"bytes 10-19/{len(content)}"
                r = await client.get(address["endpoint"] + "/data.bin",
                                     headers={"Authorization": f"Bearer {token_of(address)}", "Range": "bytes=999999-"})
                assert r.status_code == 416 and r.headers["content-type"] == "application/problem+json"
            consumer.dataplane.store_edr("c-1", address, agreement_id="agr-1", provider_did=provider.did)
            result = await consumer.dataplane.pull("c-1", FileSink("copy.bin"), path="data.bin")
            assert Path(result.location or "").read_bytes() == content
            assert result.digest == _sha(content) and result.size == len(content)
            receipts = provider.audit.receipts("tp-1")
            assert len(receipts) == 1 and receipts[0].digest == _sha(content)
            assert receipts[0].signer == consumer.did
            sent = [e for e in provider.audit.entries() if e.kind == "data.sent"]
            assert sent[-1].fields["digest"] == _sha(content) and sent[-1].fields["bytes"] == len(content)
            from policies import canonical_hash
            assert sent[-1].fields["agreement_hash"] == canonical_hash(info.policy)
            assert provider.audit.verify(lambda kid: provider.key if kid == provider.kid else None).ok
            assert consumer.audit.receipts()[0].digest == _sha(content)

    run(scenario())


def _problem(r: httpx.Response) -> tuple[int, str]:
    assert r.headers["content-type"] == "application/problem+json"
    return r.status_code, r.json()["code"]


def test_tokens_other_transfer_expired_revoked_and_replayed(database_url: str, tmp_path: Path) -> None:
    _folder, source = file_source(tmp_path)

    async def scenario() -> None:
        provider = make_party("provider", database_url, tmp_path, data_sources=[source])
        consumer = make_party("consumer", f"sqlite:///{tmp_path / 'c.db'}", tmp_path)
        async with serving(provider), httpx.AsyncClient() as client:
            a1 = await provider.dataplane.start(transfer_info(provider, consumer, {"source": "source"}))
            a2 = await provider.dataplane.start(transfer_info(provider, consumer, {"source": "source"},
                                                              transfer_id="tp-2"))
            assert a1 and a2

            async def get(tid: str, token: str | None, path: str = "data.bin") -> httpx.Response:
                headers = {"Authorization": f"Bearer {token}"} if token else {}
                return await client.get(f"{provider.url}/data/{tid}/{path}", headers=headers)

            assert (await get("tp-1", token_of(a1))).status_code == 200
            assert _problem(await get("tp-1", token_of(a2))) == (401, "token_wrong_transfer")
            assert _problem(await get("tp-1", None)) == (401, "token_invalid")
            assert _problem(await get("tp-1", "abc.def.ghi")) == (401, "token_invalid")
            forged = token_of(a1)[:-6] + ("AAAAAA" if not token_of(a1).endswith("AAAAAA") else "BBBBBB")
            assert _problem(await get("tp-1", forged)) == (401, "token_invalid")
            # expired: a token issued long ago
            old = provider.dataplane.tokens.issue("tp-1", "agr-1", consumer.did, now=1_000_000)
            assert _problem(await get("tp-1", old.access)) == (401, "token_expired")
            # the state machine says the transfer is no longer STARTED
            provider.states.states["tp-1"] = "SUSPENDED"
            assert _problem(await get("tp-1", token_of(a1))) == (403, "transfer_not_active")
            provider.states.states["tp-1"] = "STARTED"
            used_before = provider.dataplane.evaluate(provider.dataplane.transfer("tp-1"), 0)  # no state change
            assert used_before.decision == "permit"
            # terminated: revoked at once, a replay is refused with the reason
            provider.dataplane.terminate("tp-1", "consumer asked")
            status, code = _problem(await get("tp-1", token_of(a1)))
            assert (status, code) == (401, "token_revoked")
            # the other transfer still works
            assert (await get("tp-2", token_of(a2))).status_code == 200
            refused = [e for e in provider.audit.entries() if e.kind == "data.refused"]
            assert {e.fields["code"] for e in refused} >= {"token_wrong_transfer", "token_expired", "token_revoked",
                                                           "transfer_not_active", "token_invalid"}
            assert all(e.fields["decision"] == "deny" for e in refused)

    run(scenario())


def test_paths_that_escape_the_folder_are_refused(database_url: str, tmp_path: Path) -> None:
    folder, source = file_source(tmp_path)
    (tmp_path / "secret.txt").write_text("top secret")
    os.symlink(tmp_path / "secret.txt", folder / "link.txt")
    os.symlink(tmp_path, folder / "up")

    async def scenario() -> None:
        provider = make_party("provider", database_url, tmp_path, data_sources=[source])
        consumer = make_party("consumer", f"sqlite:///{tmp_path / 'c.db'}", tmp_path)
        async with serving(provider), httpx.AsyncClient() as client:
            a = await provider.dataplane.start(transfer_info(provider, consumer, {"source": "source"}))
            assert a
            headers = {"Authorization": f"Bearer {token_of(a)}"}
            base = f"{provider.url}/data/tp-1/"
            for path in ("link.txt", "up/secret.txt", "..%2Fsecret.txt", "%2Fetc%2Fpasswd",
                         "sub/..%2F..%2Fsecret.txt"):
                r = await client.get(base + path, headers=headers)
                assert r.status_code in (403, 404), (path, r.status_code)
                assert "top secret" not in r.text
                assert r.json()["code"] in ("path_refused", "not_found", "http_error")
            assert (await client.get(base + "data.bin", headers=headers)).status_code == 200
            codes = [e.fields.get("code") for e in provider.audit.entries() if e.kind == "data.refused"]
            assert codes.count("path_refused") >= 3
        from sqlalchemy import select

        from connector.storage.tables_dataplane import DpUsageRow
        with provider.dataplane.sessions() as s:
            assert s.execute(select(DpUsageRow.used)).scalar_one() == 1  # only the good request counted

    run(scenario())


def test_count_is_enforced_across_transfers_atomically(database_url: str, tmp_path: Path) -> None:
    _folder, source = file_source(tmp_path)
    policy = make_policy([{"leftOperand": "count", "operator": "lteq", "rightOperand": 5}])

    async def scenario() -> None:
        provider = make_party("provider", database_url, tmp_path, data_sources=[source])
        consumer = make_party("consumer", f"sqlite:///{tmp_path / 'c.db'}", tmp_path)
        async with serving(provider), httpx.AsyncClient() as client:
            a1 = await provider.dataplane.start(transfer_info(provider, consumer, {"source": "source"}, policy=policy))
            a2 = await provider.dataplane.start(transfer_info(provider, consumer, {"source": "source"}, policy=policy,
                                                              transfer_id="tp-2"))
            assert a1 and a2
            requests = [client.get(f"{provider.url}/data/{tid}/data.bin",
                                   headers={"Authorization": f"Bearer {token_of(a)}"})
                        for _ in range(6) for tid, a in (("tp-1", a1), ("tp-2", a2))]
            responses = await asyncio.gather(*requests)
            codes = sorted(r.status_code for r in responses)
            assert codes == [200] * 5 + [403] * 7
            assert {r.json()["code"] for r in responses if r.status_code == 403} == {"usage_exhausted"}
        from sqlalchemy import select

        from connector.storage.tables_dataplane import DpUsageRow
        with provider.dataplane.sessions() as s:
            assert s.execute(select(DpUsageRow.used)).scalar_one() == 5

    run(scenario())


def test_policy_window_and_revoked_credentials_refuse(database_url: str, tmp_path: Path) -> None:
    _folder, source = file_source(tmp_path)
    expired = make_policy([{"leftOperand": "dateTime", "operator": "lt",
                            "rightOperand": {"@value": "2020-01-01T00:00:00Z", "@type": "xsd:dateTime"}}])
    revoked: dict[str, str | None] = {"reason": None}

    async def scenario() -> None:
        provider = make_party("provider", database_url, tmp_path, data_sources=[source],
                              revocation=lambda did, creds: revoked["reason"])
        consumer = make_party("consumer", f"sqlite:///{tmp_path / 'c.db'}", tmp_path)
        async with serving(provider), httpx.AsyncClient() as client:
            a1 = await provider.dataplane.start(transfer_info(provider, consumer, {"source": "source"},
                                                              policy=expired))
            a2 = await provider.dataplane.start(transfer_info(provider, consumer, {"source": "source"},
                                                              transfer_id="tp-2", agreement_id="agr-2"))
            assert a1 and a2
            r = await client.get(f"{provider.url}/data/tp-1/data.bin",
                                 headers={"Authorization": f"Bearer {token_of(a1)}"})
            assert _problem(r) == (403, "policy_denied")
            r = await client.get(f"{provider.url}/data/tp-2/data.bin",
                                 headers={"Authorization": f"Bearer {token_of(a2)}"})
            assert r.status_code == 200
            revoked["reason"] = "MembershipCredential revoked by its issuer"
            r = await client.get(f"{provider.url}/data/tp-2/data.bin",
                                 headers={"Authorization": f"Bearer {token_of(a2)}"})
            assert _problem(r) == (403, "credentials_revoked")
            assert "revoked by its issuer" in r.json()["detail"]
        from sqlalchemy import select

        from connector.storage.tables_dataplane import DpUsageRow
        with provider.dataplane.sessions() as s:
            used = dict(s.execute(select(DpUsageRow.agreement_id, DpUsageRow.used)).all())
        assert used == {"agr-1": 0, "agr-2": 1}  # refusals changed no counter

    run(scenario())


def test_refresh_token_and_http_and_inline_sources(database_url: str, tmp_path: Path) -> None:
    backend_data = b"backend-bytes " * 100

    async def scenario() -> None:
        from fastapi import FastAPI
        from fastapi.responses import Response

        backend = FastAPI()

        @backend.get("/files/{name}")
        async def files(name: str) -> Response:
            if name == "gz":  # a compressed backend answer reaches the consumer decoded
                return Response(gzip.compress(backend_data), media_type="application/octet-stream",
                                headers={"Content-Encoding": "gzip"})
            return Response(backend_data + name.encode(), media_type="application/octet-stream")

        import uvicorn

        from tests.connector.test_dataplane_support import free_port
        port = free_port()
        server = uvicorn.Server(uvicorn.Config(backend, host="127.0.0.1", port=port, log_level="warning",
                                               lifespan="off"))
        task = asyncio.create_task(server.serve())
        provider = make_party("provider", database_url, tmp_path)
        consumer = make_party("consumer", f"sqlite:///{tmp_path / 'c.db'}", tmp_path)
        try:
            async with serving(provider, consumer):
                a = await provider.dataplane.start(transfer_info(
                    provider, consumer, {"type": "HttpData", "baseUrl": f"http://127.0.0.1:{port}/files"}))
                assert a
                consumer.dataplane.store_edr("c-1", a, agreement_id="agr-1", provider_did=provider.did)
                result = await consumer.dataplane.pull("c-1", FileSink("backend.bin"), path="x")
                assert Path(result.location or "").read_bytes() == backend_data + b"x"
                old_token = consumer.dataplane.edr("c-1").token
                await consumer.dataplane.refresh_edr("c-1")
                assert consumer.dataplane.edr("c-1").token != old_token
                async with httpx.AsyncClient() as client:
                    r = await client.get(a["endpoint"] + "/x", headers={"Authorization": f"Bearer {old_token}"})
                    assert _problem(r) == (401, "token_revoked")
                    r = await client.post(f"{provider.url}/token", data={"grant_type": "refresh_token",
                                                                         "refresh_token": "nope"})
                    assert _problem(r) == (401, "token_invalid")
                result = await consumer.dataplane.pull("c-1", FileSink("backend2.bin"), path="y")
                assert result.size == len(backend_data) + 1
                result = await consumer.dataplane.pull("c-1", FileSink("backend3.bin"), path="gz")
                assert Path(result.location or "").read_bytes() == backend_data
                inline = await provider.dataplane.start(transfer_info(
                    provider, consumer, {"type": "inline", "data": "inline hello"}, transfer_id="tp-inline"))
                assert inline
                consumer.dataplane.store_edr("c-2", inline, agreement_id="agr-1")
                result = await consumer.dataplane.pull("c-2", FileSink("inline.txt"))
                assert Path(result.location or "").read_text() == "inline hello"
                with pytest.raises(DataPlaneError, match="climbs out"):
                    await consumer.dataplane.pull("c-2", FileSink("../escape.txt"))
        finally:
            server.should_exit = True
            await task

    run(scenario())


def test_push_streams_to_the_consumer_inbox_and_returns_a_receipt(database_url: str, tmp_path: Path) -> None:
    content = os.urandom(50_000)
    _folder, source = file_source(tmp_path, content=content)
    completed: list[tuple[str, str, int]] = []

    async def scenario() -> None:
        provider = make_party("provider", database_url, tmp_path, data_sources=[source],
                              on_complete=lambda tid, digest, size: completed.append((tid, digest, size)))
        consumer = make_party("consumer", f"sqlite:///{tmp_path / 'c.db'}", tmp_path)
        async with serving(provider, consumer):
            inbox = consumer.dataplane.consumer_address("c-9", agreement_id="agr-1", provider_did=provider.did)
            info = transfer_info(provider, consumer, {"source": "source", "path": "data.bin"},
                                 transfer_type="HttpData-PUSH", consumer_address=inbox, consumer_pid="c-9")
            assert await provider.dataplane.start(info) is None
            await provider.dataplane.drain()
            assert completed == [("tp-1", _sha(content), len(content))]
            assert (consumer.folder / "received" / "c-9" / "data").read_bytes() == content
            assert provider.audit.receipts("c-9")[0].signer == consumer.did
            # the inbox token is single-use: a second push is refused
            async with httpx.AsyncClient() as client:
                r = await client.put(inbox["endpoint"], content=b"more",
                                     headers={"Authorization": f"Bearer {token_of(inbox)}"})
                assert _problem(r) == (401, "token_revoked")

    run(scenario())


def test_pull_into_an_http_sink_carries_the_correlation_id(database_url: str, tmp_path: Path) -> None:
    from datetime import UTC, datetime

    import uvicorn
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from connector.dataplane import HttpSink
    from connector.logs import correlation
    from tests.connector.test_dataplane_support import free_port
    from tests.connector.test_duties import _delete_policy

    content = os.urandom(200_000)
    _folder, source = file_source(tmp_path, content=content)
    received: list[bytes] = []

    async def incoming(request: Any) -> JSONResponse:
        received.append(await request.body())
        return JSONResponse({"ok": 1})

    sink_app = Starlette(routes=[Route("/incoming", incoming, methods=["POST"])])

    async def scenario() -> None:
        port = free_port()
        server = uvicorn.Server(uvicorn.Config(sink_app, host="127.0.0.1", port=port, log_level="warning",
                                               lifespan="off"))
        task = asyncio.create_task(server.serve())
        provider = make_party("provider", database_url, tmp_path, data_sources=[source])
        consumer = make_party("consumer", f"sqlite:///{tmp_path / 'c.db'}", tmp_path)
        try:
            async with serving(provider, consumer):
                a = await provider.dataplane.start(transfer_info(provider, consumer, {"source": "source"}))
                assert a
                consumer.dataplane.store_edr("c-1", a, agreement_id="agr-1", provider_did=provider.did,
                                             policy=_delete_policy(60), agreement_time=datetime.now(UTC))
                with correlation("corr-xyz"):
                    result = await consumer.dataplane.pull("c-1", HttpSink(f"http://127.0.0.1:{port}/incoming"),
                                                           path="data.bin")
                assert received == [content] and result.digest == _sha(content)
                sent = [e for e in provider.audit.entries() if e.kind == "data.sent"]
                assert sent[-1].fields["correlation_id"] == "corr-xyz"
                kinds = {e.kind: e for e in consumer.audit.entries()}
                assert kinds["duty.unenforceable"].fields["action"] == "delete"
                assert kinds["data.received"].fields["correlation_id"] == "corr-xyz"
                with pytest.raises(DataPlaneError, match="answered HTTP 404"):
                    await consumer.dataplane.pull("c-1", HttpSink(f"http://127.0.0.1:{port}/nowhere"),
                                                  path="data.bin")
        finally:
            server.should_exit = True
            await task

    run(scenario())


def test_bytes_sent_are_kept_per_transfer(database_url: str, tmp_path: Path) -> None:
    from sqlalchemy import select

    from connector.storage.tables_dataplane import DpTransferRow

    big, small = os.urandom(100_000), b"tiny"
    folder, source = file_source(tmp_path, content=big)
    (folder / "small.txt").write_bytes(small)

    async def scenario() -> None:
        provider = make_party("provider", database_url, tmp_path, data_sources=[source])
        consumer = make_party("consumer", f"sqlite:///{tmp_path / 'c.db'}", tmp_path)
        async with serving(provider), httpx.AsyncClient() as client:
            a = await provider.dataplane.start(transfer_info(provider, consumer, {"source": "source"}))
            assert a
            headers = {"Authorization": f"Bearer {token_of(a)}"}
            assert (await client.get(a["endpoint"] + "/data.bin", headers=headers)).content == big
            assert (await client.get(a["endpoint"] + "/small.txt", headers=headers)).content == small
        with provider.dataplane.sessions() as s:
            row = s.execute(select(DpTransferRow.bytes_sent, DpTransferRow.last_digest)).one()
        assert row == (len(big) + len(small), _sha(small))

    run(scenario())
