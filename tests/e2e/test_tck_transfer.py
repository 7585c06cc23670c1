"""DSP 2025-1 conformance, transfer process (TCK ids TP as provider, TP_C as consumer).

Every transfer runs under an agreement the CUT and the scripted peer negotiated to FINALIZED just before.
The CUT runs in ``manual`` approval, so the test takes its steps (start, suspend, resume, complete,
terminate) through ``/management/v3/transferprocesses/{id}/{step}`` exactly where each diagram needs them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from connector.protocol.schemas import validate_message
from tests.e2e.conftest import Authority
from tests.e2e.flows import EDC
from tests.e2e.tck_peer import (
    Exchange,
    Tck,
    dsp,
    finalize_with_cut_as_consumer,
    finalize_with_cut_as_provider,
    new_pid,
    shared_tck,
    wait_until,
)

ERROR = "TransferError"
PULL = "HttpData-PULL"
PROTOCOL = "dataspace-protocol-http:2025-1"


@pytest.fixture(scope="session")
def tck(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, authority: Authority) -> Tck:
    return shared_tck(request, tmp_path_factory, authority)


def assert_error(r: httpx.Response, status: int | tuple[int, ...]) -> dict[str, Any]:
    statuses = status if isinstance(status, tuple) else (status,)
    assert r.status_code in statuses, r.text
    body: dict[str, Any] = r.json()
    assert body["@type"] == ERROR and body["code"] and body["reason"], body
    return body


def step(tck: Tck, transfer_id: str, name: str, body: dict[str, Any] | None = None) -> None:
    r = tck.cut.mgmt("POST", f"/v3/transferprocesses/{transfer_id}/{name}", json=body or {})
    assert r.status_code in (200, 204), r.text


# ---- TP: the CUT is the provider ---------------------------------------------------------------------------


@dataclass
class ProviderTransfer:
    tck: Tck
    consumer_pid: str
    provider_pid: str

    @property
    def pids(self) -> dict[str, str]:
        return {"providerPid": self.provider_pid, "consumerPid": self.consumer_pid}

    def send(self, suffix: str, message_type: str, **fields: Any) -> httpx.Response:
        return self.tck.peer.send(self.tck.cut, f"/transfers/{self.provider_pid}/{suffix}",
                                  dsp(message_type, **self.pids, **fields))

    def state(self) -> str:
        r = self.tck.peer.send(self.tck.cut, f"/transfers/{self.provider_pid}", method="GET")
        assert r.status_code == 200, r.text
        body = validate_message(r.json(), "TransferProcess")
        assert body["providerPid"] == self.provider_pid and body["consumerPid"] == self.consumer_pid
        return str(body["state"])

    def wait(self, state: str) -> None:
        wait_until(lambda: self.state() == state)

    def step(self, name: str, body: dict[str, Any] | None = None) -> None:
        step(self.tck, self.provider_pid, name, body)

    def expect(self, message_type: str, nth: int = 0) -> Exchange:
        """The ``nth`` (0 = first) ``message_type`` the CUT sent for this transfer, conformance-checked."""
        peer = self.tck.peer
        peer.expect(message_type, consumerPid=self.consumer_pid)
        found = wait_until(lambda: [e for e in peer.received(consumerPid=self.consumer_pid)
                                    if e.type == message_type][nth:])
        exchange: Exchange = found[0]
        assert exchange.problem is None, exchange.problem
        assert exchange.caller == self.tck.cut.did and exchange.message["providerPid"] == self.provider_pid
        assert exchange.path == f"/transfers/{self.consumer_pid}/" + {
            "TransferStartMessage": "start", "TransferCompletionMessage": "completion",
            "TransferSuspensionMessage": "suspension", "TransferTerminationMessage": "termination"}[message_type]
        return exchange

    def assert_conformant(self) -> None:
        assert self.tck.peer.problems(consumerPid=self.consumer_pid) == []


def transfer_request(tck: Tck, agreement_id: str, **changes: Any) -> tuple[dict[str, Any], httpx.Response]:
    message = dsp("TransferRequestMessage", consumerPid=tck.peer.adopt(new_pid()), agreementId=agreement_id,
                  format=PULL, callbackAddress=tck.peer.base_url)
    message.update(changes)
    return message, tck.peer.send(tck.cut, "/transfers/request", message)


def requested(tck: Tck, data: str = "tck data") -> ProviderTransfer:
    """A finalized agreement, then the peer's TransferRequestMessage (201, REQUESTED)."""
    agreement_id = finalize_with_cut_as_provider(tck.peer, tck.cut, data=data).agreement_id
    message, r = transfer_request(tck, agreement_id)
    assert r.status_code == 201, r.text
    body = validate_message(r.json(), "TransferProcess")
    assert body["consumerPid"] == message["consumerPid"] and body["state"] == "REQUESTED"
    return ProviderTransfer(tck, message["consumerPid"], str(body["providerPid"]))


