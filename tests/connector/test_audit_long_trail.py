"""A trail longer than one streamed batch verifies (regression: ``pactum connector audit verify`` crashed on the
demo's supplier once it held more than 1000 entries)."""

from __future__ import annotations

from connector.audit import AuditLog
from connector.storage.db import open_database
from identity.keys import generate_key

KID = "did:web:provider.example#key-1"


def test_trail_longer_than_a_batch_verifies(database_url: str) -> None:
    key = generate_key("EdDSA")
    _engine, sessions = open_database(database_url)
    log = AuditLog(sessions, signer=key, kid=KID, did="did:web:provider.example", checkpoint_every=700)
    for i in range(2050):
        log.record("data.request", process_id=f"tp-{i}", decision="permit")
    result = log.verify(lambda kid: key if kid == KID else None)
    assert result.entries == 2050 and result.checkpoints >= 2
    assert result.ok, result.problems
