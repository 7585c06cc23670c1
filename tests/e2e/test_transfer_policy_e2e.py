"""Transfers follow the agreement: PUSH completes on its own, an expired agreement is refused at start."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from tests.e2e.conftest import Dataspace
from tests.e2e.flows import MEMBERSHIP, ODRL, negotiate, publish
from tests.e2e.test_transfer_e2e import start_transfer


def test_push_transfer_streams_into_the_consumer_and_completes_both_sides(dataspace: Dataspace) -> None:
    provider, consumer = dataspace.provider, dataspace.consumer
    asset_id = publish(provider, data="pushed bytes")
    agreement_id = negotiate(consumer, provider, asset_id)["contractAgreementId"]
    transfer_id = start_transfer(consumer, provider, agreement_id, transfer_type="HttpData-PUSH")
    mine = consumer.wait_state("transfer", transfer_id, "COMPLETED", "TERMINATED", timeout=30)
    assert mine["state"] == "COMPLETED", mine
    assert provider.wait_state("transfer", mine["providerPid"], "COMPLETED")["state"] == "COMPLETED"
    received = list((consumer.folder / "wallet" / "received").rglob("*"))
    assert any(f.is_file() and f.read_bytes() == b"pushed bytes" for f in received), received


def test_agreement_that_no_longer_holds_refuses_the_transfer_with_the_reason(dataspace: Dataspace) -> None:
    provider, consumer = dataspace.provider, dataspace.consumer
    until = (datetime.now(UTC) + timedelta(seconds=10)).strftime("%Y-%m-%dT%H:%M:%SZ")
    short_lived = {"@context": ODRL, "@type": "Set", "permission": [{"action": "use", "constraint": [
        MEMBERSHIP, {"leftOperand": "dateTime", "operator": "lt",
                     "rightOperand": {"@value": until, "@type": "xsd:dateTime"}}]}]}
    asset_id = publish(provider, contract=short_lived)
    negotiated = negotiate(consumer, provider, asset_id)
    assert negotiated["state"] == "FINALIZED", negotiated.get("errorDetail")
    time.sleep(max(0.0, (datetime.fromisoformat(until.replace("Z", "+00:00")) - datetime.now(UTC)).total_seconds())
               + 0.5)
    transfer_id = start_transfer(consumer, provider, negotiated["contractAgreementId"])
    refused = consumer.wait_state("transfer", transfer_id, "TERMINATED", "STARTED")
    assert refused["state"] == "TERMINATED"
    assert "agreement no longer holds" in refused["errorDetail"]
    assert provider.transfer(refused["providerPid"])["state"] == "TERMINATED"
