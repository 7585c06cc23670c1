"""Contract negotiation between two real connector processes with full DCP verification."""

from __future__ import annotations

from tests.e2e.conftest import Dataspace
from tests.e2e.flows import MEMBERSHIP, negotiate, provider_side, publish


def test_happy_path_reaches_finalized_on_both_sides_with_the_same_agreement(dataspace: Dataspace) -> None:
    provider, consumer = dataspace.provider, dataspace.consumer
    asset_id = publish(provider)
    mine = negotiate(consumer, provider, asset_id)
    assert mine["state"] == "FINALIZED", (mine.get("errorDetail"), mine)
    theirs = provider.wait_state("negotiation", mine["providerPid"], "FINALIZED")
    assert theirs["consumerPid"] == mine["consumerPid"] and theirs["counterPartyId"] == consumer.did
    agreement_id = mine["contractAgreementId"]
    assert theirs["contractAgreementId"] == agreement_id
    ours = consumer.mgmt("GET", f"/v3/contractagreements/{agreement_id}").json()
    their_copy = provider.mgmt("GET", f"/v3/contractagreements/{agreement_id}").json()
    assert ours["policyHash"] == their_copy["policyHash"]
    policy = their_copy["policy"]
    assert policy["@type"] == "Agreement" and policy["target"] == asset_id
    assert policy["assigner"] == provider.did and policy["assignee"] == consumer.did and policy["timestamp"]
    assert provider_side(provider, mine)["state"] == "FINALIZED"


def test_provider_initiated_offer_is_accepted_and_finalized(dataspace: Dataspace) -> None:
    provider, consumer = dataspace.provider, dataspace.consumer
    asset_id = publish(provider)
    r = provider.mgmt("POST", "/v3/contractnegotiations/offers", json={
        "counterPartyAddress": consumer.protocol_url, "counterPartyId": consumer.did,
        "policy": {"@context": "http://www.w3.org/ns/odrl.jsonld", "@type": "Offer", "target": asset_id,
                   "permission": [{"action": "use", "constraint": [MEMBERSHIP]}]}})
    assert r.status_code == 200, r.text
    provider_id = r.json()["@id"]
    theirs = provider.wait_state("negotiation", provider_id, "FINALIZED", "TERMINATED")
    assert theirs["state"] == "FINALIZED", theirs
    mine = consumer.wait_state("negotiation", theirs["consumerPid"], "FINALIZED")
    assert mine["contractAgreementId"] == theirs["contractAgreementId"] and mine["type"] == "CONSUMER"


def test_unreadable_contract_request_is_refused_by_the_management_api(dataspace: Dataspace) -> None:
    r = dataspace.consumer.mgmt("POST", "/v3/contractnegotiations", json={
        "counterPartyAddress": "ftp://nowhere", "counterPartyId": dataspace.provider.did,
        "policy": {"@id": "x", "target": "a", "permission": [{"action": "use"}]}})
    assert r.status_code == 400 and r.json()["code"] == "callback_invalid"
    r = dataspace.consumer.mgmt("POST", "/v3/contractnegotiations", json={
        "counterPartyAddress": dataspace.provider.protocol_url, "protocol": "ids-multipart",
        "policy": {"@id": "x", "target": "a", "permission": [{"action": "use"}]}})
    assert r.status_code == 400 and r.json()["code"] == "protocol_unsupported"
    r = dataspace.consumer.mgmt("POST", "/v3/contractnegotiations/urn:uuid:none/verify")
    assert r.status_code == 404
