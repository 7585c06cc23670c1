"""Duties: provider-side anonymisation on the stream, consumer-side deletion with fulfilment reports,
and a consumer that never confirms (violated -> transfers suspended)."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from connector.dataplane import FileSink
from connector.dataplane.transform import FieldRule, TransformError, csv_transform, json_transform, ndjson_transform
from connector.usage import PolicyMonitor
from policies import parse_policy
from tests.connector.test_dataplane_support import make_party, serving, token_of, transfer_info

XB = "https://w3id.org/pactum/xborder/v1"


def run(coro: Any) -> Any:
    return asyncio.run(coro)


async def _chunks(data: bytes, size: int) -> AsyncIterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i:i + size]


async def _collect(stream: AsyncIterator[bytes]) -> bytes:
    return b"".join([c async for c in stream])


RULE = FieldRule(frozenset({"name", "email"}))
DROP = FieldRule(frozenset({"name", "email"}), "drop")


@pytest.mark.parametrize("chunk", [1, 7, 64, 100_000])
def test_json_array_is_anonymised_in_any_chunking(chunk: int) -> None:
    records = [{"id": i, "name": f"n{i}", "nested": {"email": "x@y", "keep": [1, 2.5, "é"]}} for i in range(30)]
    data = json.dumps(records).encode()
    masked = json.loads(run(_collect(json_transform(RULE)(_chunks(data, chunk)))))
    assert masked[3] == {"id": 3, "name": None, "nested": {"email": None, "keep": [1, 2.5, "é"]}}
    dropped = json.loads(run(_collect(json_transform(DROP)(_chunks(data, chunk)))))
    assert dropped[0] == {"id": 0, "nested": {"keep": [1, 2.5, "é"]}}
    numbers = json.loads(run(_collect(json_transform(RULE)(_chunks(b"[1, 22, 333, 4444]", chunk)))))
    assert numbers == [1, 22, 333, 4444]


def test_json_single_object_and_ndjson() -> None:
    one = run(_collect(json_transform(RULE)(_chunks(b'{"name": "a", "b": {"email": 1}}', 5))))
    assert json.loads(one) == {"name": None, "b": {"email": None}}
    nd = b'{"name":"a","x":1}\n{"email":"b","y":2}\n'
    out = run(_collect(ndjson_transform(DROP)(_chunks(nd, 3))))
    assert [json.loads(line) for line in out.decode().splitlines()] == [{"x": 1}, {"y": 2}]


@pytest.mark.parametrize("bad", [b"[1, 2", b"[{]", b"[1] [2]", b"\xff\xfe[]"])
def test_bad_json_is_refused_with_a_clear_error(bad: bytes) -> None:
    with pytest.raises(TransformError):
        run(_collect(json_transform(RULE)(_chunks(bad, 2))))


@pytest.mark.parametrize("chunk", [1, 5, 1000])
def test_csv_is_anonymised_row_by_row(chunk: int) -> None:
    data = b'id,name,city,email\n1,"Doe, Jane",Berlin,j@x\n2,"multi\nline",Paris,m@x\n'
    rows = list(csv.reader(io.StringIO(run(_collect(csv_transform(RULE)(_chunks(data, chunk)))).decode())))
    assert rows == [["id", "name", "city", "email"], ["1", "", "Berlin", ""], ["2", "", "Paris", ""]]
    rows = list(csv.reader(io.StringIO(run(_collect(csv_transform(DROP)(_chunks(data, chunk)))).decode())))
    assert rows == [["id", "city"], ["1", "Berlin"], ["2", "Paris"]]


def _anonymise_policy(fields: list[str], extra_duty: dict[str, Any] | None = None) -> Any:
    duties: list[dict[str, Any]] = [{"@id": "urn:agreement:1#anon", "action": {
        "rdf:value": {"@id": "odrl:anonymize"},
        "refinement": [{"leftOperand": {"@id": XB + "#fields"}, "operator": "isAllOf",
                        "rightOperand": fields}]}}]
    if extra_duty:
        duties.append(extra_duty)
    return parse_policy({"@context": ["http://www.w3.org/ns/odrl.jsonld",
                                      {"rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#"}],
                         "@id": "urn:agreement:1", "@type": "Agreement", "profile": XB,
                         "permission": [{"@id": "urn:agreement:1#use", "action": "use", "target": "urn:asset:1",
                                         "duty": duties}]})


def test_provider_anonymises_json_and_csv_before_release(database_url: str, tmp_path: Path) -> None:
    folder = tmp_path / "people"
    folder.mkdir()
    records = [{"id": i, "name": f"person {i}", "email": f"p{i}@x", "phone": "1"} for i in range(2000)]
    (folder / "people.json").write_text(json.dumps(records))
    (folder / "people.csv").write_text("id,name,email,phone\n" + "".join(f"{i},n{i},e{i},1\n" for i in range(50)))
    (folder / "people.bin").write_bytes(b"\x00\x01")
    policy = _anonymise_policy(["name", "email"])

    async def scenario() -> None:
        provider = make_party("provider", database_url, tmp_path)
        consumer = make_party("consumer", f"sqlite:///{tmp_path / 'c.db'}", tmp_path)
        async with serving(provider, consumer):
            src = {"type": "folder", "path": str(folder)}
            a = await provider.dataplane.start(transfer_info(provider, consumer, src,
                                                             policy=policy))
            assert a
            consumer.dataplane.store_edr("c-1", a, agreement_id="agr-1", provider_did=provider.did)
            result = await consumer.dataplane.pull("c-1", FileSink("people.json"), path="people.json")
            got = json.loads(Path(result.location or "").read_text())
            assert got[5] == {"id": 5, "name": None, "email": None, "phone": "1"}
            assert len(got) == 2000
            result = await consumer.dataplane.pull("c-1", FileSink("people.csv"), path="people.csv")
            rows = list(csv.reader(io.StringIO(Path(result.location or "").read_text())))
            assert rows[1] == ["0", "", "", "1"]
            async with httpx.AsyncClient() as client:
                r = await client.get(a["endpoint"] + "/people.json", headers={
                    "Authorization": f"Bearer {token_of(a)}", "Range": "bytes=0-10"})
                assert r.status_code == 200 and "accept-ranges" not in r.headers  # no ranges over rewritten bytes
                r = await client.get(a["endpoint"] + "/people.bin", headers={"Authorization": f"Bearer {token_of(a)}"})
                assert r.status_code == 422 and r.json()["code"] == "transform_failed"
            sent = [e for e in provider.audit.entries() if e.kind == "data.sent"]
            assert sent[0].fields["anonymized"] == ["email", "name"]
            # the receipt digests match what the provider recorded as sent
            receipts = provider.audit.receipts("tp-1")
            assert [r.digest for r in receipts] == [e.fields["digest"] for e in sent[:2]]

    run(scenario())


def _delete_policy(seconds: int) -> Any:
    return parse_policy({"@context": "http://www.w3.org/ns/odrl.jsonld", "@id": "urn:agreement:1",
                         "@type": "Agreement",
                         "permission": [{"@id": "urn:agreement:1#use", "action": "use", "target": "urn:asset:1",
                                         "duty": [{"@id": "urn:agreement:1#delete", "action": {
                                             "rdf:value": {"@id": "odrl:delete"},
                                             "refinement": [{"leftOperand": "elapsedTime", "operator": "lteq",
                                                             "rightOperand": {"@value": f"PT{seconds}S",
                                                                              "@type": "xsd:duration"}}]}}]}]})


def test_consumer_deletes_on_schedule_and_provider_records_fulfilment(database_url: str, tmp_path: Path) -> None:
    from datetime import timedelta

    folder = tmp_path / "src"
    folder.mkdir()
    (folder / "d.txt").write_text("to be deleted")
    policy = _delete_policy(2)
    suspended: list[tuple[str, str]] = []

    async def scenario() -> None:
        provider = make_party("provider", database_url, tmp_path, fulfilment_grace=timedelta(seconds=1),
                              suspend_transfers=lambda agr, reason: suspended.append((agr, reason)))
        consumer = make_party("consumer", f"sqlite:///{tmp_path / 'c.db'}", tmp_path)
        now = datetime.now(UTC)
        async with serving(provider, consumer):
            pmon, cmon = PolicyMonitor(provider.dataplane), PolicyMonitor(consumer.dataplane)
            pmon.start()
            cmon.start()
            try:
                a = await provider.dataplane.start(transfer_info(
                    provider, consumer, {"type": "folder", "path": str(folder)}, policy=policy, agreement_time=now))
                assert a
                consumer.dataplane.store_edr("c-1", a, agreement_id="agr-1", provider_did=provider.did,
                                             policy=policy, agreement_time=now)
                result = await consumer.dataplane.pull("c-1", FileSink("c-1/d.txt"), path="d.txt")
                copy = Path(result.location or "")
                assert copy.read_text() == "to be deleted"
                for _ in range(60):
                    await asyncio.sleep(0.1)
                    if not copy.exists() and any(e.kind == "duty.fulfilled" for e in provider.audit.entries()):
                        break
                assert not copy.exists()
                await asyncio.sleep(1.5)  # past deadline + grace: nothing is violated, the report arrived
            finally:
                await pmon.stop()
                await cmon.stop()
        kinds = [e.kind for e in provider.audit.entries()]
        assert "duty.fulfilled" in kinds and "duty.violated" not in kinds
        assert suspended == []
        assert "duty.performed" in [e.kind for e in consumer.audit.entries()]

    run(scenario())


def test_consumer_that_never_confirms_gets_its_transfers_suspended(database_url: str, tmp_path: Path) -> None:
    from datetime import timedelta

    folder = tmp_path / "src"
    folder.mkdir()
    (folder / "d.txt").write_text("kept forever")
    policy = _delete_policy(1)
    suspended: list[tuple[str, str]] = []

    async def scenario() -> None:
        provider = make_party("provider", database_url, tmp_path, fulfilment_grace=timedelta(milliseconds=500),
                              suspend_transfers=lambda agr, reason: suspended.append((agr, reason)))
        consumer = make_party("consumer", f"sqlite:///{tmp_path / 'c.db'}", tmp_path)
        now = datetime.now(UTC)
        async with serving(provider, consumer):
            monitor = PolicyMonitor(provider.dataplane)
            a = await provider.dataplane.start(transfer_info(
                provider, consumer, {"type": "folder", "path": str(folder)}, policy=policy, agreement_time=now))
            assert a
            first = await monitor.tick()
            assert first.next_wake is not None and first.next_wake <= now + timedelta(seconds=2)
            monitor.start()
            try:
                for _ in range(50):
                    await asyncio.sleep(0.1)
                    if suspended:
                        break
            finally:
                await monitor.stop()
            async with httpx.AsyncClient() as client:
                r = await client.get(a["endpoint"] + "/d.txt", headers={"Authorization": f"Bearer {token_of(a)}"})
                assert r.status_code == 401 and r.json()["code"] == "token_revoked"
        assert suspended and suspended[0][0] == "agr-1" and "violated" in suspended[0][1]
        violated = [e for e in provider.audit.entries() if e.kind == "duty.violated"]
        assert len(violated) == 1 and violated[0].fields["decision"] == "violated"
        events = provider.dataplane.events("agr-1")
        assert any(e.action == "delete" and e.outcome == "unperformed" for e in events)

    run(scenario())
