"""The audit trail: chain, checkpoints, receipts, tamper detection on SQLite and PostgreSQL."""

from __future__ import annotations

import io
import json
import threading

import pytest
from sqlalchemy import delete, select, update

from connector.audit import AuditLog, ReceiptInvalid, sign_receipt, verify_receipt
from connector.storage.db import open_database
from connector.storage.tables_audit import AuditCheckpointRow, AuditEntryRow, AuditReceiptRow
from identity.keys import KeyPair, generate_key

KID = "did:web:provider.example#key-1"


@pytest.fixture
def key() -> KeyPair:
    return generate_key("EdDSA")


@pytest.fixture
def log(database_url: str, key: KeyPair) -> AuditLog:
    _engine, sessions = open_database(database_url)
    return AuditLog(sessions, signer=key, kid=KID, did="did:web:provider.example", checkpoint_every=3)


def _keys(key: KeyPair):  # type: ignore[no-untyped-def]
    return lambda kid: key if kid == KID else None


def _fill(log: AuditLog, n: int) -> None:
    for i in range(n):
        log.record("transfer.start", process_id=f"tp-{i}", agreement_id="agr-1", counterparty="did:web:c",
                   decision="permit", summary=f"request {i}", bytes=i * 10)


def test_chain_verifies_and_checkpoints_are_signed(log: AuditLog, key: KeyPair) -> None:
    _fill(log, 7)
    log.close()
    result = log.verify(_keys(key))
    assert result.ok, result.problems
    assert (result.entries, result.checkpoints) == (7, 3)  # at 3, 6 and the shutdown one at 7
    entries = list(log.entries())
    assert [e.seq for e in entries] == list(range(1, 8))
    assert entries[2].fields["summary"] == "request 2"
    assert entries[1].prev_hash == entries[0].hash


def test_edited_entry_is_detected(log: AuditLog, key: KeyPair) -> None:
    _fill(log, 5)
    with log._sessions.begin() as s:
        body = s.execute(select(AuditEntryRow.body).where(AuditEntryRow.seq == 2)).scalar_one()
        s.execute(update(AuditEntryRow).where(AuditEntryRow.seq == 2)
                  .values(body=body.replace("request 1", "request X")))
    problems = log.verify(_keys(key)).problems
    assert any("entry 2: content does not match its hash" in p for p in problems)


def test_edited_indexed_column_is_detected(log: AuditLog, key: KeyPair) -> None:
    _fill(log, 2)
    with log._sessions.begin() as s:
        s.execute(update(AuditEntryRow).where(AuditEntryRow.seq == 1).values(decision="deny"))
    assert any("entry 1: columns differ" in p for p in log.verify(_keys(key)).problems)


def test_removed_entry_is_detected(log: AuditLog, key: KeyPair) -> None:
    _fill(log, 5)
    with log._sessions.begin() as s:
        s.execute(delete(AuditEntryRow).where(AuditEntryRow.seq == 4))
    problems = log.verify(_keys(key)).problems
    assert any("entry 5: expected entry 4" in p for p in problems)
    assert any("entry 5: previous-hash link broken" in p for p in problems)


def test_removed_tail_is_detected_by_checkpoint(log: AuditLog, key: KeyPair) -> None:
    _fill(log, 6)
    with log._sessions.begin() as s:
        s.execute(delete(AuditEntryRow).where(AuditEntryRow.seq >= 5))
    problems = log.verify(_keys(key)).problems
    assert any("the trail ends at entry 4 (entries removed)" in p for p in problems)


def test_reordered_entries_are_detected(log: AuditLog, key: KeyPair) -> None:
    _fill(log, 4)
    with log._sessions.begin() as s:
        rows = {r.seq: r for r in s.execute(select(AuditEntryRow)).scalars()}
        two, three = rows[2], rows[3]
        swapped = [(c, getattr(two, c), getattr(three, c)) for c in
                   ("time", "kind", "process_id", "agreement_id", "counterparty", "decision", "body",
                    "prev_hash", "hash")]
        s.execute(update(AuditEntryRow).where(AuditEntryRow.seq == 2).values(hash="x" * 64))
        s.execute(update(AuditEntryRow).where(AuditEntryRow.seq == 3).values(hash="y" * 64))
        s.execute(update(AuditEntryRow).where(AuditEntryRow.seq == 2).values({c: b for c, _a, b in swapped}))
        s.execute(update(AuditEntryRow).where(AuditEntryRow.seq == 3).values({c: a for c, a, _b in swapped}))
    problems = log.verify(_keys(key)).problems
    assert any("previous-hash link broken" in p for p in problems)
    assert any("columns differ" in p for p in problems)  # the seq inside the hashed body no longer matches


def test_rewritten_chain_fails_the_signed_checkpoint(log: AuditLog, key: KeyPair) -> None:
    """Someone with database access recomputes every hash after an edit: the checkpoint still catches it."""
    from connector.audit import GENESIS, canonical, chain_hash

    _fill(log, 3)
    with log._sessions.begin() as s:
        prev = GENESIS
        for row in s.execute(select(AuditEntryRow).order_by(AuditEntryRow.seq)).scalars():
            body = json.loads(row.body)
            body["fields"]["summary"] = "rewritten"
            raw = canonical(body)
            row.body, row.prev_hash, row.hash = raw.decode(), prev, chain_hash(prev, raw)
            prev = row.hash
    problems = log.verify(_keys(key)).problems
    assert problems == ["checkpoint at entry 3: chain head differs from the signed one (rewritten)"]


