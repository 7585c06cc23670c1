"""Resuming a suspended PULL: a fresh EDR reaches the consumer, and every token from before the suspension dies.

Two real connector processes. A consumer that resumes sends its TransferStartMessage; the provider re-checks
the agreement, re-opens its data plane and answers with its own TransferStartMessage carrying a fresh
dataAddress (DSP 2025-1: the provider's start message carries the dataAddress of a pull transfer).
"""

from __future__ import annotations

import time

import httpx

from tests.e2e.conftest import Connector, Dataspace
from tests.e2e.flows import negotiate, publish
from tests.e2e.test_transfer_e2e import start_transfer


def edr(consumer: Connector, transfer_id: str) -> dict[str, str]:
    r = consumer.mgmt("GET", f"/v3/edrs/{transfer_id}/dataaddress")
    assert r.status_code == 200, r.text
    address: dict[str, str] = r.json()
    return address


def fetch(address: dict[str, str]) -> httpx.Response:
    return httpx.get(address["endpoint"], headers={"Authorization": f"Bearer {address['authorization']}"},
                     timeout=20)


def wait_for_new_token(consumer: Connector, transfer_id: str, old: str, timeout: float = 20) -> dict[str, str]:
    deadline = time.monotonic() + timeout
    while True:
        address = edr(consumer, transfer_id)
        if address["authorization"] != old:
            return address
        if time.monotonic() > deadline:
            raise AssertionError(f"no fresh EDR for {transfer_id} within {timeout}s: {consumer.transfer(transfer_id)}")
        time.sleep(0.1)


def started_pull(dataspace: Dataspace, data: str) -> tuple[Connector, Connector, str, str]:
    provider, consumer = dataspace.provider, dataspace.consumer
    agreement_id = negotiate(consumer, provider, publish(provider, data=data))["contractAgreementId"]
    transfer_id = start_transfer(consumer, provider, agreement_id)
    provider_id = consumer.wait_state("transfer", transfer_id, "STARTED")["providerPid"]
    provider.wait_state("transfer", provider_id, "STARTED")
    return provider, consumer, transfer_id, provider_id


def test_consumer_resume_gets_a_fresh_edr_and_the_old_token_stays_refused(dataspace: Dataspace) -> None:
    provider, consumer, transfer_id, provider_id = started_pull(dataspace, "resumed by the consumer")
    before = edr(consumer, transfer_id)
    assert fetch(before).text == "resumed by the consumer"

    r = consumer.mgmt("POST", f"/v3/transferprocesses/{transfer_id}/suspend", json={"reason": "lunch break"})
    assert r.status_code == 204, r.text
    assert provider.wait_state("transfer", provider_id, "SUSPENDED")["errorDetail"] == "lunch break"
    refused = fetch(before)
    assert refused.status_code == 401 and refused.json()["code"] == "token_revoked", refused.text

    r = consumer.mgmt("POST", f"/v3/transferprocesses/{transfer_id}/resume")
    assert r.status_code == 204, r.text
    provider.wait_state("transfer", provider_id, "STARTED")
    after = wait_for_new_token(consumer, transfer_id, before["authorization"])
    assert consumer.wait_state("transfer", transfer_id, "STARTED")["state"] == "STARTED"
    fresh = fetch(after)
    assert fresh.status_code == 200 and fresh.text == "resumed by the consumer", fresh.text

    stale = fetch(before)  # issued before the suspension: refused for good, even though the transfer runs again
    assert stale.status_code == 401 and stale.json()["code"] == "token_revoked", stale.text
    pending = consumer.transfer(transfer_id).get("pendingStep")
    assert pending in (None, ""), pending


def test_provider_resume_refuses_tokens_issued_before_the_suspension(dataspace: Dataspace) -> None:
    provider, consumer, transfer_id, provider_id = started_pull(dataspace, "resumed by the provider")
    before = edr(consumer, transfer_id)
    assert fetch(before).status_code == 200

    assert provider.mgmt("POST", f"/v3/transferprocesses/{provider_id}/suspend",
                         json={"reason": "maintenance"}).status_code == 204
    consumer.wait_state("transfer", transfer_id, "SUSPENDED")
    assert provider.mgmt("POST", f"/v3/transferprocesses/{provider_id}/resume").status_code == 204
    after = wait_for_new_token(consumer, transfer_id, before["authorization"])
    assert fetch(after).text == "resumed by the provider"
    stale = fetch(before)
    assert stale.status_code == 401 and stale.json()["code"] == "token_revoked", stale.text
