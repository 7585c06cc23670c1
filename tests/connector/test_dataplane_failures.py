"""What the data plane does when it cannot serve: PUSH refusals go to the state machine, the DSP state is read
in the counting transaction, and the direct data route answers like the rest of the app (real HTTP, real DB)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
from sqlalchemy import select, update

from connector.storage.tables_dataplane import DpTransferRow, DpUsageRow
from connector.storage.tables_protocol import TransferRow
from connector.transfer import ProcessStates
from tests.connector.test_dataplane_support import (
    file_source,
    make_party,
    make_policy,
    serving,
    token_of,
    transfer_info,
)

ONE_USE = [{"leftOperand": "count", "operator": "lteq", "rightOperand": 1}]


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def audit_kinds(party: Any, process_id: str) -> dict[str, dict[str, Any]]:
    return {e.kind: e.fields for e in party.audit.entries() if e.fields.get("process_id") == process_id}


def test_a_push_the_agreement_refuses_is_handed_to_the_state_machine(database_url: str, tmp_path: Path) -> None:
    _folder, source = file_source(tmp_path, content=b"counted")
    failed: list[tuple[str, str, str, str]] = []
    completed: list[str] = []

    async def fail(transfer_id: str, step: str, code: str, reason: str) -> None:
        failed.append((transfer_id, step, code, reason))

    async def scenario() -> None:
        provider = make_party("provider", database_url, tmp_path, data_sources=[source], fail_transfer=fail,
                              on_complete=lambda tid, _d, _s: completed.append(tid))
        consumer = make_party("consumer", f"sqlite:///{tmp_path / 'c.db'}", tmp_path)
        policy = make_policy(ONE_USE)
        async with serving(provider, consumer):
            for tid, cpid in (("tp-1", "c-1"), ("tp-2", "c-2")):
                inbox = consumer.dataplane.consumer_address(cpid, agreement_id="agr-1", provider_did=provider.did)
                await provider.dataplane.start(transfer_info(
                    provider, consumer, {"source": "source", "path": "data.bin"}, policy=policy, transfer_id=tid,
                    transfer_type="HttpData-PUSH", consumer_address=inbox, consumer_pid=cpid))
                await provider.dataplane.drain()
        assert completed == ["tp-1"]
        assert len(failed) == 1
        tid, step, code, reason = failed[0]
        assert (tid, step, code) == ("tp-2", "terminate", "usage_exhausted")
        assert "used up" in reason
        kinds = audit_kinds(provider, "tp-2")
        assert kinds["data.push_failed"]["decision"] == "deny" and kinds["data.push_failed"]["code"] == code
        assert "data.sent" not in kinds
        assert not (consumer.folder / "received" / "c-2").exists()

    run(scenario())


def test_without_a_state_machine_a_refused_push_is_terminated_here(tmp_path: Path) -> None:
    _folder, source = file_source(tmp_path)

    async def scenario() -> None:
        provider = make_party("provider", f"sqlite:///{tmp_path / 'p.db'}", tmp_path, data_sources=[source])
        consumer = make_party("consumer", f"sqlite:///{tmp_path / 'c.db'}", tmp_path)
        async with serving(provider, consumer):
            inbox = consumer.dataplane.consumer_address("c-1", agreement_id="agr-1", provider_did=provider.did)
            window = [{"leftOperand": "dateTime", "operator": "lt",
                       "rightOperand": {"@value": "2001-01-01T00:00:00Z", "@type": "xsd:dateTime"}}]
            await provider.dataplane.start(transfer_info(
                provider, consumer, {"source": "source", "path": "data.bin"}, policy=make_policy(window),
                transfer_type="HttpData-PUSH", consumer_address=inbox, consumer_pid="c-1"))
            await provider.dataplane.drain()
        with provider.dataplane.sessions() as s:
            state, reason = s.execute(select(DpTransferRow.state, DpTransferRow.reason)).one()
        assert state == "terminated" and "no longer permits" in reason

    run(scenario())


def test_revoked_credentials_suspend_a_push_instead(tmp_path: Path) -> None:
    _folder, source = file_source(tmp_path)
    suspended: list[tuple[str, str]] = []
    failed: list[Any] = []

    async def scenario() -> None:
        provider = make_party("provider", f"sqlite:///{tmp_path / 'p.db'}", tmp_path, data_sources=[source],
                              revocation=lambda _did, _creds: "MembershipCredential urn:m:1 was revoked",
                              suspend_transfers=lambda agr, why: suspended.append((agr, why)),
                              fail_transfer=lambda *args: failed.append(args))
        consumer = make_party("consumer", f"sqlite:///{tmp_path / 'c.db'}", tmp_path)
        async with serving(provider, consumer):
            inbox = consumer.dataplane.consumer_address("c-1", agreement_id="agr-1", provider_did=provider.did)
            await provider.dataplane.start(transfer_info(
                provider, consumer, {"source": "source", "path": "data.bin"}, transfer_type="HttpData-PUSH",
                consumer_address=inbox, consumer_pid="c-1"))
            await provider.dataplane.drain()
        assert failed == []
        assert suspended and suspended[0][0] == "agr-1" and "was revoked" in suspended[0][1]
        with provider.dataplane.sessions() as s:
            assert s.execute(select(DpTransferRow.state)).scalar_one() == "suspended"
            assert s.execute(select(DpUsageRow.used)).scalar_one() == 0

    run(scenario())


def test_the_dsp_state_is_read_in_the_counting_transaction(tmp_path: Path) -> None:
    _folder, source = file_source(tmp_path)

    async def scenario() -> None:
        provider = make_party("provider", f"sqlite:///{tmp_path / 'p.db'}", tmp_path, data_sources=[source])
        consumer = make_party("consumer", f"sqlite:///{tmp_path / 'c.db'}", tmp_path)
        sessions = provider.dataplane.sessions
        provider.dataplane.replace_hooks(states=ProcessStates(SimpleNamespace(sessions=sessions)))
        with sessions.begin() as s:
            s.add(TransferRow(id="tp-1", role="provider", state="STARTED", consumer_pid="c-1", provider_pid="tp-1",
                              agreement_id="agr-1", transfer_type="HttpData-PULL", counterparty_did=consumer.did,
                              counterparty_address="http://127.0.0.1:9", approval="auto", correlation_id="tp-1",
                              created_at=datetime.now(UTC), updated_at=datetime.now(UTC)))
        async with serving(provider), httpx.AsyncClient() as client:
            address = await provider.dataplane.start(transfer_info(provider, consumer, {"source": "source"}))
            assert address is not None
            url, auth = f"{provider.url}/data/tp-1/data.bin", {"Authorization": f"Bearer {token_of(address)}"}
            assert (await client.get(url, headers=auth)).status_code == 200
            with sessions.begin() as s:  # the state machine moves on; the data plane has not heard yet
                s.execute(update(TransferRow).where(TransferRow.id == "tp-1").values(state="SUSPENDED"))
            refused = await client.get(url, headers=auth)
            assert refused.status_code == 403 and refused.json()["code"] == "transfer_not_active"
            assert "SUSPENDED" in refused.json()["detail"]
        with sessions() as s:
            assert s.execute(select(DpUsageRow.used)).scalar_one() == 1  # the refused request counted nothing

    run(scenario())


def test_the_direct_data_route_keeps_correlation_ids_and_problem_answers(tmp_path: Path) -> None:
    _folder, source = file_source(tmp_path)

    async def scenario() -> None:
        provider = make_party("provider", f"sqlite:///{tmp_path / 'p.db'}", tmp_path, data_sources=[source])
        consumer = make_party("consumer", f"sqlite:///{tmp_path / 'c.db'}", tmp_path)
        async with serving(provider), httpx.AsyncClient() as client:
            address = await provider.dataplane.start(transfer_info(provider, consumer, {"source": "source"}))
            assert address is not None
            ok = await client.get(f"{provider.url}/data/tp-1/data.bin",
                                  headers={"Authorization": f"Bearer {token_of(address)}",
                                           "X-Correlation-Id": "corr-42"})
            assert ok.status_code == 200 and ok.headers["x-correlation-id"] == "corr-42"
            assert ok.headers["x-pactum-uses"] == "1"
            missing = await client.get(f"{provider.url}/data/tp-1/data.bin")
            assert missing.status_code == 401 and missing.headers["content-type"] == "application/problem+json"
            assert missing.json()["code"] == "token_invalid" and missing.headers["x-correlation-id"]
            nameless = await client.get(f"{provider.url}/data/")
            assert nameless.status_code == 404 and nameless.json()["code"] == "not_found"
            head = await client.head(f"{provider.url}/data/tp-1/data.bin",
                                     headers={"Authorization": f"Bearer {token_of(address)}"})
            assert head.status_code == 200  # HEAD still goes through the app's own routes

    run(scenario())