def test_forged_checkpoint_signature_is_detected(log: AuditLog, key: KeyPair) -> None:
    _fill(log, 3)
    other = generate_key("EdDSA")
    assert not log.verify(_keys(other)).ok
    with log._sessions.begin() as s:
        cp = s.execute(select(AuditCheckpointRow)).scalar_one()
        head, payload, sig = cp.jws.split(".")
        cp.jws = f"{head}.{payload}.{sig[:-4]}AAAA"
    assert any("signature does not verify" in p for p in log.verify(_keys(key)).problems)


def test_receipts_are_verified_stored_and_exported(log: AuditLog, key: KeyPair) -> None:
    consumer = generate_key("EdDSA")
    jws = sign_receipt(consumer, "did:web:consumer#key-1", "did:web:consumer", transfer_id="tp-1",
                       agreement_id="agr-1", digest="sha-256=" + "ab" * 32, size=42)
    with pytest.raises(ReceiptInvalid, match="does not verify"):
        log.store_receipt(jws, key)  # wrong key
    with pytest.raises(ReceiptInvalid, match="not 'tp-2'"):
        log.store_receipt(jws, consumer, expect_transfer="tp-2")
    receipt = log.store_receipt(jws, consumer, expect_transfer="tp-1")
    assert (receipt.size, receipt.signer) == (42, "did:web:consumer")
    assert verify_receipt(jws, consumer)["digest"].startswith("sha-256=")
    assert log.verify(_keys(key)).receipts == 1
    out = io.StringIO()
    lines = log.export(out)
    records = [json.loads(line) for line in out.getvalue().splitlines()]
    assert lines == len(records)
    assert {r["record"] for r in records} == {"entry", "receipt"}
    assert records[-1]["transferId"] == "tp-1"
    with log._sessions.begin() as s:
        s.execute(update(AuditReceiptRow).values(size=43))
    assert any("stored columns differ" in p for p in log.verify(_keys(key)).problems)


def test_malformed_receipt_is_refused(log: AuditLog, key: KeyPair) -> None:
    with pytest.raises(ReceiptInvalid, match="not a compact JWS"):
        log.store_receipt("nope", key)


def test_concurrent_records_form_one_chain(log: AuditLog, key: KeyPair) -> None:
    def work(n: int) -> None:
        for i in range(15):
            log.record("data.request", process_id=f"t{n}-{i}")

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    result = log.verify(_keys(key))
    assert result.ok, result.problems
    assert result.entries == 60


def test_bad_kind_is_refused(log: AuditLog) -> None:
    from connector.audit import AuditError

    with pytest.raises(AuditError):
        log.record("")


def test_cli_verify_and_export(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from typer.testing import CliRunner

    from connector.audit_cli import audit_app
    from identity.keystore import Keystore

    key = generate_key("EdDSA")
    store = Keystore.create(tmp_path / "keystore.json", "pw", scrypt_params={"n": 2**10, "r": 8, "p": 1})
    store.add(key, "key-1")
    store.save()
    config = tmp_path / "connector.toml"
    config.write_text('[participant]\nname = "p"\ndid = "did:web:p.example"\n[storage]\nurl = "sqlite:///audit.db"\n'
                      '[keystore]\npath = "keystore.json"\npassphrase = "pw"\n')
    _engine, sessions = open_database(f"sqlite:///{tmp_path / 'audit.db'}")
    log = AuditLog(sessions, signer=key, kid="did:web:p.example#key-1", did="did:web:p.example", checkpoint_every=2)
    _fill(log, 4)
    runner = CliRunner()
    ok = runner.invoke(audit_app, ["verify", "--config", str(config)])
    assert ok.exit_code == 0, ok.output
    assert "audit trail OK: 4 entries, 2 signed checkpoints" in ok.output
    out = tmp_path / "audit.jsonl"
    exported = runner.invoke(audit_app, ["export", "--config", str(config), "--output", str(out)])
    assert exported.exit_code == 0
    assert [json.loads(line)["record"] for line in out.read_text().splitlines()] == ["entry"] * 4 + ["checkpoint"] * 2
    with sessions.begin() as s:
        s.execute(delete(AuditEntryRow).where(AuditEntryRow.seq == 2))
    bad = runner.invoke(audit_app, ["verify", "--config", str(config), "--json"])
    assert bad.exit_code == 1
    assert json.loads(bad.output)["ok"] is False
    # another connector's keys do not verify these checkpoints
    other = generate_key("EdDSA")
    store2 = Keystore.create(tmp_path / "k2" / "keystore.json", "pw", scrypt_params={"n": 2**10, "r": 8, "p": 1})
    store2.add(other, "key-1")
    store2.save()
    config.write_text(config.read_text().replace('path = "keystore.json"', 'path = "k2/keystore.json"'))
    with sessions.begin() as s:
        s.execute(delete(AuditEntryRow))
    _fill(log, 2)
    assert "signature does not verify" in runner.invoke(audit_app, ["verify", "--config", str(config)]).output


def test_fast_canonical_json_equals_rfc8785() -> None:
    import rfc8785
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from connector.audit import canonical

    values = st.recursive(
        st.none() | st.booleans() | st.integers(-2**53 + 1, 2**53 - 1) | st.text() |
        st.floats(allow_nan=False, allow_infinity=False),
        lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
        max_leaves=20)

    @settings(max_examples=60, deadline=None)
    @given(values)
    def same(value: object) -> None:
        assert canonical(value) == rfc8785.dumps(value)

    same()
