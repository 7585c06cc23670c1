"""Durability: a counterparty that is down when a message is due gets it after it comes back."""

from __future__ import annotations

import time

from tests.e2e.conftest import Dataspace
from tests.e2e.flows import dataset, first_offer, publish, start_negotiation


def test_consumer_crash_while_provider_decides_resumes_to_finalized(dataspace: Dataspace) -> None:
    provider, consumer = dataspace.provider, dataspace.consumer
    asset_id = publish(provider, approval="manual")
    negotiation_id = start_negotiation(consumer, provider, first_offer(dataset(consumer, provider, asset_id)),
                                       asset_id)
    consumer.wait_state("negotiation", negotiation_id, "REQUESTED")
    provider_pid = _provider_pid(dataspace, negotiation_id)
    consumer.kill()  # a crash: no clean shutdown
    try:
        r = provider.mgmt("POST", f"/v3/contractnegotiations/{provider_pid}/agree")
        assert r.status_code == 200, r.text  # committed and queued although the consumer is down
    finally:
        consumer.start()
    provider.wait_state("negotiation", provider_pid, "VERIFIED", timeout=90)  # the agreement got through
    r = provider.mgmt("POST", f"/v3/contractnegotiations/{provider_pid}/finalize")  # manual: operator finalizes
    assert r.status_code == 200, r.text
    done = consumer.wait_state("negotiation", negotiation_id, "FINALIZED", "TERMINATED", timeout=30)
    assert done["state"] == "FINALIZED", done


def _provider_pid(dataspace: Dataspace, negotiation_id: str) -> str:
    """The provider's id of the negotiation, once the consumer's request has reached it."""
    deadline = time.monotonic() + 20
    while True:
        found = dataspace.provider.mgmt("POST", "/v3/contractnegotiations/request", json={
            "filterExpression": [{"operandLeft": "consumerPid", "operator": "=", "operandRight": negotiation_id}]})
        if found.json():
            pid: str = found.json()[0]["@id"]
            return pid
        assert time.monotonic() < deadline, "the request never reached the provider"
        time.sleep(0.05)


def test_provider_down_when_the_request_is_sent_gets_it_after_restart(dataspace: Dataspace) -> None:
    provider, consumer = dataspace.provider, dataspace.consumer
    asset_id = publish(provider)
    offer = first_offer(dataset(consumer, provider, asset_id))
    provider.stop()
    try:
        negotiation_id = start_negotiation(consumer, provider, offer, asset_id)
        assert consumer.negotiation(negotiation_id)["state"] == "REQUESTED"
    finally:
        provider.start()
    done = consumer.wait_state("negotiation", negotiation_id, "FINALIZED", "TERMINATED", timeout=90)
    assert done["state"] == "FINALIZED", done
