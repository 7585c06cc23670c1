"""DSP 2025-1 conformance, contract negotiation with the CUT as provider (TCK ids CN:01..03-xx).

The scripted peer is the consumer. Contract definitions in ``manual`` approval let the test take the
provider's steps (offer, agree, finalize, terminate) through the management API at the exact point each
sequence diagram needs them; ``auto`` definitions show the provider taking them on its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from connector.protocol.schemas import validate_message
from tests.e2e.conftest import Authority
from tests.e2e.flows import publish
from tests.e2e.tck_peer import Tck, dsp, new_pid, shared_tck, wait_until

ERROR = "ContractNegotiationError"


@pytest.fixture(scope="session")
def tck(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, authority: Authority) -> Tck:
    return shared_tck(request, tmp_path_factory, authority)


@dataclass
class Negotiation:
    """One negotiation between the peer (consumer) and the CUT (provider)."""

    tck: Tck
    asset_id: str
    offer: dict[str, Any]
    consumer_pid: str
    provider_pid: str

    @property
    def pids(self) -> dict[str, str]:
        return {"providerPid": self.provider_pid, "consumerPid": self.consumer_pid}

    def send(self, suffix: str, message_type: str, **fields: Any) -> httpx.Response:
        """The peer posts ``message_type`` to ``/negotiations/{providerPid}/{suffix}`` on the CUT."""
        return self.tck.peer.send(self.tck.cut, f"/negotiations/{self.provider_pid}/{suffix}",
                                  dsp(message_type, **self.pids, **fields))

    def state(self) -> str:
        """The provider's state as the DSP ``GET /negotiations/{providerPid}`` reports it (schema-checked)."""
        r = self.tck.peer.send(self.tck.cut, f"/negotiations/{self.provider_pid}", method="GET")
        assert r.status_code == 200, r.text
        body = validate_message(r.json(), "ContractNegotiation")
        assert body["providerPid"] == self.provider_pid and body["consumerPid"] == self.consumer_pid
        return str(body["state"])

    def wait(self, state: str) -> None:
        wait_until(lambda: self.state() == state)

    def step(self, name: str, body: dict[str, Any] | None = None) -> None:
        """The provider's operator takes step ``name`` (manual approval)."""
        r = self.tck.cut.mgmt("POST", f"/v3/contractnegotiations/{self.provider_pid}/{name}", json=body or {})
        assert r.status_code in (200, 204), r.text

    def expect(self, message_type: str, **fields: Any) -> dict[str, Any]:
        """The next message of ``message_type`` the CUT sent for this negotiation (conformance-checked)."""
        exchange = self.tck.peer.expect(message_type, consumerPid=self.consumer_pid, **fields)
        assert exchange.caller == self.tck.cut.did
        assert exchange.message["providerPid"] == self.provider_pid
        return exchange.message

    def assert_conformant(self) -> None:
        assert self.tck.peer.problems(consumerPid=self.consumer_pid) == []


def request(tck: Tck, approval: str = "manual") -> Negotiation:
    """Publish an asset, read its offer from the CUT's catalog, send the initial ContractRequestMessage."""
    asset_id = publish(tck.cut, approval=approval)
    r = tck.peer.send(tck.cut, f"/catalog/datasets/{asset_id}", method="GET")
    assert r.status_code == 200, r.text
    offer = r.json()["hasPolicy"][0]
    consumer_pid = tck.peer.adopt(new_pid())
    r = tck.peer.send(tck.cut, "/negotiations/request", dsp(
        "ContractRequestMessage", consumerPid=consumer_pid, offer={**offer, "target": asset_id},
        callbackAddress=tck.peer.base_url))
    assert r.status_code == 201, r.text
    body = validate_message(r.json(), "ContractNegotiation")
    assert body["consumerPid"] == consumer_pid and body["state"] == "REQUESTED" and body["providerPid"]
    return Negotiation(tck, asset_id, offer, consumer_pid, str(body["providerPid"]))


def counter_offer(n: Negotiation) -> dict[str, Any]:
    """The provider's operator offers different terms; the peer receives a ContractOfferMessage."""
    n.step("offer", {"policy": {"@id": f"{n.asset_id}:counter:{new_pid()}", "@type": "Offer",
                                "permission": [{"action": "use"}, {"action": "read"}]}})
    message = n.expect("ContractOfferMessage")
    assert message["offer"]["target"] == n.asset_id
    n.wait("OFFERED")
    return message


