"""The policy monitor: wakes at the earliest time bound, terminates expired agreements, suspends on revocation."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from connector.dataplane.duties import count_limit, time_bounds
from connector.usage import PolicyMonitor
from tests.connector.test_dataplane_support import make_party, make_policy, serving, token_of, transfer_info


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def _window(until: datetime) -> Any:
    return make_policy([{"leftOperand": "dateTime", "operator": "lteq",
                         "rightOperand": {"@value": until.isoformat().replace("+00:00", "Z"),
                                          "@type": "xsd:dateTime"}}])


def test_time_bounds_and_count_limits_are_read_from_the_policy() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    policy = make_policy([
        {"leftOperand": "elapsedTime", "operator": "lt", "rightOperand": {"@value": "P2D", "@type": "xsd:duration"}},
        {"leftOperand": "dateTime", "operator": "lteq",
         "rightOperand": {"@value": "2026-01-05T00:00:00Z", "@type": "xsd:dateTime"}},
        {"leftOperand": "count", "operator": "lt", "rightOperand": 10}])
    assert sorted(time_bounds(policy, start)) == [start + timedelta(days=2), datetime(2026, 1, 5, tzinfo=UTC)]
    assert count_limit(policy) == 9
    assert count_limit(make_policy()) is None


def test_monitor_terminates_when_the_window_closes(database_url: str, tmp_path: Path) -> None:
    folder = tmp_path / "src"
    folder.mkdir()
    (folder / "d.txt").write_text("x")
    terminated: list[tuple[str, str]] = []

    async def scenario() -> None:
        provider = make_party("provider", database_url, tmp_path,
                              terminate_transfers=lambda agr, reason: terminated.append((agr, reason)))
        consumer = make_party("consumer", f"sqlite:///{tmp_path / 'c.db'}", tmp_path)
        until = datetime.now(UTC) + timedelta(seconds=1.5)
        async with serving(provider), httpx.AsyncClient() as client:
            monitor = PolicyMonitor(provider.dataplane)
            src = {"type": "folder", "path": str(folder)}
            a = await provider.dataplane.start(transfer_info(provider, consumer, src,
                                                             policy=_window(until)))
            assert a
            result = await monitor.tick()
            assert result.next_wake is not None
            assert until <= result.next_wake <= until + timedelta(seconds=1)  # sleeps until the bound, no polling
            headers = {"Authorization": f"Bearer {token_of(a)}"}
            assert (await client.get(a["endpoint"] + "/d.txt", headers=headers)).status_code == 200
            monitor.start()
            try:
                for _ in range(40):
                    await asyncio.sleep(0.1)
                    if terminated:
                        break
            finally:
                await monitor.stop()
            r = await client.get(a["endpoint"] + "/d.txt", headers=headers)
            assert r.status_code == 401 and r.json()["code"] == "token_revoked"
        assert terminated and terminated[0][0] == "agr-1"
        assert "no longer permits" in terminated[0][1]
        assert any(e.kind == "monitor.decision" and e.fields["decision"] == "deny" for e in provider.audit.entries())

    run(scenario())


def test_monitor_suspends_on_revoked_credentials_and_is_woken_by_poke(database_url: str, tmp_path: Path) -> None:
    folder = tmp_path / "src"
    folder.mkdir()
    (folder / "d.txt").write_text("x")
    suspended: list[tuple[str, str]] = []
    revoked: dict[str, str | None] = {"reason": None}

    async def scenario() -> None:
        provider = make_party("provider", database_url, tmp_path,
                              revocation=lambda did, creds: revoked["reason"],
                              suspend_transfers=lambda agr, reason: suspended.append((agr, reason)))
        consumer = make_party("consumer", f"sqlite:///{tmp_path / 'c.db'}", tmp_path)
        async with serving(provider):
            monitor = PolicyMonitor(provider.dataplane, revocation_interval=0.2)
            await provider.dataplane.start(transfer_info(provider, consumer, {"type": "folder", "path": str(folder)}))
            monitor.start()
            try:
                await asyncio.sleep(0.3)
                assert suspended == []
                revoked["reason"] = "status list says revoked"
                monitor.poke()
                for _ in range(30):
                    await asyncio.sleep(0.1)
                    if suspended:
                        break
            finally:
                await monitor.stop()
        assert suspended == [("agr-1", "counterparty credentials no longer valid: status list says revoked")]
        assert provider.dataplane.running_transfers() == []

    run(scenario())


def test_monitor_wakes_when_a_counterparty_credential_expires(database_url: str, tmp_path: Path) -> None:
    from dataclasses import replace

    folder = tmp_path / "src"
    folder.mkdir()
    expiry = datetime.now(UTC) + timedelta(hours=5)

    async def scenario() -> None:
        provider = make_party("provider", database_url, tmp_path)
        consumer = make_party("consumer", f"sqlite:///{tmp_path / 'c.db'}", tmp_path)
        info = transfer_info(provider, consumer, {"type": "folder", "path": str(folder)})
        info = replace(info, credentials=({"type": ["VerifiableCredential", "MembershipCredential"],
                                           "validUntil": expiry.isoformat().replace("+00:00", "Z")},))
        await provider.dataplane.start(info)
        result = await PolicyMonitor(provider.dataplane).tick()
        assert result.next_wake is not None
        assert abs((result.next_wake - expiry).total_seconds()) < 1
        await provider.http.aclose()

    run(scenario())
