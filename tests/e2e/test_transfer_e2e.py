"""Transfer processes between two real connector processes: PULL with an EDR, suspension, resumption."""

from __future__ import annotations

from typing import Any

import httpx

from tests.e2e.conftest import Connector, Dataspace
from tests.e2e.flows import EDC, dataset, find_by_consumer_pid, first_offer, negotiate, publish, start_negotiation


def start_transfer(consumer: Connector, provider: Connector, agreement_id: str,
                   transfer_type: str = "HttpData-PULL", **extra: Any) -> str:
    r = consumer.mgmt("POST", "/v3/transferprocesses", json={
        "@context": EDC, "@type": "TransferRequest", "contractId": agreement_id,
        "counterPartyAddress": provider.protocol_url, "protocol": "dataspace-protocol-http:2025-1",
        "transferType": transfer_type, **extra})
    assert r.status_code == 200, r.text
    transfer_id: str = r.json()["@id"]
    return transfer_id


def pull(consumer: Connector, transfer_id: str) -> httpx.Response:
    r = consumer.mgmt("GET", f"/v3/edrs/{transfer_id}/dataaddress")
    assert r.status_code == 200, r.text
    address = r.json()  # EDC's flat EDR shape: endpoint plus the endpoint properties as fields
    return httpx.get(address["endpoint"], headers={"Authorization": f"Bearer {address['authorization']}"},
                     timeout=20)


def test_pull_transfer_starts_and_delivers_data(dataspace: Dataspace) -> None:
    provider, consumer = dataspace.provider, dataspace.consumer
    asset_id = publish(provider, data="brake wear 42")
    agreement_id = negotiate(consumer, provider, asset_id)["contractAgreementId"]
    transfer_id = start_transfer(consumer, provider, agreement_id)
    mine = consumer.wait_state("transfer", transfer_id, "STARTED", "TERMINATED")
    assert mine["state"] == "STARTED", mine
    theirs = provider.wait_state("transfer", mine["providerPid"], "STARTED")
    assert theirs["consumerPid"] == transfer_id and theirs["contractId"] == agreement_id
    response = pull(consumer, transfer_id)
    assert response.status_code == 200, response.text
    assert response.text == "brake wear 42"


def test_suspend_and_resume_by_the_provider_keeps_the_reason_on_both_sides(dataspace: Dataspace) -> None:
    provider, consumer = dataspace.provider, dataspace.consumer
    asset_id = publish(provider, data="resumable")
    agreement_id = negotiate(consumer, provider, asset_id)["contractAgreementId"]
    transfer_id = start_transfer(consumer, provider, agreement_id)
    mine = consumer.wait_state("transfer", transfer_id, "STARTED")
    provider_id = mine["providerPid"]
    provider.wait_state("transfer", provider_id, "STARTED")
    r = provider.mgmt("POST", f"/v3/transferprocesses/{provider_id}/suspend", json={"reason": "maintenance window"})
    assert r.status_code == 204, r.text
    suspended = consumer.wait_state("transfer", transfer_id, "SUSPENDED")
    assert suspended["errorDetail"] == "maintenance window"
    assert provider.transfer(provider_id)["errorDetail"] == "maintenance window"
    assert pull(consumer, transfer_id).status_code in (401, 403, 409)
    r = provider.mgmt("POST", f"/v3/transferprocesses/{provider_id}/resume")
    assert r.status_code == 204, r.text
    consumer.wait_state("transfer", transfer_id, "STARTED")
    assert pull(consumer, transfer_id).text == "resumable"


def test_consumer_terminates_and_provider_sees_the_reason(dataspace: Dataspace) -> None:
    provider, consumer = dataspace.provider, dataspace.consumer
    asset_id = publish(provider)
    agreement_id = negotiate(consumer, provider, asset_id)["contractAgreementId"]
    transfer_id = start_transfer(consumer, provider, agreement_id)
    provider_id = consumer.wait_state("transfer", transfer_id, "STARTED")["providerPid"]
    r = consumer.mgmt("POST", f"/v3/transferprocesses/{transfer_id}/terminate", json={"reason": "no longer needed"})
    assert r.status_code == 204, r.text
    theirs = provider.wait_state("transfer", provider_id, "TERMINATED")
    assert theirs["errorDetail"] == "no longer needed"
    r = consumer.mgmt("POST", f"/v3/transferprocesses/{transfer_id}/suspend")
    assert r.status_code == 409 and r.json()["allowed"] == []


def test_manual_approval_waits_for_the_operator_on_both_sides(dataspace: Dataspace) -> None:
    provider, consumer = dataspace.provider, dataspace.consumer
    asset_id = publish(provider, approval="manual", data="approved data")
    negotiation_id = start_negotiation(consumer, provider, first_offer(dataset(consumer, provider, asset_id)),
                                       asset_id, approval="manual")
    provider_pid = find_by_consumer_pid(provider, "negotiation", negotiation_id)["@id"]
    assert provider.mgmt("POST", f"/v3/contractnegotiations/{provider_pid}/agree").status_code == 200
    agreed = consumer.wait_state("negotiation", negotiation_id, "AGREED")
    assert agreed["pendingStep"] == "verify"
    assert consumer.mgmt("POST", f"/v3/contractnegotiations/{negotiation_id}/verify").status_code == 200
    provider.wait_state("negotiation", provider_pid, "VERIFIED")
    assert provider.mgmt("POST", f"/v3/contractnegotiations/{provider_pid}/finalize").status_code == 200
    agreement_id = consumer.wait_state("negotiation", negotiation_id, "FINALIZED")["contractAgreementId"]
    transfer_id = start_transfer(consumer, provider, agreement_id)
    theirs = find_by_consumer_pid(provider, "transfer", transfer_id)
    assert theirs["state"] == "REQUESTED" and theirs["pendingStep"] == "start"
    r = provider.mgmt("POST", f"/v3/transferprocesses/{theirs['@id']}/complete")
    assert r.status_code == 409 and set(r.json()["allowed"]) == {"start", "terminate"}
    assert provider.mgmt("POST", f"/v3/transferprocesses/{theirs['@id']}/start").status_code == 200
    consumer.wait_state("transfer", transfer_id, "STARTED")
    assert pull(consumer, transfer_id).text == "approved data"
