"""Contract negotiation between two real connector processes with full DCP verification."""

from __future__ import annotations

from tests.e2e.conftest import Dataspace
from tests.e2e.flows import negotiate, provider_side, publish


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