def assert_error(r: httpx.Response, status: int, *, schema: bool = True) -> dict[str, Any]:
    """``status`` with an error body naming a ``code`` and a ``reason``; schema-valid unless ``schema=False``
    (those cases are checked against the schema in CN:03-12 alone, which documents the gap)."""
    assert r.status_code == status, r.text
    body: dict[str, Any] = r.json()
    assert body["@type"] == ERROR and body["code"] and body["reason"], body
    if schema:
        validate_message(body, ERROR)
    return body


def agreement_checked(n: Negotiation) -> dict[str, Any]:
    """The ContractAgreementMessage: an Agreement for the asset between the two DIDs, with a timestamp."""
    agreement = n.expect("ContractAgreementMessage")["agreement"]
    assert agreement["@type"] == "Agreement" and agreement["@id"]
    assert agreement["target"] == n.asset_id
    assert agreement["assigner"] == n.tck.cut.did and agreement["assignee"] == n.tck.peer.did
    assert agreement["timestamp"]
    return dict(agreement)


# ---- CN_01: contract request scenarios --------------------------------------------------------------------


def test_cn_01_01_request_offer_consumer_terminates(tck: Tck) -> None:
    n = request(tck)
    counter_offer(n)
    r = n.send("termination", "ContractNegotiationTerminationMessage", code="TCK", reason=["no thanks"])
    assert r.status_code == 200, r.text
    n.wait("TERMINATED")
    n.assert_conformant()


def test_cn_01_02_request_offer_counter_request_provider_terminates(tck: Tck) -> None:
    n = request(tck)
    offered = counter_offer(n)["offer"]
    r = n.send("request", "ContractRequestMessage",
               offer={"@id": offered["@id"], "@type": "Offer", "target": n.asset_id,
                      "permission": [{"action": "use"}]})
    assert r.status_code == 200, r.text
    n.wait("REQUESTED")
    n.step("terminate", {"reason": "counter-request not acceptable"})
    termination = n.expect("ContractNegotiationTerminationMessage")
    assert "counter-request not acceptable" in " ".join(termination.get("reason", []))
    n.wait("TERMINATED")
    n.assert_conformant()


def test_cn_01_03_request_offer_accept_agree_verify_finalize(tck: Tck) -> None:
    n = request(tck)
    counter_offer(n)
    r = n.send("events", "ContractNegotiationEventMessage", eventType="ACCEPTED")
    assert r.status_code == 200, r.text
    n.wait("ACCEPTED")
    n.step("agree")
    agreement = agreement_checked(n)
    assert {p["action"] for p in agreement["permission"]} == {"use", "read"}  # the terms the consumer accepted
    n.wait("AGREED")
    r = n.send("agreement/verification", "ContractAgreementVerificationMessage")
    assert r.status_code == 200, r.text
    n.wait("VERIFIED")
    n.step("finalize")
    assert n.expect("ContractNegotiationEventMessage")["eventType"] == "FINALIZED"
    n.wait("FINALIZED")
    n.assert_conformant()


def test_cn_01_04_request_agree_verify_finalize_automatically(tck: Tck) -> None:
    n = request(tck, approval="auto")
    agreement_checked(n)
    n.wait("AGREED")
    r = n.send("agreement/verification", "ContractAgreementVerificationMessage")
    assert r.status_code == 200, r.text
    assert n.expect("ContractNegotiationEventMessage")["eventType"] == "FINALIZED"
    n.wait("FINALIZED")
    n.assert_conformant()


# ---- CN_02: termination at every point --------------------------------------------------------------------


def test_cn_02_01_request_provider_terminates(tck: Tck) -> None:
    n = request(tck)
    n.step("terminate", {"reason": "not today"})
    termination = n.expect("ContractNegotiationTerminationMessage")
    assert termination["reason"] and termination.get("code")
    n.wait("TERMINATED")
    n.assert_conformant()


def test_cn_02_02_request_consumer_terminates(tck: Tck) -> None:
    n = request(tck)
    r = n.send("termination", "ContractNegotiationTerminationMessage", code="TCK", reason=["changed my mind"])
    assert r.status_code == 200, r.text
    n.wait("TERMINATED")
    assert tck.cut.negotiation(n.provider_pid)["errorDetail"] == "changed my mind"


