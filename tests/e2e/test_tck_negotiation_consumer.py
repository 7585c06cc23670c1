"""DSP 2025-1 conformance, contract negotiation with the CUT as consumer (TCK ids CN_C:01..03-xx).

The scripted peer is the provider: it answers the CUT's ContractRequestMessage with 201 and its own
providerPid, then sends offers, agreements, the FINALIZED event or a termination to the CUT's callback
address. The CUT's own steps (accept, verify, terminate) are taken automatically (``auto`` approval) or by
the test through the management API (``manual``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from connector.protocol.schemas import validate_message
from tests.e2e.conftest import Authority
from tests.e2e.flows import EDC
from tests.e2e.tck_peer import Exchange, Tck, dsp, new_pid, shared_tck, wait_until

ERROR = "ContractNegotiationError"
PROTOCOL = "dataspace-protocol-http:2025-1"


@pytest.fixture(scope="session")
def tck(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, authority: Authority) -> Tck:
    return shared_tck(request, tmp_path_factory, authority)


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Negotiation:
    """One negotiation between the CUT (consumer) and the peer (provider)."""

    tck: Tck
    asset_id: str
    consumer_pid: str
    provider_pid: str
    policy: dict[str, Any]

    @property
    def pids(self) -> dict[str, str]:
        return {"providerPid": self.provider_pid, "consumerPid": self.consumer_pid}

    def send(self, suffix: str, message_type: str, **fields: Any) -> httpx.Response:
        """The peer posts ``message_type`` to the CUT's ``/negotiations/{consumerPid}/{suffix}``."""
        return self.tck.peer.send(self.tck.cut, f"/negotiations/{self.consumer_pid}/{suffix}",
                                  dsp(message_type, **self.pids, **fields))

    def state(self) -> str:
        """The consumer's state from ``GET /negotiations/{consumerPid}`` on its callback (schema-checked)."""
        r = self.tck.peer.send(self.tck.cut, f"/negotiations/{self.consumer_pid}", method="GET")
        assert r.status_code == 200, r.text
        body = validate_message(r.json(), "ContractNegotiation")
        assert body["consumerPid"] == self.consumer_pid
        return str(body["state"])

    def wait(self, state: str) -> None:
        wait_until(lambda: self.state() == state)

    def step(self, name: str, body: dict[str, Any] | None = None) -> None:
        r = self.tck.cut.mgmt("POST", f"/v3/contractnegotiations/{self.consumer_pid}/{name}", json=body or {})
        assert r.status_code in (200, 204), r.text

    def expect(self, message_type: str, **fields: Any) -> Exchange:
        exchange = self.tck.peer.expect(message_type, consumerPid=self.consumer_pid, **fields)
        assert exchange.caller == self.tck.cut.did
        return exchange

    def agreement(self, **changes: Any) -> dict[str, Any]:
        """The Agreement the peer (provider) signs for the requested terms; ``changes`` break it on purpose."""
        return {"@id": new_pid(), "@type": "Agreement", "target": self.asset_id, "assigner": self.tck.peer.did,
                "assignee": self.tck.cut.did, "timestamp": now(),
                "permission": self.policy["permission"], **changes}

    def assert_conformant(self) -> None:
        assert self.tck.peer.problems(consumerPid=self.consumer_pid) == []


def start(tck: Tck, approval: str = "manual") -> Negotiation:
    """The CUT's operator requests an offer of the peer; the peer receives the initial ContractRequestMessage."""
    asset_id = f"urn:uuid:{new_pid()[9:]}"
    policy = {"@id": f"offer:{asset_id}", "@type": "Offer", "permission": [{"action": "use"}]}
    r = tck.cut.mgmt("POST", "/v3/contractnegotiations", json={
        "@context": EDC, "@type": "ContractRequest", "counterPartyAddress": tck.peer.base_url,
        "counterPartyId": tck.peer.did, "protocol": PROTOCOL, "approval": approval,
        "policy": {**policy, "target": asset_id, "assigner": tck.peer.did}})
    assert r.status_code == 200, r.text
    consumer_pid = r.json()["@id"]
    exchange = tck.peer.expect("ContractRequestMessage", consumerPid=consumer_pid)
    assert exchange.path == "/negotiations/request" and exchange.caller == tck.cut.did
    message = exchange.message
    assert message["callbackAddress"].rstrip("/") == tck.cut.protocol_url
    assert message["offer"]["@id"] == policy["@id"] and message["offer"]["target"] == asset_id
    assert "providerPid" not in message
    provider_pid = wait_until(lambda: tck.cut.negotiation(consumer_pid).get("providerPid"))
    assert provider_pid in tck.peer.own_pids  # learnt from the peer's 201 answer
    return Negotiation(tck, asset_id, consumer_pid, str(provider_pid), policy)


