"""Steps the end-to-end tests share: publish an offer on a provider, read its catalog, negotiate, transfer."""

from __future__ import annotations

import time
import uuid
from typing import Any

from tests.e2e.conftest import Connector

EDC = {"@vocab": "https://w3id.org/edc/v0.0.1/ns/"}
ODRL = "http://www.w3.org/ns/odrl.jsonld"
MEMBERSHIP = {"leftOperand": "https://w3id.org/catenax/policy/Membership", "operator": "eq",
              "rightOperand": "active"}
MEMBERS_ONLY = {"@context": ODRL, "@type": "Set", "permission": [{"action": "use", "constraint": [MEMBERSHIP]}]}
OPEN = {"@context": ODRL, "@type": "Set", "permission": [{"action": "use"}]}


def publish(provider: Connector, *, contract: dict[str, Any] | None = None, access: dict[str, Any] | None = None,
            approval: str = "auto", data: str = "hello, data space") -> str:
    """Create an asset, its access and contract policies and a contract definition; returns the asset id."""
    suffix = uuid.uuid4().hex[:8]
    asset_id = f"asset-{suffix}"
    r = provider.mgmt("POST", "/v3/assets", json={
        "@context": EDC, "@id": asset_id, "properties": {"name": f"Asset {suffix}", "category": f"c{suffix}"},
        "dataAddress": {"type": "Inline", "data": data}})
    assert r.status_code == 200, r.text
    for pid, policy in ((f"access-{suffix}", access or OPEN), (f"contract-{suffix}", contract or MEMBERS_ONLY)):
        r = provider.mgmt("POST", "/v3/policydefinitions",
                          json={"@context": EDC, "@id": pid, "@type": "PolicyDefinition", "policy": policy})
        assert r.status_code == 200, r.text
    r = provider.mgmt("POST", "/v3/contractdefinitions", json={
        "@context": EDC, "@id": f"cd-{suffix}", "accessPolicyId": f"access-{suffix}",
        "contractPolicyId": f"contract-{suffix}", "approval": approval,
        "assetsSelector": [{"operandLeft": "https://w3id.org/edc/v0.0.1/ns/id", "operator": "=",
                            "operandRight": asset_id}]})
    assert r.status_code == 200, r.text
    return asset_id


def dataset(consumer: Connector, provider: Connector, asset_id: str) -> dict[str, Any]:
    """The provider's dataset as the consumer's catalog request sees it."""
    r = consumer.mgmt("POST", "/v3/catalog/dataset/request", json={
        "@context": EDC, "@type": "DatasetRequest", "@id": asset_id, "counterPartyAddress": provider.protocol_url,
        "counterPartyId": provider.did, "protocol": "dataspace-protocol-http:2025-1"})
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def first_offer(found: dict[str, Any]) -> dict[str, Any]:
    policies = found.get("hasPolicy") or found.get("odrl:hasPolicy")
    offer: dict[str, Any] = policies[0] if isinstance(policies, list) else policies
    return offer


def start_negotiation(consumer: Connector, provider: Connector, offer: dict[str, Any], asset_id: str,
                      approval: str | None = None) -> str:
    body: dict[str, Any] = {"@context": EDC, "@type": "ContractRequest", "counterPartyAddress": provider.protocol_url,
                            "counterPartyId": provider.did, "protocol": "dataspace-protocol-http:2025-1",
                            "policy": {**offer, "target": asset_id, "assigner": provider.did}}
    if approval:
        body["approval"] = approval
    r = consumer.mgmt("POST", "/v3/contractnegotiations", json=body)
    assert r.status_code == 200, r.text
    negotiation_id: str = r.json()["@id"]
    return negotiation_id


def negotiate(consumer: Connector, provider: Connector, asset_id: str) -> dict[str, Any]:
    """Catalog -> request -> FINALIZED on both sides; returns the consumer's negotiation."""
    offer = first_offer(dataset(consumer, provider, asset_id))
    negotiation_id = start_negotiation(consumer, provider, offer, asset_id)
    return consumer.wait_state("negotiation", negotiation_id, "FINALIZED", "TERMINATED")


def provider_side(provider: Connector, consumer_negotiation: dict[str, Any]) -> dict[str, Any]:
    """The provider's view of the same negotiation (found by its providerPid)."""
    return provider.negotiation(consumer_negotiation["providerPid"])


def find_by_consumer_pid(connector: Connector, kind: str, consumer_pid: str, timeout: float = 20) -> dict[str, Any]:
    """The provider's process for a consumer's pid, once the consumer's first message has arrived."""
    path = "/v3/contractnegotiations/request" if kind == "negotiation" else "/v3/transferprocesses/request"
    deadline = time.monotonic() + timeout
    while True:
        found = connector.mgmt("POST", path, json={"filterExpression": [
            {"operandLeft": "consumerPid", "operator": "=", "operandRight": consumer_pid}]}).json()
        if found:
            process: dict[str, Any] = found[0]
            return process
        assert time.monotonic() < deadline, f"no {kind} for consumerPid {consumer_pid} on {connector.name}"
        time.sleep(0.05)