def test_cn_02_03_request_agree_consumer_terminates(tck: Tck) -> None:
    n = request(tck)
    n.step("agree")
    agreement_checked(n)
    n.wait("AGREED")
    r = n.send("termination", "ContractNegotiationTerminationMessage", code="TCK", reason=["agreement refused"])
    assert r.status_code == 200, r.text
    n.wait("TERMINATED")
    n.assert_conformant()


def test_cn_02_04_request_offer_consumer_terminates(tck: Tck) -> None:
    n = request(tck)
    counter_offer(n)
    r = n.send("termination", "ContractNegotiationTerminationMessage", reason=["offer refused"])
    assert r.status_code == 200, r.text
    n.wait("TERMINATED")


def test_cn_02_05_request_offer_provider_terminates(tck: Tck) -> None:
    n = request(tck)
    counter_offer(n)
    n.step("terminate")
    n.expect("ContractNegotiationTerminationMessage")
    n.wait("TERMINATED")
    n.assert_conformant()


def test_cn_02_06_request_offer_accept_provider_terminates(tck: Tck) -> None:
    n = request(tck)
    counter_offer(n)
    assert n.send("events", "ContractNegotiationEventMessage", eventType="ACCEPTED").status_code == 200
    n.wait("ACCEPTED")
    n.step("terminate")
    n.expect("ContractNegotiationTerminationMessage")
    n.wait("TERMINATED")
    n.assert_conformant()


def test_cn_02_07_request_agree_verify_provider_terminates(tck: Tck) -> None:
    n = request(tck)
    n.step("agree")
    agreement_checked(n)
    assert n.send("agreement/verification", "ContractAgreementVerificationMessage").status_code == 200
    n.wait("VERIFIED")
    n.step("terminate")
    n.expect("ContractNegotiationTerminationMessage")
    n.wait("TERMINATED")
    n.assert_conformant()


PCF_ONLY = {"@context": "http://www.w3.org/ns/odrl.jsonld", "@type": "Set", "permission": [{
    "action": "use", "constraint": [{"leftOperand": "https://w3id.org/catenax/policy/FrameworkAgreement",
                                     "operator": "eq", "rightOperand": "pcf:1.0"}]}]}


def test_cn_02_08_terms_the_consumer_credentials_do_not_satisfy_provider_terminates_with_why(tck: Tck) -> None:
    asset_id = publish(tck.cut, contract=PCF_ONLY, approval="auto")
    offer = tck.peer.send(tck.cut, f"/catalog/datasets/{asset_id}", method="GET").json()["hasPolicy"][0]
    consumer_pid = tck.peer.adopt(new_pid())
    r = tck.peer.send(tck.cut, "/negotiations/request", dsp(
        "ContractRequestMessage", consumerPid=consumer_pid, offer={**offer, "target": asset_id},
        callbackAddress=tck.peer.base_url))
    assert r.status_code == 201, r.text  # the offer is visible (open access policy); the contract decides
    termination = tck.peer.expect("ContractNegotiationTerminationMessage", consumerPid=consumer_pid)
    assert termination.message["code"] == "policy_denied"
    assert "FrameworkAgreement" in " ".join(termination.message["reason"])
    assert not [e for e in tck.peer.received(consumerPid=consumer_pid) if e.type == "ContractAgreementMessage"]


# ---- CN_03: negative scenarios ----------------------------------------------------------------------------


def test_cn_03_01_termination_after_finalized_is_400(tck: Tck) -> None:
    n = request(tck, approval="auto")
    agreement_checked(n)
    assert n.send("agreement/verification", "ContractAgreementVerificationMessage").status_code == 200
    n.wait("FINALIZED")
    r = n.send("termination", "ContractNegotiationTerminationMessage", reason=["too late"])
    body = assert_error(r, 400)
    assert body["providerPid"] == n.provider_pid and body["consumerPid"] == n.consumer_pid
    assert n.state() == "FINALIZED"


def test_cn_03_02_verification_while_offered_is_400(tck: Tck) -> None:
    n = request(tck)
    counter_offer(n)
    assert_error(n.send("agreement/verification", "ContractAgreementVerificationMessage"), 400)
    assert n.state() == "OFFERED"