def assert_error(r: httpx.Response, status: int) -> None:
    assert r.status_code == status, r.text
    body = r.json()
    assert body["@type"] == ERROR and body["code"] and body["reason"], body


# ---- CN_C_01: the consumer reaches FINALIZED ---------------------------------------------------------------


def test_cn_c_01_01_request_agreement_auto_verify_finalized(tck: Tck) -> None:
    n = start(tck, approval="auto")
    agreement = n.agreement()
    assert n.send("agreement", "ContractAgreementMessage", agreement=agreement).status_code == 200
    verification = n.expect("ContractAgreementVerificationMessage")
    assert verification.path == f"/negotiations/{n.provider_pid}/agreement/verification"
    n.wait("VERIFIED")
    assert n.send("events", "ContractNegotiationEventMessage", eventType="FINALIZED").status_code == 200
    n.wait("FINALIZED")
    mine = tck.cut.negotiation(n.consumer_pid)
    assert mine["contractAgreementId"] == agreement["@id"]
    stored = tck.cut.mgmt("GET", f"/v3/contractagreements/{agreement['@id']}")
    assert stored.status_code == 200, stored.text
    n.assert_conformant()


def test_cn_c_01_02_request_counter_offer_accept_agreement_verify_finalized(tck: Tck) -> None:
    n = start(tck)
    offer = {"@id": f"offer2:{n.asset_id}", "@type": "Offer", "target": n.asset_id,
             "permission": [{"action": "use"}, {"action": "read"}]}
    assert n.send("offers", "ContractOfferMessage", offer=offer).status_code == 200
    n.wait("OFFERED")
    n.step("accept")
    event = n.expect("ContractNegotiationEventMessage")
    assert event.message["eventType"] == "ACCEPTED" and event.path == f"/negotiations/{n.provider_pid}/events"
    n.wait("ACCEPTED")
    n.policy = offer
    assert n.send("agreement", "ContractAgreementMessage", agreement=n.agreement()).status_code == 200
    n.wait("AGREED")
    n.step("verify")
    n.expect("ContractAgreementVerificationMessage")
    n.wait("VERIFIED")
    assert n.send("events", "ContractNegotiationEventMessage", eventType="FINALIZED").status_code == 200
    n.wait("FINALIZED")
    n.assert_conformant()


def test_cn_c_01_03_provider_initiated_offer_accept_agreement_verify_finalized(tck: Tck) -> None:
    peer, cut = tck.peer, tck.cut
    provider_pid = peer.adopt(new_pid())
    asset_id = f"urn:uuid:{new_pid()[9:]}"
    offer = {"@id": f"offer:{asset_id}", "@type": "Offer", "target": asset_id, "permission": [{"action": "use"}]}
    r = peer.send(cut, "/negotiations/offers", dsp("ContractOfferMessage", providerPid=provider_pid, offer=offer,
                                                     callbackAddress=peer.base_url))
    assert r.status_code == 201, r.text
    body = validate_message(r.json(), "ContractNegotiation")
    assert body["providerPid"] == provider_pid and body["state"] == "OFFERED" and body["consumerPid"]
    n = Negotiation(tck, asset_id, str(body["consumerPid"]), provider_pid, offer)
    n.wait("OFFERED")
    n.step("accept")
    assert n.expect("ContractNegotiationEventMessage").message["eventType"] == "ACCEPTED"
    n.wait("ACCEPTED")
    assert n.send("agreement", "ContractAgreementMessage", agreement=n.agreement()).status_code == 200
    n.step("verify")
    n.expect("ContractAgreementVerificationMessage")
    assert n.send("events", "ContractNegotiationEventMessage", eventType="FINALIZED").status_code == 200
    n.wait("FINALIZED")
    n.assert_conformant()


# ---- CN_C_02: terminations ---------------------------------------------------------------------------------


def test_cn_c_02_01_request_provider_terminates(tck: Tck) -> None:
    n = start(tck)
    r = n.send("termination", "ContractNegotiationTerminationMessage", code="TCK-1", reason=["no capacity"])
    assert r.status_code == 200, r.text
    n.wait("TERMINATED")
    mine = tck.cut.negotiation(n.consumer_pid)
    assert mine["errorDetail"] == "no capacity" and mine["errorCode"] == "TCK-1"


def test_cn_c_02_02_offer_consumer_terminates(tck: Tck) -> None:
    n = start(tck)
    offer = {"@id": f"offer2:{n.asset_id}", "@type": "Offer", "target": n.asset_id,
             "permission": [{"action": "use"}]}
    assert n.send("offers", "ContractOfferMessage", offer=offer).status_code == 200
    n.wait("OFFERED")
    n.step("terminate", {"reason": "offer declined"})
    termination = n.expect("ContractNegotiationTerminationMessage")
    assert termination.path == f"/negotiations/{n.provider_pid}/termination"
    assert "offer declined" in termination.message["reason"]
    n.wait("TERMINATED")
    n.assert_conformant()