def pull(address: dict[str, Any]) -> httpx.Response:
    """Fetch the data with the DSP DataAddress (endpoint + authorization endpoint property) of a PULL."""
    properties = {p["name"]: p["value"] for p in address.get("endpointProperties", [])}
    return httpx.get(address["endpoint"], headers={"Authorization": f"Bearer {properties['authorization']}"},
                     timeout=20)


def test_tp_01_01_request_start_pull_complete(tck: Tck) -> None:
    t = requested(tck, data="tp-01-01 payload")
    t.step("start")
    start = t.expect("TransferStartMessage").message
    address = start["dataAddress"]
    assert address["@type"] == "DataAddress" and address["endpoint"]
    t.wait("STARTED")
    r = pull(address)
    assert r.status_code == 200 and r.text == "tp-01-01 payload", r.text
    assert t.send("completion", "TransferCompletionMessage").status_code == 200
    t.wait("COMPLETED")
    t.assert_conformant()


def test_tp_01_02_provider_suspends_and_resumes_then_completes(tck: Tck) -> None:
    t = requested(tck)
    t.step("start")
    t.expect("TransferStartMessage")
    t.wait("STARTED")
    t.step("suspend", {"reason": "maintenance"})
    suspension = t.expect("TransferSuspensionMessage").message
    assert "maintenance" in suspension["reason"]
    t.wait("SUSPENDED")
    t.step("resume")
    assert t.expect("TransferStartMessage", nth=1).message["providerPid"] == t.provider_pid
    t.wait("STARTED")
    t.step("complete")
    t.expect("TransferCompletionMessage")
    t.wait("COMPLETED")
    t.assert_conformant()


def test_tp_01_03_consumer_suspends_resumes_and_terminates(tck: Tck) -> None:
    t = requested(tck)
    t.step("start")
    t.expect("TransferStartMessage")
    t.wait("STARTED")
    assert t.send("suspension", "TransferSuspensionMessage", code="TCK", reason=["pause"]).status_code == 200
    t.wait("SUSPENDED")
    assert t.send("start", "TransferStartMessage").status_code == 200
    t.wait("STARTED")
    assert t.send("termination", "TransferTerminationMessage", code="TCK", reason=["done"]).status_code == 200
    t.wait("TERMINATED")
    assert tck.cut.transfer(t.provider_pid)["errorDetail"] == "done"
    t.assert_conformant()


def test_tp_01_04_provider_terminates_a_requested_transfer(tck: Tck) -> None:
    t = requested(tck)
    t.step("terminate", {"reason": "not now"})
    termination = t.expect("TransferTerminationMessage").message
    assert "not now" in termination["reason"] and termination["code"]
    t.wait("TERMINATED")
    t.assert_conformant()


def test_tp_01_05_provider_completes_a_started_transfer(tck: Tck) -> None:
    t = requested(tck)
    t.step("start")
    t.expect("TransferStartMessage")
    t.step("complete")
    t.expect("TransferCompletionMessage")
    t.wait("COMPLETED")
    t.assert_conformant()


def test_tp_01_06_automatic_provider_starts_on_its_own_under_an_auto_agreement(tck: Tck) -> None:
    agreement_id = finalize_with_cut_as_provider(tck.peer, tck.cut, data="auto payload",
                                                 approval="auto").agreement_id
    message, r = transfer_request(tck, agreement_id)
    assert r.status_code == 201, r.text
    t = ProviderTransfer(tck, message["consumerPid"], str(r.json()["providerPid"]))
    start = t.expect("TransferStartMessage").message  # no operator step: the definition said auto
    t.wait("STARTED")
    assert pull(start["dataAddress"]).text == "auto payload"
    t.assert_conformant()


