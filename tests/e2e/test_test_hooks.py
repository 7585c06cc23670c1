"""The test hooks between real connector processes: a kit drives a consumer through the hooks only.

A third connector process (``test_hooks = true``) plays the connector under test as consumer; the session's
provider is its counterparty. Everything the kit does to the consumer goes through
``/management/test/negotiations`` and ``/management/test/transfers`` with the TCK webhook's field names;
the states are read back over the management API. The session's consumer (hooks off) answers 404.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.e2e.conftest import Authority, Connector, Dataspace, make_connector
from tests.e2e.flows import OPEN, dataset, first_offer, publish

NEGOTIATE = "/test/negotiations"
TRANSFER = "/test/transfers"


@pytest.fixture(scope="module")
def cut(tmp_path_factory: pytest.TempPathFactory, authority: Authority) -> Iterator[Connector]:
    """The connector under test, hooks on (waits are generous: the e2e suite shares two busy cores)."""
    connector = make_connector(tmp_path_factory.mktemp("hooks"), "cut", authority, extra_toml="test_hooks = true")
    connector.start()
    try:
        yield connector
    finally:
        connector.stop()


def test_a_kit_negotiates_and_transfers_through_the_hooks_only(cut: Connector, dataspace: Dataspace) -> None:
    provider = dataspace.provider
    asset_id = publish(provider, contract=OPEN, data="kit-driven payload")
    offer_id = first_offer(dataset(dataspace.consumer, provider, asset_id))["@id"]

    r = cut.mgmt("POST", NEGOTIATE, json={"providerId": provider.did, "connectorAddress": provider.protocol_url,
                                          "datasetId": asset_id, "offerId": offer_id})
    assert r.status_code == 200, r.text
    started = r.json()
    assert started["type"] == "CONSUMER" and started["state"] == "REQUESTED" and started["offerId"] == offer_id
    negotiation = cut.wait_state("negotiation", started["@id"], "FINALIZED", "TERMINATED", timeout=60)
    assert negotiation["state"] == "FINALIZED", negotiation
    assert provider.negotiation(negotiation["providerPid"])["state"] == "FINALIZED"
    agreement_id = negotiation["contractAgreementId"]

    r = cut.mgmt("POST", TRANSFER, json={"providerId": provider.did, "agreementId": agreement_id,
                                         "format": "HttpData-PULL", "connectorAddress": provider.protocol_url})
    assert r.status_code == 200, r.text
    transfer = r.json()
    assert transfer["type"] == "CONSUMER" and transfer["state"] == "REQUESTED"
    assert transfer["contractId"] == agreement_id
    mine = cut.wait_state("transfer", transfer["@id"], "STARTED", "TERMINATED", timeout=60)
    assert mine["state"] == "STARTED", mine
    theirs = provider.wait_state("transfer", mine["providerPid"], "STARTED", timeout=60)
    assert theirs["consumerPid"] == transfer["@id"]
    edr = cut.mgmt("GET", f"/v3/edrs/{transfer['@id']}/dataaddress").json()
    data = httpx.get(edr["endpoint"], headers={"Authorization": f"Bearer {edr['authorization']}"}, timeout=20)
    assert data.status_code == 200 and data.text == "kit-driven payload"

    # the same agreement, named with another counterparty: refused before anything is sent
    r = cut.mgmt("POST", TRANSFER, json={"agreementId": agreement_id, "transferType": "HttpData-PULL",
                                         "counterPartyId": dataspace.consumer.did})
    assert r.status_code == 400 and r.json()["code"] == "counterparty_mismatch" and r.json()["field"] == \
        "counterPartyId", r.text


def test_without_a_did_the_first_offer_is_fetched_and_the_did_learned(cut: Connector, dataspace: Dataspace) -> None:
    provider = dataspace.provider
    asset_id = publish(provider, contract=OPEN)
    r = cut.mgmt("POST", NEGOTIATE, json={"counterPartyAddress": provider.protocol_url, "datasetId": asset_id})
    assert r.status_code == 200, r.text
    assert r.json()["counterPartyId"] == provider.did
    negotiation = cut.wait_state("negotiation", r.json()["@id"], "FINALIZED", "TERMINATED", timeout=60)
    assert negotiation["state"] == "FINALIZED", negotiation


def test_what_the_counterparty_does_not_offer_is_refused(cut: Connector, dataspace: Dataspace) -> None:
    provider = dataspace.provider
    asset_id = publish(provider, contract=OPEN)
    base = {"counterPartyAddress": provider.protocol_url, "counterPartyId": provider.did}
    r = cut.mgmt("POST", NEGOTIATE, json={**base, "datasetId": asset_id, "offerId": "urn:uuid:not-offered"})
    assert r.status_code == 404 and r.json()["code"] == "offer_not_found", r.text
    r = cut.mgmt("POST", NEGOTIATE, json={**base, "datasetId": "asset-nobody-published"})
    assert r.status_code == 502 and r.json()["code"] == "counterparty_refused", r.text
    assert "404" in r.json()["detail"]
    r = cut.mgmt("POST", TRANSFER, json={"agreementId": "urn:uuid:no-such-agreement", "format": "HttpData-PULL"})
    assert r.status_code == 404 and r.json()["code"] == "agreement_not_found", r.text
    r = cut.mgmt("POST", NEGOTIATE, json={**base, "datasetId": asset_id}, headers={"X-Api-Key": "not-the-key"})
    assert r.status_code == 401, r.text


def test_a_connector_with_hooks_off_answers_404(dataspace: Dataspace) -> None:
    consumer, provider = dataspace.consumer, dataspace.provider
    for path, body in ((NEGOTIATE, {"counterPartyAddress": provider.protocol_url, "datasetId": "asset-x"}),
                       (TRANSFER, {"agreementId": "urn:uuid:x", "transferType": "HttpData-PULL"})):
        r = consumer.mgmt("POST", path, json=body)
        assert r.status_code == 404, r.text
        assert r.headers["content-type"] == "application/problem+json"
    paths = consumer.mgmt("GET", "/openapi.json").json()["paths"]
    assert "/management/v3/contractnegotiations" in paths and not [p for p in paths if "/test/" in p]
