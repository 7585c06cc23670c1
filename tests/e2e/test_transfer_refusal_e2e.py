"""A PUSH the provider's data plane refuses ends the transfer on both sides, with the engine's reason.

Two real connector processes: the agreement allows one use; the first PUSH delivers and completes, the second
is refused by the usage counter when the data plane starts pushing. The provider terminates it, tells the
consumer with a TransferTerminationMessage (code and reason), records the refusal in its audit trail, and
both management APIs show the reason.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from tests.e2e.conftest import Connector, Dataspace
from tests.e2e.flows import MEMBERSHIP, ODRL, negotiate, publish
from tests.e2e.test_transfer_e2e import start_transfer

ONE_USE = {"@context": ODRL, "@type": "Set", "permission": [{"action": "use", "constraint": [
    MEMBERSHIP, {"leftOperand": "count", "operator": "lteq", "rightOperand": 1}]}]}


def audit_entries(connector: Connector, process_id: str) -> list[dict[str, Any]]:
    """The connector's own audit entries for one process, read from its database (read-only)."""
    db = connector.folder / f"{connector.name}.db"
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10) as conn:
        rows = conn.execute("SELECT body FROM audit_entries WHERE process_id = ? ORDER BY seq",
                            (process_id,)).fetchall()
    return [json.loads(body) for (body,) in rows]


def test_push_refused_by_the_usage_count_terminates_both_sides_with_the_reason(dataspace: Dataspace) -> None:
    provider, consumer = dataspace.provider, dataspace.consumer
    asset_id = publish(provider, contract=ONE_USE, data="counted push")
    negotiated = negotiate(consumer, provider, asset_id)
    assert negotiated["state"] == "FINALIZED", negotiated.get("errorDetail")
    agreement_id = negotiated["contractAgreementId"]

    first = start_transfer(consumer, provider, agreement_id, transfer_type="HttpData-PUSH")
    assert consumer.wait_state("transfer", first, "COMPLETED", "TERMINATED", timeout=30)["state"] == "COMPLETED"

    second = start_transfer(consumer, provider, agreement_id, transfer_type="HttpData-PUSH")
    mine = consumer.wait_state("transfer", second, "TERMINATED", "COMPLETED", timeout=30)
    assert mine["state"] == "TERMINATED", mine
    assert mine["errorCode"] == "usage_exhausted"
    assert "permitted number of uses is used up" in mine["errorDetail"]

    theirs = provider.wait_state("transfer", mine["providerPid"], "TERMINATED")
    assert theirs["errorCode"] == "usage_exhausted" and theirs["errorDetail"] == mine["errorDetail"]

    kinds = {entry["kind"]: entry["fields"] for entry in audit_entries(provider, mine["providerPid"])}
    assert kinds["data.push_failed"]["decision"] == "deny"
    assert kinds["data.push_failed"]["code"] == "usage_exhausted"
    assert "used up" in kinds["transfer.dataplane.terminated"]["reason"]
    assert "data.sent" not in kinds