def test_tp_02_01_request_for_a_non_finalized_agreement_is_refused(tck: Tck) -> None:
    peer, cut = tck.peer, tck.cut
    from tests.e2e.flows import publish

    asset_id = publish(cut, approval="auto")
    offer = peer.send(cut, f"/catalog/datasets/{asset_id}", method="GET").json()["hasPolicy"][0]
    consumer_pid = peer.adopt(new_pid())
    r = peer.send(cut, "/negotiations/request", dsp("ContractRequestMessage", consumerPid=consumer_pid,
                                                   offer={**offer, "target": asset_id},
                                                   callbackAddress=peer.base_url))
    assert r.status_code == 201, r.text
    agreement = peer.expect("ContractAgreementMessage", consumerPid=consumer_pid).message["agreement"]
    # AGREED, never verified: the agreement exists but may not be used yet
    _, r = transfer_request(tck, agreement["@id"])
    assert_error(r, 400)


def test_tp_02_02_request_for_an_unknown_agreement_is_refused(tck: Tck) -> None:
    _, r = transfer_request(tck, new_pid())
    assert_error(r, (400, 404))


def test_tp_02_03_repeated_request_with_the_same_consumer_pid_is_idempotent(tck: Tck) -> None:
    agreement_id = finalize_with_cut_as_provider(tck.peer, tck.cut).agreement_id
    message, first = transfer_request(tck, agreement_id)
    again = tck.peer.send(tck.cut, "/transfers/request", message)
    assert first.status_code == again.status_code == 201, (first.text, again.text)
    assert first.json()["providerPid"] == again.json()["providerPid"]
    other_agreement = finalize_with_cut_as_provider(tck.peer, tck.cut).agreement_id
    r = tck.peer.send(tck.cut, "/transfers/request", {**message, "agreementId": other_agreement})
    assert_error(r, 400)


def test_tp_02_04_completion_while_requested_is_400(tck: Tck) -> None:
    t = requested(tck)
    assert_error(t.send("completion", "TransferCompletionMessage"), 400)
    assert t.state() == "REQUESTED"


def test_tp_02_05_consumer_start_while_requested_is_400(tck: Tck) -> None:
    t = requested(tck)
    assert_error(t.send("start", "TransferStartMessage"), 400)
    assert t.state() == "REQUESTED"


def test_tp_02_06_unknown_transfer_is_404(tck: Tck) -> None:
    unknown = new_pid()
    r = tck.peer.send(tck.cut, f"/transfers/{unknown}/completion",
                      dsp("TransferCompletionMessage", providerPid=unknown, consumerPid=new_pid()))
    assert_error(r, 404)
    assert tck.peer.send(tck.cut, f"/transfers/{unknown}", method="GET").status_code == 404


def test_tp_02_07_unsupported_transfer_format_is_400(tck: Tck) -> None:
    agreement_id = finalize_with_cut_as_provider(tck.peer, tck.cut).agreement_id
    _, r = transfer_request(tck, agreement_id, format="Carrier-Pigeon")
    assert_error(r, 400)


def test_tp_02_08_messages_after_completion_are_400(tck: Tck) -> None:
    t = requested(tck)
    t.step("start")
    t.expect("TransferStartMessage")
    assert t.send("completion", "TransferCompletionMessage").status_code == 200
    t.wait("COMPLETED")
    assert_error(t.send("suspension", "TransferSuspensionMessage", reason=["late"]), 400)
    assert_error(t.send("termination", "TransferTerminationMessage", reason=["late"]), 400)
    assert t.state() == "COMPLETED"


def test_tp_02_09_error_bodies_are_schema_valid_transfer_errors(tck: Tck) -> None:
    t = requested(tck)
    body = assert_error(t.send("completion", "TransferCompletionMessage"), 400)
    validate_message(body, ERROR)


def test_tp_02_10_errors_for_refused_or_unreadable_messages_are_schema_valid(tck: Tck) -> None:
    t = requested(tck)
    _, refused = transfer_request(tck, new_pid())  # an initial request: the provider has no pid to give
    validate_message(assert_error(refused, (400, 404)), ERROR)
    unreadable = tck.peer.send(tck.cut, f"/transfers/{t.provider_pid}/suspension",
                               dsp("TransferSuspensionMessage", **t.pids, reason="not a list"), validate=False)
    validate_message(assert_error(unreadable, 400), ERROR)