def test_cn_03_03_verification_while_accepted_is_400(tck: Tck) -> None:
    n = request(tck)
    counter_offer(n)
    assert n.send("events", "ContractNegotiationEventMessage", eventType="ACCEPTED").status_code == 200
    n.wait("ACCEPTED")
    assert_error(n.send("agreement/verification", "ContractAgreementVerificationMessage"), 400)
    assert n.state() == "ACCEPTED"


def test_cn_03_04_second_counter_request_while_requested_is_400(tck: Tck) -> None:
    n = request(tck)
    offered = counter_offer(n)["offer"]
    counter = {"@id": offered["@id"], "@type": "Offer", "target": n.asset_id, "permission": [{"action": "use"}]}
    assert n.send("request", "ContractRequestMessage", offer=counter).status_code == 200
    n.wait("REQUESTED")
    again = {**counter, "permission": [{"action": "use"}, {"action": "read"}]}
    assert_error(n.send("request", "ContractRequestMessage", offer=again), 400)
    assert n.state() == "REQUESTED"


def test_cn_03_05_unknown_negotiation_is_404(tck: Tck) -> None:
    unknown = new_pid()
    message = dsp("ContractAgreementVerificationMessage", providerPid=unknown, consumerPid=new_pid())
    assert_error(tck.peer.send(tck.cut, f"/negotiations/{unknown}/agreement/verification", message), 404)
    r = tck.peer.send(tck.cut, f"/negotiations/{unknown}", method="GET")
    assert r.status_code == 404, r.text


def test_cn_03_06_consumer_event_other_than_accepted_is_400(tck: Tck) -> None:
    n = request(tck)
    counter_offer(n)
    assert_error(n.send("events", "ContractNegotiationEventMessage", eventType="FINALIZED"), 400)
    assert n.state() == "OFFERED"


def test_cn_03_07_repeated_request_is_idempotent_and_a_reused_consumer_pid_is_refused(tck: Tck) -> None:
    asset_id = publish(tck.cut, approval="manual")
    offer = tck.peer.send(tck.cut, f"/catalog/datasets/{asset_id}", method="GET").json()["hasPolicy"][0]
    message = dsp("ContractRequestMessage", consumerPid=tck.peer.adopt(new_pid()),
                  offer={**offer, "target": asset_id}, callbackAddress=tck.peer.base_url)
    first = tck.peer.send(tck.cut, "/negotiations/request", message)
    again = tck.peer.send(tck.cut, "/negotiations/request", message)  # a retry after a lost answer
    assert first.status_code == again.status_code == 201, (first.text, again.text)
    assert first.json()["providerPid"] == again.json()["providerPid"]
    changed = {**message, "callbackAddress": tck.peer.base_url + "/other"}
    assert_error(tck.peer.send(tck.cut, "/negotiations/request", changed), 400, schema=False)


def test_cn_03_13_repeated_request_after_the_provider_moved_on_is_still_idempotent(tck: Tck) -> None:
    asset_id = publish(tck.cut, approval="manual")
    offer = tck.peer.send(tck.cut, f"/catalog/datasets/{asset_id}", method="GET").json()["hasPolicy"][0]
    message = dsp("ContractRequestMessage", consumerPid=tck.peer.adopt(new_pid()),
                  offer={**offer, "target": asset_id}, callbackAddress=tck.peer.base_url)
    first = tck.peer.send(tck.cut, "/negotiations/request", message)
    assert first.status_code == 201, first.text
    n = Negotiation(tck, asset_id, offer, message["consumerPid"], first.json()["providerPid"])
    n.step("agree")
    n.wait("AGREED")
    again = tck.peer.send(tck.cut, "/negotiations/request", message)  # the answer to the first was lost
    assert again.status_code == 201, again.text
    assert again.json()["providerPid"] == n.provider_pid


def test_cn_03_08_request_for_an_offer_never_made_is_400(tck: Tck) -> None:
    asset_id = publish(tck.cut)
    offer = {"@id": f"urn:uuid:{new_pid()[9:]}", "@type": "Offer", "target": asset_id,
             "permission": [{"action": "use"}]}
    message = dsp("ContractRequestMessage", consumerPid=new_pid(), offer=offer, callbackAddress=tck.peer.base_url)
    assert_error(tck.peer.send(tck.cut, "/negotiations/request", message), 400, schema=False)


