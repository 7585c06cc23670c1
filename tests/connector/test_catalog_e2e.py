"""Catalog requests between real connector processes: DCP-authenticated, filtered by access policies, paged.

Uses the end-to-end fixtures (an authority and connectors started as ``pactum connector serve``).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from connector.protocol.schemas import validate_message
from tests.e2e.conftest import Connector, Dataspace, authority, dataspace, free_port, make_connector  # noqa: F401
from tests.e2e.flows import EDC, MEMBERS_ONLY, OPEN

DSP = "dataspace-protocol-http:2025-1"


@pytest.fixture(scope="module")
def guest(dataspace: Dataspace, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Connector]:  # noqa: F811
    """A registered participant that holds a BusinessPartnerCredential but no MembershipCredential."""
    connector = make_connector(tmp_path_factory.mktemp("guest"), "guest", dataspace.authority, credentials=("bpn",))
    connector.start()
    try:
        yield connector
    finally:
        connector.stop()


@pytest.fixture(scope="module")
def published(dataspace: Dataspace) -> dict[str, str]:  # noqa: F811
    """Three assets: two open to everyone, one (quality data) for members only."""
    provider = dataspace.provider
    assets = {"cat-open-1": ("logistics", OPEN), "cat-open-2": ("logistics", OPEN),
              "cat-members": ("quality", MEMBERS_ONLY)}
    for asset_id, (category, access) in assets.items():
        r = provider.mgmt("POST", "/v3/assets", json={
            "@context": EDC, "@id": asset_id, "properties": {"name": asset_id, "category": category},
            "dataAddress": {"type": "Inline", "data": asset_id}})
        assert r.status_code == 200, r.text
        r = provider.mgmt("POST", "/v3/policydefinitions", json={
            "@context": EDC, "@id": f"access-{asset_id}", "policy": access})
        assert r.status_code == 200, r.text
        r = provider.mgmt("POST", "/v3/contractdefinitions", json={
            "@context": EDC, "@id": f"cd-{asset_id}", "accessPolicyId": f"access-{asset_id}",
            "contractPolicyId": f"access-{asset_id}",
            "assetsSelector": [{"operandLeft": "id", "operator": "=", "operandRight": asset_id}]})
        assert r.status_code == 200, r.text
    return {k: v[0] for k, v in assets.items()}


def _catalog(consumer: Connector, provider: Connector, query: dict[str, Any] | None = None,
             with_id: bool = True) -> httpx.Response:
    body: dict[str, Any] = {"@context": EDC, "@type": "CatalogRequest", "counterPartyAddress": provider.protocol_url,
                            "protocol": DSP}
    if with_id:
        body["counterPartyId"] = provider.did
    if query is not None:
        body["querySpec"] = query
    return consumer.mgmt("POST", "/v3/catalog/request", json=body)


def _ids(catalog: dict[str, Any]) -> list[str]:
    return sorted(d["@id"] for d in catalog.get("dataset", []) if d["@id"].startswith("cat-"))


def test_members_see_the_members_only_dataset(dataspace: Dataspace, published: dict[str, str]) -> None:  # noqa: F811
    r = _catalog(dataspace.consumer, dataspace.provider)
    assert r.status_code == 200, r.text
    catalog = r.json()
    validate_message(catalog, "Catalog")
    assert catalog["participantId"] == dataspace.provider.did
    assert _ids(catalog) == ["cat-members", "cat-open-1", "cat-open-2"]


def test_the_provider_did_is_discovered_when_not_given(dataspace: Dataspace,  # noqa: F811
                                                       published: dict[str, str]) -> None:
    r = _catalog(dataspace.consumer, dataspace.provider, with_id=False)
    assert r.status_code == 200, r.text
    assert "cat-members" in _ids(r.json())


def test_a_guest_does_not_see_members_only_data(dataspace: Dataspace, guest: Connector,  # noqa: F811
                                                published: dict[str, str]) -> None:
    r = _catalog(guest, dataspace.provider)
    assert r.status_code == 200, r.text
    assert _ids(r.json()) == ["cat-open-1", "cat-open-2"]
    hidden = guest.mgmt("POST", "/v3/catalog/dataset/request", json={
        "@context": EDC, "@type": "DatasetRequest", "@id": "cat-members",
        "counterPartyAddress": dataspace.provider.protocol_url, "counterPartyId": dataspace.provider.did,
        "protocol": DSP})
    assert hidden.status_code == 502 and hidden.json()["code"] == "counterparty_refused"
    assert "404" in hidden.json()["detail"]


def test_query_spec_filters_and_pages_the_remote_catalog(dataspace: Dataspace,  # noqa: F811
                                                         published: dict[str, str]) -> None:
    quality = _catalog(dataspace.consumer, dataspace.provider, {"filterExpression": [
        {"operandLeft": "category", "operator": "=", "operandRight": "quality"}]})
    assert quality.status_code == 200, quality.text
    assert _ids(quality.json()) == ["cat-members"]
    first = _catalog(dataspace.consumer, dataspace.provider, {"offset": 0, "limit": 1, "filterExpression": [
        {"operandLeft": "id", "operator": "like", "operandRight": "cat-%"}]}).json()
    second = _catalog(dataspace.consumer, dataspace.provider, {"offset": 1, "limit": 1, "filterExpression": [
        {"operandLeft": "id", "operator": "like", "operandRight": "cat-%"}]}).json()
    assert len(first["dataset"]) == 1 and len(second["dataset"]) == 1
    assert first["dataset"][0]["@id"] != second["dataset"][0]["@id"]


def test_the_correlation_id_reaches_the_provider(dataspace: Dataspace,  # noqa: F811
                                                 published: dict[str, str]) -> None:
    correlation_id = f"urn:uuid:{uuid.uuid4()}"
    body = {"@context": EDC, "counterPartyAddress": dataspace.provider.protocol_url,
            "counterPartyId": dataspace.provider.did, "protocol": DSP}
    r = dataspace.consumer.mgmt("POST", "/v3/catalog/request", json=body,
                                headers={"X-Correlation-Id": correlation_id})
    assert r.status_code == 200, r.text
    deadline = time.monotonic() + 5
    while correlation_id not in dataspace.provider.log.read_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    lines = [json.loads(line) for line in dataspace.provider.log.read_text().splitlines()
             if correlation_id in line and line.startswith("{")]
    assert any(entry.get("correlation_id") == correlation_id and "catalog for" in entry["message"]
               for entry in lines), lines


def test_dataset_request_returns_offers(dataspace: Dataspace, published: dict[str, str]) -> None:  # noqa: F811
    r = dataspace.consumer.mgmt("POST", "/v3/catalog/dataset/request", json={
        "@context": EDC, "@type": "DatasetRequest", "@id": "cat-open-1",
        "counterPartyAddress": dataspace.provider.protocol_url, "counterPartyId": dataspace.provider.did,
        "protocol": DSP})
    assert r.status_code == 200, r.text
    dataset = r.json()
    validate_message(dataset, "Dataset")
    offer = dataset["hasPolicy"][0]
    assert offer["@type"] == "Offer" and offer["assigner"] == dataspace.provider.did


def test_an_unreachable_counterparty_is_a_502(dataspace: Dataspace) -> None:  # noqa: F811
    r = dataspace.consumer.mgmt("POST", "/v3/catalog/request", json={
        "@context": EDC, "counterPartyAddress": f"http://127.0.0.1:{free_port()}", "counterPartyId": "did:web:gone",
        "protocol": DSP})
    assert r.status_code == 502 and r.headers["content-type"] == "application/problem+json"
    assert r.json()["code"] == "counterparty_unreachable"