# ---- TP_C: the CUT is the consumer -------------------------------------------------------------------------


@dataclass
class ConsumerTransfer:
    tck: Tck
    consumer_pid: str
    provider_pid: str

    @property
    def pids(self) -> dict[str, str]:
        return {"providerPid": self.provider_pid, "consumerPid": self.consumer_pid}

    def send(self, suffix: str, message_type: str, **fields: Any) -> httpx.Response:
        return self.tck.peer.send(self.tck.cut, f"/transfers/{self.consumer_pid}/{suffix}",
                                  dsp(message_type, **self.pids, **fields))

    def wait(self, state: str) -> dict[str, Any]:
        return self.tck.cut.wait_state("transfer", self.consumer_pid, state)

    def step(self, name: str, body: dict[str, Any] | None = None) -> None:
        step(self.tck, self.consumer_pid, name, body)

    def expect(self, message_type: str, nth: int = 0) -> Exchange:
        peer = self.tck.peer
        peer.expect(message_type, consumerPid=self.consumer_pid)
        found = wait_until(lambda: [e for e in peer.received(consumerPid=self.consumer_pid)
                                    if e.type == message_type][nth:])
        exchange: Exchange = found[0]
        assert exchange.problem is None, exchange.problem
        assert exchange.caller == self.tck.cut.did and exchange.message["providerPid"] == self.provider_pid
        return exchange

    def assert_conformant(self) -> None:
        assert self.tck.peer.problems(consumerPid=self.consumer_pid) == []


EDR = {"@type": "DataAddress", "endpointType": "https://w3id.org/idsa/v4.1/HTTP",
       "endpointProperties": [{"@type": "EndpointProperty", "name": "authorization", "value": "tck-token"},
                              {"@type": "EndpointProperty", "name": "authType", "value": "bearer"}]}


def consumer_requested(tck: Tck) -> ConsumerTransfer:
    """A finalized agreement with the peer, then the CUT's operator requests a PULL transfer."""
    agreement_id = finalize_with_cut_as_consumer(tck.peer, tck.cut).agreement_id
    r = tck.cut.mgmt("POST", "/v3/transferprocesses", json={
        "@context": EDC, "@type": "TransferRequest", "contractId": agreement_id,
        "counterPartyAddress": tck.peer.base_url, "protocol": PROTOCOL, "transferType": PULL})
    assert r.status_code == 200, r.text
    consumer_pid = str(r.json()["@id"])
    request = tck.peer.expect("TransferRequestMessage", consumerPid=consumer_pid)
    assert request.path == "/transfers/request" and request.caller == tck.cut.did
    message = request.message
    assert message["agreementId"] == agreement_id and message["format"] == PULL
    assert message["callbackAddress"].rstrip("/") == tck.cut.protocol_url
    provider_pid = str(wait_until(lambda: tck.cut.transfer(consumer_pid).get("providerPid")))
    assert provider_pid in tck.peer.own_pids
    return ConsumerTransfer(tck, consumer_pid, provider_pid)


def started(tck: Tck) -> ConsumerTransfer:
    t = consumer_requested(tck)
    r = t.send("start", "TransferStartMessage", dataAddress={**EDR, "endpoint": tck.peer.base_url + "/data"})
    assert r.status_code == 200, r.text
    t.wait("STARTED")
    return t


def test_tp_c_01_01_request_start_completion_by_the_provider(tck: Tck) -> None:
    t = started(tck)
    assert t.send("completion", "TransferCompletionMessage").status_code == 200
    t.wait("COMPLETED")
    t.assert_conformant()


def test_tp_c_01_02_provider_suspends_resumes_consumer_terminates(tck: Tck) -> None:
    t = started(tck)
    assert t.send("suspension", "TransferSuspensionMessage", code="TCK", reason=["hold"]).status_code == 200
    assert t.wait("SUSPENDED")["errorDetail"] == "hold"
    fresh = {**EDR, "endpoint": tck.peer.base_url + "/data", "endpointProperties": [
        {"@type": "EndpointProperty", "name": "authorization", "value": "tck-token-after-resume"}]}
    assert t.send("start", "TransferStartMessage", dataAddress=fresh).status_code == 200
    t.wait("STARTED")
    t.step("terminate", {"reason": "enough"})
    termination = t.expect("TransferTerminationMessage")
    assert termination.path == f"/transfers/{t.provider_pid}/termination"
    assert "enough" in termination.message["reason"]
    t.wait("TERMINATED")
    t.assert_conformant()