def test_cn_c_02_03_agreement_consumer_terminates(tck: Tck) -> None:
    n = start(tck)
    assert n.send("agreement", "ContractAgreementMessage", agreement=n.agreement()).status_code == 200
    n.wait("AGREED")
    n.step("terminate", {"reason": "agreement not wanted after all"})
    n.expect("ContractNegotiationTerminationMessage")
    n.wait("TERMINATED")
    n.assert_conformant()


def test_cn_c_02_04_provider_refuses_the_request(tck: Tck) -> None:
    consumer_holder: dict[str, str] = {}

    def refuse(exchange: Exchange) -> tuple[int, dict[str, Any] | None]:
        consumer_holder["pid"] = str(exchange.message.get("consumerPid"))
        return 400, dsp(ERROR, providerPid="", consumerPid=consumer_holder["pid"], code="TCK-REFUSED",
                        reason=["offer withdrawn"])

    remove_rule = tck.peer.on("POST", r"^/negotiations/request$", refuse)
    try:
        asset_id = f"urn:uuid:{new_pid()[9:]}"
        r = tck.cut.mgmt("POST", "/v3/contractnegotiations", json={
            "@context": EDC, "@type": "ContractRequest", "counterPartyAddress": tck.peer.base_url,
            "counterPartyId": tck.peer.did, "protocol": PROTOCOL,
            "policy": {"@id": f"offer:{asset_id}", "@type": "Offer", "permission": [{"action": "use"}],
                       "target": asset_id, "assigner": tck.peer.did}})
        assert r.status_code == 200, r.text
        consumer_pid = r.json()["@id"]
        ended = tck.cut.wait_state("negotiation", consumer_pid, "TERMINATED")
        assert "offer withdrawn" in ended["errorDetail"]
    finally:
        remove_rule()


# ---- CN_C_03: negative scenarios ---------------------------------------------------------------------------


def test_cn_c_03_01_agreement_for_another_dataset_is_400(tck: Tck) -> None:
    n = start(tck)
    r = n.send("agreement", "ContractAgreementMessage", agreement=n.agreement(target=f"urn:uuid:{new_pid()[9:]}"))
    assert_error(r, 400)
    assert n.state() == "REQUESTED"


def test_cn_c_03_02_agreement_for_another_assignee_is_400(tck: Tck) -> None:
    n = start(tck)
    r = n.send("agreement", "ContractAgreementMessage", agreement=n.agreement(assignee=tck.peer.did))
    assert_error(r, 400)
    assert n.state() == "REQUESTED"


def test_cn_c_03_03_agreement_with_other_terms_is_400(tck: Tck) -> None:
    n = start(tck)
    r = n.send("agreement", "ContractAgreementMessage",
               agreement=n.agreement(permission=[{"action": "use"}, {"action": "distribute"}]))
    assert_error(r, 400)
    assert n.state() == "REQUESTED"


def test_cn_c_03_04_finalized_before_verification_is_400(tck: Tck) -> None:
    n = start(tck)
    assert n.send("agreement", "ContractAgreementMessage", agreement=n.agreement()).status_code == 200
    n.wait("AGREED")
    assert_error(n.send("events", "ContractNegotiationEventMessage", eventType="FINALIZED"), 400)
    assert n.state() == "AGREED"


def test_cn_c_03_05_accepted_event_from_the_provider_is_400(tck: Tck) -> None:
    n = start(tck)
    assert_error(n.send("events", "ContractNegotiationEventMessage", eventType="ACCEPTED"), 400)
    assert n.state() == "REQUESTED"


def test_cn_c_03_06_unknown_consumer_pid_is_404(tck: Tck) -> None:
    unknown = new_pid()
    r = tck.peer.send(tck.cut, f"/negotiations/{unknown}/agreement", dsp(
        "ContractAgreementMessage", providerPid=new_pid(), consumerPid=unknown, agreement={
            "@id": new_pid(), "@type": "Agreement", "target": "urn:uuid:x", "assigner": tck.peer.did,
            "assignee": tck.cut.did, "timestamp": now(), "permission": [{"action": "use"}]}))
    assert_error(r, 404)


def test_cn_c_03_07_termination_after_finalized_is_400(tck: Tck) -> None:
    n = start(tck, approval="auto")
    assert n.send("agreement", "ContractAgreementMessage", agreement=n.agreement()).status_code == 200
    n.expect("ContractAgreementVerificationMessage")
    assert n.send("events", "ContractNegotiationEventMessage", eventType="FINALIZED").status_code == 200
    n.wait("FINALIZED")
    assert_error(n.send("termination", "ContractNegotiationTerminationMessage", reason=["too late"]), 400)
    assert n.state() == "FINALIZED"