def test_cn_03_09_request_with_altered_terms_is_400(tck: Tck) -> None:
    asset_id = publish(tck.cut)
    offer = tck.peer.send(tck.cut, f"/catalog/datasets/{asset_id}", method="GET").json()["hasPolicy"][0]
    altered = {k: v for k, v in offer.items() if k not in ("permission", "prohibition", "obligation")}
    altered.update({"target": asset_id, "permission": [{"action": "use"}, {"action": "distribute"}]})
    message = dsp("ContractRequestMessage", consumerPid=new_pid(), offer=altered, callbackAddress=tck.peer.base_url)
    assert_error(tck.peer.send(tck.cut, "/negotiations/request", message), 400, schema=False)


def test_cn_03_10_message_with_a_foreign_consumer_pid_is_refused(tck: Tck) -> None:
    n = request(tck)
    message = dsp("ContractNegotiationTerminationMessage", providerPid=n.provider_pid, consumerPid=new_pid(),
                  reason=["not yours"])
    r = tck.peer.send(tck.cut, f"/negotiations/{n.provider_pid}/termination", message)
    assert r.status_code in (400, 404), r.text
    validate_message(r.json(), ERROR)
    assert n.state() == "REQUESTED"


def test_cn_03_11_schema_invalid_message_is_400(tck: Tck) -> None:
    n = request(tck)
    message = dsp("ContractNegotiationEventMessage", **n.pids, eventType="SOMETHING")
    r = tck.peer.send(tck.cut, f"/negotiations/{n.provider_pid}/events", message, validate=False)
    assert_error(r, 400, schema=False)
    assert n.state() == "REQUESTED"


def test_cn_03_12_every_error_body_is_a_schema_valid_contract_negotiation_error(tck: Tck) -> None:
    n = request(tck)
    asset_id = publish(tck.cut)
    unknown_offer = {"@id": new_pid(), "@type": "Offer", "target": asset_id, "permission": [{"action": "use"}]}
    refused_initial = tck.peer.send(tck.cut, "/negotiations/request", dsp(
        "ContractRequestMessage", consumerPid=new_pid(), offer=unknown_offer, callbackAddress=tck.peer.base_url))
    unreadable = tck.peer.send(tck.cut, f"/negotiations/{n.provider_pid}/events",
                               dsp("ContractNegotiationEventMessage", **n.pids, eventType="SOMETHING"),
                               validate=False)
    for r in (refused_initial, unreadable):
        assert r.status_code == 400, r.text
        body = validate_message(r.json(), ERROR)
        assert body["consumerPid"] or body["providerPid"]
    assert unreadable.json()["providerPid"] == n.provider_pid


# ---- CN_04: operability (Pactum) ---------------------------------------------------------------------------


def test_cn_04_01_the_callers_correlation_id_follows_every_message_of_the_negotiation(tck: Tck) -> None:
    asset_id = publish(tck.cut, approval="auto")
    offer = tck.peer.send(tck.cut, f"/catalog/datasets/{asset_id}", method="GET").json()["hasPolicy"][0]
    consumer_pid = tck.peer.adopt(new_pid())
    correlation = f"tck-{new_pid()[9:]}"
    r = tck.peer.send(tck.cut, "/negotiations/request", dsp(
        "ContractRequestMessage", consumerPid=consumer_pid, offer={**offer, "target": asset_id},
        callbackAddress=tck.peer.base_url), headers={"X-Correlation-Id": correlation})
    assert r.status_code == 201, r.text
    provider_pid = r.json()["providerPid"]
    agreement = tck.peer.expect("ContractAgreementMessage", consumerPid=consumer_pid)
    assert agreement.correlation_id == correlation
    r = tck.peer.send(tck.cut, f"/negotiations/{provider_pid}/agreement/verification", dsp(
        "ContractAgreementVerificationMessage", providerPid=provider_pid, consumerPid=consumer_pid),
        headers={"X-Correlation-Id": correlation})
    assert r.status_code == 200, r.text
    assert tck.peer.expect("ContractNegotiationEventMessage", consumerPid=consumer_pid).correlation_id == correlation
    assert tck.cut.negotiation(provider_pid)["correlationId"] == correlation