def test_tp_c_01_03_consumer_suspends_resumes_completes(tck: Tck) -> None:
    t = started(tck)
    t.step("suspend", {"reason": "night"})
    assert t.expect("TransferSuspensionMessage").path == f"/transfers/{t.provider_pid}/suspension"
    t.wait("SUSPENDED")
    t.step("resume")
    assert t.expect("TransferStartMessage").path == f"/transfers/{t.provider_pid}/start"
    t.wait("STARTED")
    t.step("complete")
    assert t.expect("TransferCompletionMessage").path == f"/transfers/{t.provider_pid}/completion"
    t.wait("COMPLETED")
    t.assert_conformant()


def test_tp_c_01_04_provider_terminates_a_requested_transfer(tck: Tck) -> None:
    t = consumer_requested(tck)
    assert t.send("termination", "TransferTerminationMessage", code="TCK", reason=["refused"]).status_code == 200
    assert t.wait("TERMINATED")["errorDetail"] == "refused"


def test_tp_c_02_01_completion_while_requested_is_400(tck: Tck) -> None:
    t = consumer_requested(tck)
    assert_error(t.send("completion", "TransferCompletionMessage"), 400)
    assert tck.cut.transfer(t.consumer_pid)["state"] == "REQUESTED"


def test_tp_c_02_02_unknown_consumer_pid_is_404(tck: Tck) -> None:
    unknown = new_pid()
    r = tck.peer.send(tck.cut, f"/transfers/{unknown}/start",
                      dsp("TransferStartMessage", providerPid=new_pid(), consumerPid=unknown))
    assert_error(r, 404)


def test_tp_c_02_03_no_request_under_an_agreement_that_is_not_finalized(tck: Tck) -> None:
    peer, cut = tck.peer, tck.cut
    asset_id = f"urn:uuid:{new_pid()[9:]}"
    r = cut.mgmt("POST", "/v3/contractnegotiations", json={
        "@context": EDC, "@type": "ContractRequest", "counterPartyAddress": peer.base_url,
        "counterPartyId": peer.did, "protocol": PROTOCOL, "approval": "manual",
        "policy": {"@id": f"offer:{asset_id}", "@type": "Offer", "permission": [{"action": "use"}],
                   "target": asset_id, "assigner": peer.did}})
    consumer_pid = r.json()["@id"]
    peer.expect("ContractRequestMessage", consumerPid=consumer_pid)
    provider_pid = wait_until(lambda: cut.negotiation(consumer_pid).get("providerPid"))
    agreement_id = new_pid()
    r = peer.send(cut, f"/negotiations/{consumer_pid}/agreement", dsp(
        "ContractAgreementMessage", providerPid=provider_pid, consumerPid=consumer_pid, agreement={
            "@id": agreement_id, "@type": "Agreement", "target": asset_id, "assigner": peer.did,
            "assignee": cut.did, "timestamp": "2026-01-01T00:00:00Z", "permission": [{"action": "use"}]}))
    assert r.status_code == 200, r.text
    cut.wait_state("negotiation", consumer_pid, "AGREED")
    before = len(peer.received())
    r = cut.mgmt("POST", "/v3/transferprocesses", json={
        "@context": EDC, "@type": "TransferRequest", "contractId": agreement_id,
        "counterPartyAddress": peer.base_url, "protocol": PROTOCOL, "transferType": PULL})
    assert 400 <= r.status_code < 500, r.text
    assert not [e for e in peer.received()[before:] if e.type == "TransferRequestMessage"]


def test_tp_c_02_04_identical_start_after_a_suspension_resumes(tck: Tck) -> None:
    """DSP messages carry no id: the same bytes in a new state are a new message, not a retry."""
    t = started(tck)
    assert t.send("suspension", "TransferSuspensionMessage", reason=["hold"]).status_code == 200
    t.wait("SUSPENDED")
    r = t.send("start", "TransferStartMessage", dataAddress={**EDR, "endpoint": tck.peer.base_url + "/data"})
    assert r.status_code == 200, r.text
    wait_until(lambda: tck.cut.transfer(t.consumer_pid)["state"] == "STARTED", timeout=5)
