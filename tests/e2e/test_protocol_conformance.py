"""DSP 2025-1 conformance scenarios, named after the DSP TCK ids, against real connector processes.

The connector under test talks to a scripted peer (``tests/e2e/peer.py``): a real participant with a did:web,
a credential service and a membership credential, whose messages the test writes and whose callbacks record
what the connector sends. MET = metadata, CAT = catalog, CN = negotiation (connector as provider), CN_C =
negotiation (connector as consumer), TP / TP_C = transfer process (provider / consumer).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import Connector, Dataspace
from tests.e2e.flows import publish
from tests.e2e.peer import ScriptedPeer


@dataclass
class Bench:
    provider: Connector  # the connector under test as provider
    consumer: Connector  # the connector under test as consumer
    peer: ScriptedPeer  # a member
    outsider: ScriptedPeer  # holds no membership credential


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory, dataspace: Dataspace) -> Iterator[Bench]:
    """The shared provider and consumer under test, plus two scripted peers (a member and an outsider)."""
    base = tmp_path_factory.mktemp("conformance")
    peer = ScriptedPeer(base / "peer", dataspace.authority)
    outsider = ScriptedPeer(base / "outsider", dataspace.authority, member=False)
    with peer.running(), outsider.running():
        yield Bench(dataspace.provider, dataspace.consumer, peer, outsider)


def pid() -> str:
    return f"urn:uuid:{uuid.uuid4()}"


def catalog_offer(bench: Bench, asset_id: str, peer: ScriptedPeer | None = None) -> dict[str, Any]:
    peer = peer or bench.peer
    r = peer.get(f"{bench.provider.protocol_url}/catalog/datasets/{asset_id}", bench.provider.did)
    assert r.status_code == 200, r.text
    offer: dict[str, Any] = r.json()["hasPolicy"][0]
    return offer


def request_contract(bench: Bench, asset_id: str, *, consumer_pid: str | None = None,
                     peer: ScriptedPeer | None = None, offer: dict[str, Any] | None = None) -> httpx.Response:
    peer = peer or bench.peer
    offer = offer or catalog_offer(bench, asset_id, peer)
    return peer.post(f"{bench.provider.protocol_url}/negotiations/request", {
        "@type": "ContractRequestMessage", "consumerPid": consumer_pid or pid(),
        "offer": {**offer, "target": asset_id}, "callbackAddress": peer.url}, bench.provider.did)


def agree_as_peer(bench: Bench, asset_id: str) -> tuple[str, str, str]:
    """CN happy path driven by the peer; returns (consumerPid, providerPid, agreement id)."""
    consumer_pid = pid()
    r = request_contract(bench, asset_id, consumer_pid=consumer_pid)
    assert r.status_code == 201, r.text
    provider_pid = r.json()["providerPid"]
    path, agreement = bench.peer.wait_for("ContractAgreementMessage", consumerPid=consumer_pid)
    assert path == f"/negotiations/{consumer_pid}/agreement"
    r = bench.peer.post(f"{bench.provider.protocol_url}/negotiations/{provider_pid}/agreement/verification", {
        "@type": "ContractAgreementVerificationMessage", "consumerPid": consumer_pid, "providerPid": provider_pid},
        bench.provider.did)
    assert r.status_code == 200, r.text
    path, event = bench.peer.wait_for("ContractNegotiationEventMessage", consumerPid=consumer_pid,
                                      eventType="FINALIZED")
    assert path == f"/negotiations/{consumer_pid}/events"
    return consumer_pid, provider_pid, agreement["agreement"]["@id"]


# ---------------------------------------------------------------------------------------------- MET, CAT


def test_met_01_01_version_endpoint(bench: Bench) -> None:
    r = httpx.get(bench.provider.protocol_url + "/.well-known/dspace-version")
    assert r.status_code == 200 and r.json()["protocolVersions"][0]["version"] == "2025-1"


def test_cat_01_01_catalog_request(bench: Bench) -> None:
    asset_id = publish(bench.provider)
    r = bench.peer.post(bench.provider.protocol_url + "/catalog/request", {"@type": "CatalogRequestMessage"},
                        bench.provider.did)
    assert r.status_code == 200, r.text
    catalog = r.json()
    assert catalog["@type"] == "Catalog"
    assert asset_id in [d["@id"] for d in catalog.get("dataset", [])]


def test_cat_01_02_dataset_request(bench: Bench) -> None:
    asset_id = publish(bench.provider)
    offer = catalog_offer(bench, asset_id)
    assert offer["@type"] == "Offer" and offer["assigner"] == bench.provider.did


def test_cat_01_03_unknown_dataset_is_404_catalog_error(bench: Bench) -> None:
    r = bench.peer.get(f"{bench.provider.protocol_url}/catalog/datasets/no-such-dataset", bench.provider.did)
    assert r.status_code == 404 and r.json()["@type"] == "CatalogError"


def test_cat_01_04_catalog_pagination_links(bench: Bench) -> None:
    for _ in range(3):
        publish(bench.provider)
    r = bench.peer.post(bench.provider.protocol_url + "/catalog/request?offset=0&limit=2",
                        {"@type": "CatalogRequestMessage"}, bench.provider.did)
    assert r.status_code == 200 and len(r.json()["dataset"]) == 2
    assert 'rel="next"' in r.headers["Link"] and "offset=2" in r.headers["Link"]


# ---------------------------------------------------------------------------------------------- CN provider


def test_cn_01_01_request_agreement_verification_finalized(bench: Bench) -> None:
    asset_id = publish(bench.provider)
    consumer_pid, provider_pid, agreement_id = agree_as_peer(bench, asset_id)
    state = bench.peer.get(f"{bench.provider.protocol_url}/negotiations/{provider_pid}", bench.provider.did)
    assert state.json() == {"@context": ["https://w3id.org/dspace/2025/1/context.jsonld"],
                            "@type": "ContractNegotiation", "providerPid": provider_pid,
                            "consumerPid": consumer_pid, "state": "FINALIZED"}
    stored = bench.provider.mgmt("GET", f"/v3/contractagreements/{agreement_id}").json()
    assert stored["consumerId"] == bench.peer.did and len(stored["policyHash"]) == 64


def test_cn_01_02_counter_offer_accept_agree_verify_finalize_manual(bench: Bench) -> None:
    asset_id = publish(bench.provider, approval="manual")
    consumer_pid = pid()
    r = request_contract(bench, asset_id, consumer_pid=consumer_pid)
    assert r.status_code == 201
    provider_pid = r.json()["providerPid"]
    neg = bench.provider.wait_state("negotiation", provider_pid, "REQUESTED")
    assert neg["pendingStep"] == "agree" and neg["approval"] == "manual"
    wrong = bench.provider.mgmt("POST", f"/v3/contractnegotiations/{provider_pid}/finalize")
    assert wrong.status_code == 409 and set(wrong.json()["allowed"]) == {"offer", "agree", "terminate"}
    counter = {"@context": "http://www.w3.org/ns/odrl.jsonld", "@type": "Offer",
               "permission": [{"action": "use", "constraint": [
                   {"leftOperand": "https://w3id.org/catenax/policy/Membership", "operator": "eq",
                    "rightOperand": "active"}]}]}
    r = bench.provider.mgmt("POST", f"/v3/contractnegotiations/{provider_pid}/offer", json={"policy": counter})
    assert r.status_code == 200 and r.json()["state"] == "OFFERED", r.text
    path, offer_message = bench.peer.wait_for("ContractOfferMessage", consumerPid=consumer_pid)
    assert path == f"/negotiations/{consumer_pid}/offers" and offer_message["offer"]["target"] == asset_id
    r = bench.peer.post(f"{bench.provider.protocol_url}/negotiations/{provider_pid}/events", {
        "@type": "ContractNegotiationEventMessage", "consumerPid": consumer_pid, "providerPid": provider_pid,
        "eventType": "ACCEPTED"}, bench.provider.did)
    assert r.status_code == 200, r.text
    bench.provider.wait_state("negotiation", provider_pid, "ACCEPTED")
    assert bench.provider.mgmt("POST", f"/v3/contractnegotiations/{provider_pid}/agree").status_code == 200
    bench.peer.wait_for("ContractAgreementMessage", consumerPid=consumer_pid)
    r = bench.peer.post(f"{bench.provider.protocol_url}/negotiations/{provider_pid}/agreement/verification", {
        "@type": "ContractAgreementVerificationMessage", "consumerPid": consumer_pid, "providerPid": provider_pid},
        bench.provider.did)
    assert r.status_code == 200
    bench.provider.wait_state("negotiation", provider_pid, "VERIFIED")
    assert bench.provider.mgmt("POST", f"/v3/contractnegotiations/{provider_pid}/finalize").status_code == 200
    bench.peer.wait_for("ContractNegotiationEventMessage", consumerPid=consumer_pid, eventType="FINALIZED")


def test_cn_01_04_counter_request_with_another_policy_waits_for_the_operator(bench: Bench) -> None:
    asset_id = publish(bench.provider)  # auto approval
    r = bench.provider.mgmt("POST", "/v3/contractnegotiations/offers", json={
        "counterPartyAddress": bench.peer.url, "counterPartyId": bench.peer.did,
        "policy": {"@context": "http://www.w3.org/ns/odrl.jsonld", "@type": "Offer", "target": asset_id,
                   "permission": [{"action": "use", "constraint": [
                       {"leftOperand": "https://w3id.org/catenax/policy/Membership", "operator": "eq",
                        "rightOperand": "active"}]}]}})
    assert r.status_code == 200, r.text
    provider_pid = r.json()["@id"]
    _, offered = bench.peer.wait_for("ContractOfferMessage", providerPid=provider_pid)
    assert offered["callbackAddress"] == bench.provider.protocol_url
    consumer_pid = pid()
    cheaper = {**offered["offer"], "permission": [{"action": "use"}]}  # without the membership constraint
    r = bench.peer.post(f"{bench.provider.protocol_url}/negotiations/{provider_pid}/request", {
        "@type": "ContractRequestMessage", "consumerPid": consumer_pid, "providerPid": provider_pid,
        "offer": cheaper}, bench.provider.did)
    assert r.status_code == 200, r.text
    neg = bench.provider.wait_state("negotiation", provider_pid, "REQUESTED")
    assert neg["approval"] == "manual" and neg["pendingStep"] == "agree" and neg["consumerPid"] == consumer_pid
    assert bench.provider.mgmt("POST", f"/v3/contractnegotiations/{provider_pid}/terminate",
                               json={"reason": "no discount"}).status_code == 204
    _, message = bench.peer.wait_for("ContractNegotiationTerminationMessage", consumerPid=consumer_pid)
    assert message["reason"] == ["no discount"]


def test_cn_01_03_provider_terminates_with_reason(bench: Bench) -> None:
    asset_id = publish(bench.provider, approval="manual")
    consumer_pid = pid()
    provider_pid = request_contract(bench, asset_id, consumer_pid=consumer_pid).json()["providerPid"]
    r = bench.provider.mgmt("POST", f"/v3/contractnegotiations/{provider_pid}/terminate",
                            json={"reason": "not today"})
    assert r.status_code == 204
    _, message = bench.peer.wait_for("ContractNegotiationTerminationMessage", consumerPid=consumer_pid)
    assert message["reason"] == ["not today"]
    assert bench.provider.negotiation(provider_pid)["errorDetail"] == "not today"


def test_cn_02_01_consumer_terminates_and_reason_is_kept(bench: Bench) -> None:
    asset_id = publish(bench.provider, approval="manual")
    consumer_pid = pid()
    provider_pid = request_contract(bench, asset_id, consumer_pid=consumer_pid).json()["providerPid"]
    r = bench.peer.post(f"{bench.provider.protocol_url}/negotiations/{provider_pid}/termination", {
        "@type": "ContractNegotiationTerminationMessage", "consumerPid": consumer_pid, "providerPid": provider_pid,
        "code": "changed-mind", "reason": ["we found another supplier"]}, bench.provider.did)
    assert r.status_code == 200, r.text
    neg = bench.provider.negotiation(provider_pid)
    assert neg["state"] == "TERMINATED" and neg["errorDetail"] == "we found another supplier"


def test_cn_03_01_unknown_negotiation_is_404(bench: Bench) -> None:
    r = bench.peer.post(f"{bench.provider.protocol_url}/negotiations/urn:uuid:nope/agreement/verification", {
        "@type": "ContractAgreementVerificationMessage", "consumerPid": pid(), "providerPid": "urn:uuid:nope"},
        bench.provider.did)
    assert r.status_code == 404 and r.json()["@type"] == "ContractNegotiationError"


def test_cn_03_02_invalid_transition_is_400_and_state_unchanged(bench: Bench) -> None:
    asset_id = publish(bench.provider, approval="manual")
    consumer_pid = pid()
    provider_pid = request_contract(bench, asset_id, consumer_pid=consumer_pid).json()["providerPid"]
    r = bench.peer.post(f"{bench.provider.protocol_url}/negotiations/{provider_pid}/agreement/verification", {
        "@type": "ContractAgreementVerificationMessage", "consumerPid": consumer_pid, "providerPid": provider_pid},
        bench.provider.did)
    assert r.status_code == 400
    body = r.json()
    assert body["@type"] == "ContractNegotiationError" and body["code"] == "invalid_transition"
    assert body["providerPid"] == provider_pid and body["consumerPid"] == consumer_pid
    assert bench.provider.negotiation(provider_pid)["state"] == "REQUESTED"


def test_cn_03_03_same_message_twice_same_answer_no_duplicate(bench: Bench) -> None:
    asset_id = publish(bench.provider, approval="manual")
    offer = catalog_offer(bench, asset_id)
    consumer_pid = pid()
    first = request_contract(bench, asset_id, consumer_pid=consumer_pid, offer=offer)
    second = request_contract(bench, asset_id, consumer_pid=consumer_pid, offer=offer)
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()
    found = bench.provider.mgmt("POST", "/v3/contractnegotiations/request", json={
        "filterExpression": [{"operandLeft": "consumerPid", "operator": "=", "operandRight": consumer_pid}]})
    assert len(found.json()) == 1


def test_cn_03_04_someone_elses_negotiation_is_404(bench: Bench) -> None:
    asset_id = publish(bench.provider, approval="manual")
    consumer_pid = pid()
    provider_pid = request_contract(bench, asset_id, consumer_pid=consumer_pid).json()["providerPid"]
    r = bench.outsider.get(f"{bench.provider.protocol_url}/negotiations/{provider_pid}", bench.provider.did)
    assert r.status_code == 404
    assert bench.provider.negotiation(provider_pid)["state"] == "REQUESTED"


def test_cn_03_05_callback_must_be_http_url(bench: Bench) -> None:
    asset_id = publish(bench.provider)
    offer = catalog_offer(bench, asset_id)
    r = bench.peer.post(f"{bench.provider.protocol_url}/negotiations/request", {
        "@type": "ContractRequestMessage", "consumerPid": pid(), "offer": {**offer, "target": asset_id},
        "callbackAddress": "file:///etc/passwd"}, bench.provider.did)
    assert r.status_code == 400 and r.json()["code"] == "callback_invalid"


def test_cn_03_06_changed_offer_is_refused(bench: Bench) -> None:
    asset_id = publish(bench.provider)
    offer = catalog_offer(bench, asset_id)
    offer["permission"] = [{"action": "use"}]  # drops the membership constraint
    r = request_contract(bench, asset_id, offer=offer)
    assert r.status_code == 400 and r.json()["code"] == "offer_mismatch"


def test_cn_03_07_policy_denial_terminates_with_the_engines_reason(bench: Bench) -> None:
    asset_id = publish(bench.provider)  # contract: members only; access: open
    consumer_pid = pid()
    r = request_contract(bench, asset_id, consumer_pid=consumer_pid, peer=bench.outsider)
    assert r.status_code == 201, r.text
    _, message = bench.outsider.wait_for("ContractNegotiationTerminationMessage", consumerPid=consumer_pid)
    assert "contract policy not satisfied" in message["reason"][0]


def test_cn_03_08_unknown_type_and_schema_errors_name_the_path(bench: Bench) -> None:
    r = bench.peer.post(f"{bench.provider.protocol_url}/negotiations/request", {
        "@type": "ContractRequestMessage", "consumerPid": pid(), "callbackAddress": bench.peer.url},
        bench.provider.did)
    assert r.status_code == 400 and "offer" in r.json()["reason"][0] and "schema" in r.json()["reason"][0]
    r = bench.peer.post(f"{bench.provider.protocol_url}/negotiations/request", {"@type": "Nonsense"},
                        bench.provider.did)
    assert r.status_code == 400 and r.json()["code"] == "unexpected_type"


def test_cn_03_09_oversized_and_deep_bodies(bench: Bench) -> None:
    headers = bench.peer.headers(bench.provider.did)
    big = httpx.post(f"{bench.provider.protocol_url}/negotiations/request", headers=headers,
                     content=b"{" + b'"x": "' + b"a" * 2_000_000 + b'"}')
    assert big.status_code == 413
    deep: Any = "x"
    for _ in range(100):
        deep = {"a": deep}
    r = bench.peer.post(f"{bench.provider.protocol_url}/negotiations/request",
                        {"@type": "ContractRequestMessage", "deep": deep}, bench.provider.did)
    assert r.status_code == 400 and r.json()["code"] == "json_too_deep"


# ---------------------------------------------------------------------------------------------- CN consumer


def provider_offer(bench: Bench) -> tuple[str, str, dict[str, Any]]:
    """CN_C:01: the peer (as provider) makes an offer to the connector under test; returns pids and offer."""
    provider_pid = pid()
    offer = {"@type": "Offer", "@id": pid(), "target": "urn:peer:dataset:1", "assigner": bench.peer.did,
             "permission": [{"action": "use"}]}
    r = bench.peer.post(f"{bench.consumer.protocol_url}/negotiations/offers", {
        "@type": "ContractOfferMessage", "providerPid": provider_pid, "offer": offer,
        "callbackAddress": bench.peer.url}, bench.consumer.did)
    assert r.status_code == 201, r.text
    assert r.json()["state"] == "OFFERED" and r.json()["providerPid"] == provider_pid
    return r.json()["consumerPid"], provider_pid, offer


def test_cn_c_01_01_provider_offer_accepted_agreed_verified_finalized(bench: Bench) -> None:
    consumer_pid, provider_pid, offer = provider_offer(bench)
    path, _ = bench.peer.wait_for("ContractNegotiationEventMessage", providerPid=provider_pid, eventType="ACCEPTED")
    assert path == f"/negotiations/{provider_pid}/events"
    agreement = {**offer, "@type": "Agreement", "@id": pid(), "assignee": bench.consumer.did,
                 "timestamp": "2026-01-01T00:00:00Z"}
    r = bench.peer.post(f"{bench.consumer.protocol_url}/negotiations/{consumer_pid}/agreement", {
        "@type": "ContractAgreementMessage", "providerPid": provider_pid, "consumerPid": consumer_pid,
        "agreement": agreement}, bench.consumer.did)
    assert r.status_code == 200, r.text
    path, _ = bench.peer.wait_for("ContractAgreementVerificationMessage", providerPid=provider_pid)
    assert path == f"/negotiations/{provider_pid}/agreement/verification"
    r = bench.peer.post(f"{bench.consumer.protocol_url}/negotiations/{consumer_pid}/events", {
        "@type": "ContractNegotiationEventMessage", "providerPid": provider_pid, "consumerPid": consumer_pid,
        "eventType": "FINALIZED"}, bench.consumer.did)
    assert r.status_code == 200
    neg = bench.consumer.wait_state("negotiation", consumer_pid, "FINALIZED")
    assert neg["contractAgreementId"] == agreement["@id"]


def test_cn_c_02_01_agreement_for_someone_else_is_refused(bench: Bench) -> None:
    consumer_pid, provider_pid, offer = provider_offer(bench)
    bench.peer.wait_for("ContractNegotiationEventMessage", providerPid=provider_pid, eventType="ACCEPTED")
    agreement = {**offer, "@type": "Agreement", "@id": pid(), "assignee": "did:web:someone.else",
                 "timestamp": "2026-01-01T00:00:00Z"}
    r = bench.peer.post(f"{bench.consumer.protocol_url}/negotiations/{consumer_pid}/agreement", {
        "@type": "ContractAgreementMessage", "providerPid": provider_pid, "consumerPid": consumer_pid,
        "agreement": agreement}, bench.consumer.did)
    assert r.status_code == 400 and r.json()["code"] == "agreement_mismatch"
    assert bench.consumer.negotiation(consumer_pid)["state"] == "ACCEPTED"


def test_cn_c_02_02_provider_terminates_and_consumer_shows_reason(bench: Bench) -> None:
    consumer_pid, provider_pid, _ = provider_offer(bench)
    bench.peer.wait_for("ContractNegotiationEventMessage", providerPid=provider_pid, eventType="ACCEPTED")
    r = bench.peer.post(f"{bench.consumer.protocol_url}/negotiations/{consumer_pid}/termination", {
        "@type": "ContractNegotiationTerminationMessage", "providerPid": provider_pid, "consumerPid": consumer_pid,
        "code": "stock", "reason": ["out of stock"]}, bench.consumer.did)
    assert r.status_code == 200
    neg = bench.consumer.negotiation(consumer_pid)
    assert neg["state"] == "TERMINATED" and neg["errorDetail"] == "out of stock"


# ---------------------------------------------------------------------------------------------- TP provider


def transfer_request(bench: Bench, agreement_id: str, consumer_pid: str,
                     peer: ScriptedPeer | None = None) -> httpx.Response:
    peer = peer or bench.peer
    return peer.post(f"{bench.provider.protocol_url}/transfers/request", {
        "@type": "TransferRequestMessage", "consumerPid": consumer_pid, "agreementId": agreement_id,
        "format": "HttpData-PULL", "callbackAddress": peer.url}, bench.provider.did)


def test_tp_01_01_request_start_with_edr_then_completion(bench: Bench) -> None:
    asset_id = publish(bench.provider, data="tck data")
    _, _, agreement_id = agree_as_peer(bench, asset_id)
    consumer_pid = pid()
    r = transfer_request(bench, agreement_id, consumer_pid)
    assert r.status_code == 201 and r.json()["state"] == "REQUESTED", r.text
    provider_pid = r.json()["providerPid"]
    path, start = bench.peer.wait_for("TransferStartMessage", consumerPid=consumer_pid)
    assert path == f"/transfers/{consumer_pid}/start"
    address = start["dataAddress"]
    token = next(p["value"] for p in address["endpointProperties"] if p["name"] == "authorization")
    data = httpx.get(address["endpoint"], headers={"Authorization": f"Bearer {token}"}, timeout=20)
    assert data.status_code == 200 and data.text == "tck data"
    r = bench.peer.post(f"{bench.provider.protocol_url}/transfers/{provider_pid}/completion", {
        "@type": "TransferCompletionMessage", "consumerPid": consumer_pid, "providerPid": provider_pid},
        bench.provider.did)
    assert r.status_code == 200
    assert bench.provider.transfer(provider_pid)["state"] == "COMPLETED"


def test_tp_01_02_repeated_request_with_same_consumer_pid_is_idempotent(bench: Bench) -> None:
    asset_id = publish(bench.provider)
    _, _, agreement_id = agree_as_peer(bench, asset_id)
    consumer_pid = pid()
    first = transfer_request(bench, agreement_id, consumer_pid)
    second = transfer_request(bench, agreement_id, consumer_pid)
    assert first.status_code == second.status_code == 201
    assert first.json()["providerPid"] == second.json()["providerPid"]


def test_tp_02_01_agreement_of_another_consumer_is_refused(bench: Bench) -> None:
    asset_id = publish(bench.provider)
    _, _, agreement_id = agree_as_peer(bench, asset_id)
    r = transfer_request(bench, agreement_id, pid(), peer=bench.outsider)
    assert r.status_code == 404 and r.json()["@type"] == "TransferError"
    assert r.json()["code"] == "agreement_not_found"


def test_tp_02_02_transfer_for_non_finalized_agreement_is_refused(bench: Bench) -> None:
    asset_id = publish(bench.provider)
    consumer_pid = pid()
    r = request_contract(bench, asset_id, consumer_pid=consumer_pid)
    _, agreement = bench.peer.wait_for("ContractAgreementMessage", consumerPid=consumer_pid)
    r = transfer_request(bench, agreement["agreement"]["@id"], pid())
    assert r.status_code == 400 and r.json()["code"] == "agreement_not_finalized"


def test_tp_02_03_invalid_transition_is_400(bench: Bench) -> None:
    asset_id = publish(bench.provider)
    _, _, agreement_id = agree_as_peer(bench, asset_id)
    consumer_pid = pid()
    provider_pid = transfer_request(bench, agreement_id, consumer_pid).json()["providerPid"]
    bench.peer.wait_for("TransferStartMessage", consumerPid=consumer_pid)
    r = bench.peer.post(f"{bench.provider.protocol_url}/transfers/{provider_pid}/start", {
        "@type": "TransferStartMessage", "consumerPid": consumer_pid, "providerPid": provider_pid},
        bench.provider.did)
    assert r.status_code == 400 and r.json()["code"] == "invalid_transition"


# ---------------------------------------------------------------------------------------------- TP consumer


def consumer_agreement(bench: Bench) -> str:
    """A finalized agreement held by the connector under test as consumer, with the peer as provider."""
    consumer_pid, provider_pid, offer = provider_offer(bench)
    bench.peer.wait_for("ContractNegotiationEventMessage", providerPid=provider_pid, eventType="ACCEPTED")
    agreement = {**offer, "@type": "Agreement", "@id": pid(), "assignee": bench.consumer.did,
                 "timestamp": "2026-01-01T00:00:00Z"}
    bench.peer.post(f"{bench.consumer.protocol_url}/negotiations/{consumer_pid}/agreement", {
        "@type": "ContractAgreementMessage", "providerPid": provider_pid, "consumerPid": consumer_pid,
        "agreement": agreement}, bench.consumer.did)
    bench.peer.wait_for("ContractAgreementVerificationMessage", providerPid=provider_pid)
    bench.peer.post(f"{bench.consumer.protocol_url}/negotiations/{consumer_pid}/events", {
        "@type": "ContractNegotiationEventMessage", "providerPid": provider_pid, "consumerPid": consumer_pid,
        "eventType": "FINALIZED"}, bench.consumer.did)
    bench.consumer.wait_state("negotiation", consumer_pid, "FINALIZED")
    agreement_id: str = agreement["@id"]
    return agreement_id


def test_tp_c_01_01_start_suspend_resume_complete(bench: Bench) -> None:
    agreement_id = consumer_agreement(bench)
    r = bench.consumer.mgmt("POST", "/v3/transferprocesses", json={
        "contractId": agreement_id, "transferType": "HttpData-PULL", "protocol": "dataspace-protocol-http:2025-1",
        "counterPartyAddress": bench.peer.url})
    assert r.status_code == 200, r.text
    consumer_pid = r.json()["@id"]
    _, request = bench.peer.wait_for("TransferRequestMessage", consumerPid=consumer_pid)
    assert request["agreementId"] == agreement_id and request["callbackAddress"] == bench.consumer.protocol_url
    provider_pid = pid()
    base = f"{bench.consumer.protocol_url}/transfers/{consumer_pid}"
    ids = {"consumerPid": consumer_pid, "providerPid": provider_pid}
    assert bench.peer.post(base + "/start", {"@type": "TransferStartMessage", **ids},
                           bench.consumer.did).status_code == 200
    assert bench.consumer.transfer(consumer_pid)["state"] == "STARTED"
    assert bench.peer.post(base + "/suspension", {"@type": "TransferSuspensionMessage", **ids, "code": "x",
                                                  "reason": ["pause"]}, bench.consumer.did).status_code == 200
    assert bench.consumer.transfer(consumer_pid)["errorDetail"] == "pause"
    bad = bench.peer.post(base + "/completion", {"@type": "TransferCompletionMessage", **ids}, bench.consumer.did)
    assert bad.status_code == 400 and bad.json()["@type"] == "TransferError"
    assert bench.peer.post(base + "/start", {"@type": "TransferStartMessage", **ids},
                           bench.consumer.did).status_code == 200
    assert bench.peer.post(base + "/completion", {"@type": "TransferCompletionMessage", **ids},
                           bench.consumer.did).status_code == 200
    assert bench.consumer.transfer(consumer_pid)["state"] == "COMPLETED"


def test_tp_c_01_02_transfer_needs_a_finalized_agreement(bench: Bench) -> None:
    r = bench.consumer.mgmt("POST", "/v3/transferprocesses", json={
        "contractId": "urn:uuid:unknown", "transferType": "HttpData-PULL", "counterPartyAddress": bench.peer.url})
    assert r.status_code == 404 and r.json()["code"] == "agreement_not_found"

