"""The test-hooks mode: off by default (404, not in the OpenAPI), on behind the API key, every field checked."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from connector.app import build_management_app
from connector.context import ConnectorContext, build_context
from connector.errors import NotFoundError
from connector.management.test_hooks import (
    HookInputInvalid,
    offer_in_dataset,
    read_negotiation_hook,
    read_transfer_hook,
)
from connector.storage.tables_protocol import NegotiationRow, OutboxRow
from tests.connector.test_protocol_support import free_port, make_settings

pytestmark = pytest.mark.anyio

KEY = "k"  # make_settings' management key
PROVIDER = "http://127.0.0.1:9/dsp"  # never contacted by the tests that use it (full offer, DID given)
PROVIDER_DID = "did:web:provider.example"
OFFER = {"@id": "urn:uuid:offer-1", "@type": "Offer", "target": "asset-1", "permission": [{"action": "use"}]}
HOOKS = ("/management/test/negotiations", "/management/test/transfers")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def _context(folder: Path, **extra: Any) -> AsyncIterator[ConnectorContext]:
    ctx = build_context(make_settings(folder, **extra))
    try:
        yield ctx
    finally:
        await ctx.aclose()


@pytest.fixture
async def hooked(tmp_path: Path) -> AsyncIterator[tuple[ConnectorContext, httpx.AsyncClient]]:
    async for ctx in _context(tmp_path, test_hooks=True):
        transport = httpx.ASGITransport(app=build_management_app(ctx))
        async with httpx.AsyncClient(transport=transport, base_url="http://mgmt", headers={"X-Api-Key": KEY}) as c:
            yield ctx, c


def _problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["status"] == status and body["code"] == code, body
    return body


# ---- reading the bodies (pure) ----------------------------------------------------------------------------

def test_the_tck_spellings_and_the_management_spellings_read_the_same() -> None:
    tck = read_negotiation_hook({"providerId": PROVIDER_DID, "connectorAddress": PROVIDER + "/",
                                 "datasetId": "asset-1", "offerId": "o1"})
    ours = read_negotiation_hook({"counterPartyId": PROVIDER_DID, "counterPartyAddress": PROVIDER,
                                  "datasetId": "asset-1", "offerId": "o1", "@context": {},
                                  "protocol": "dataspace-protocol-http:2025-1"})
    assert tck == ours and tck.counterparty_address == PROVIDER and tck.offer is None
    transfer = read_transfer_hook({"providerId": PROVIDER_DID, "agreementId": "a1", "format": "HttpData-PULL",
                                   "connectorAddress": PROVIDER})
    assert transfer == read_transfer_hook({"contractId": "a1", "transferType": "HttpData-PULL",
                                           "counterPartyAddress": PROVIDER, "counterPartyId": PROVIDER_DID})
    assert transfer.data_destination is None and transfer.approval is None


@pytest.mark.parametrize(("body", "field", "code"), [
    ([], "body", "body_invalid"),
    ({"datasetId": "a"}, "counterPartyAddress", "field_missing"),
    ({"counterPartyAddress": "ftp://x/dsp", "datasetId": "a"}, "counterPartyAddress", "field_invalid"),
    ({"counterPartyAddress": "/relative", "datasetId": "a"}, "counterPartyAddress", "field_invalid"),
    ({"counterPartyAddress": "http://u:p@host/dsp", "datasetId": "a"}, "counterPartyAddress", "field_invalid"),
    ({"counterPartyAddress": PROVIDER}, "datasetId", "field_missing"),
    ({"counterPartyAddress": PROVIDER, "datasetId": 7}, "datasetId", "field_invalid"),
    ({"counterPartyAddress": PROVIDER, "datasetId": " "}, "datasetId", "field_invalid"),
    ({"counterPartyAddress": PROVIDER, "offer": "urn:uuid:offer-1"}, "offer", "field_invalid"),
    ({"counterPartyAddress": PROVIDER, "offer": OFFER, "offerId": "other"}, "offerId", "field_invalid"),
    ({"counterPartyAddress": PROVIDER, "counterPartyId": "provider", "datasetId": "a"}, "counterPartyId",
     "field_invalid"),
    ({"counterPartyAddress": PROVIDER, "datasetId": "a", "approval": "later"}, "approval", "field_invalid"),
    ({"counterPartyAddress": PROVIDER, "datasetId": "a", "protocol": "ids-multipart"}, "protocol", "field_invalid"),
    ({"counterPartyAddress": PROVIDER, "datasetId": "a", "counterpartyAddress": PROVIDER}, "counterpartyAddress",
     "field_unknown"),
    ({"counterPartyAddress": PROVIDER, "connectorAddress": PROVIDER, "datasetId": "a"}, "counterPartyAddress",
     "field_conflict"),
])
def test_a_bad_negotiation_hook_body_names_the_field(body: Any, field: str, code: str) -> None:
    with pytest.raises(HookInputInvalid) as caught:
        read_negotiation_hook(body)
    assert caught.value.field == field and caught.value.code == code
    assert str(caught.value).startswith(f"{field}: ")


@pytest.mark.parametrize(("body", "field", "code"), [
    ({"transferType": "HttpData-PULL"}, "agreementId", "field_missing"),
    ({"agreementId": "a1"}, "transferType", "field_missing"),
    ({"agreementId": "a1", "transferType": "Ftp-PUSH"}, "transferType", "field_invalid"),
    ({"agreementId": ["a1"], "transferType": "HttpData-PULL"}, "agreementId", "field_invalid"),
    ({"agreementId": "a1", "transferType": "HttpData-PUSH", "dataDestination": "http://x"}, "dataDestination",
     "field_invalid"),
    ({"agreementId": "a1", "transferType": "HttpData-PULL", "counterPartyAddress": "x"}, "counterPartyAddress",
     "field_invalid"),
    ({"agreementId": "a1", "transferType": "HttpData-PULL", "purpose": 3}, "purpose", "field_invalid"),
    ({"agreementId": "a1", "transferType": "HttpData-PULL", "protocol": 2025}, "protocol", "field_invalid"),
    ({"agreementId": "a1", "contractId": "a1", "transferType": "HttpData-PULL"}, "agreementId", "field_conflict"),
    ({"agreementId": "a1", "transferType": "HttpData-PULL", "assetId": "x"}, "assetId", "field_unknown"),
])
def test_a_bad_transfer_hook_body_names_the_field(body: Any, field: str, code: str) -> None:
    with pytest.raises(HookInputInvalid) as caught:
        read_transfer_hook(body)
    assert caught.value.field == field and caught.value.code == code


def test_the_offer_is_picked_from_the_dataset_by_id_or_first() -> None:
    first, second = {"@id": "o1", "permission": []}, {"@id": "o2", "permission": []}
    dataset = {"@id": "asset-1", "hasPolicy": [first, second]}
    assert offer_in_dataset(dataset, None) == first
    assert offer_in_dataset(dataset, "o2") == second
    assert offer_in_dataset({"@id": "asset-1", "hasPolicy": second}, None) == second
    with pytest.raises(NotFoundError, match="no offer 'o3'.*'o1', 'o2'"):
        offer_in_dataset(dataset, "o3")
    with pytest.raises(NotFoundError, match="has no offer"):
        offer_in_dataset({"@id": "asset-1", "hasPolicy": []}, None)


# ---- off by default -----------------------------------------------------------------------------------------

async def test_hooks_off_by_default_are_404_and_absent_from_the_openapi(tmp_path: Path) -> None:
    async for ctx in _context(tmp_path):
        assert ctx.settings.test_hooks is False
        transport = httpx.ASGITransport(app=build_management_app(ctx))
        async with httpx.AsyncClient(transport=transport, base_url="http://mgmt", headers={"X-Api-Key": KEY}) as c:
            for path in HOOKS:
                response = await c.post(path, json={"counterPartyAddress": PROVIDER, "offer": OFFER})
                assert response.status_code == 404, response.text
            paths = (await c.get("/management/openapi.json")).json()["paths"]
            assert "/management/v3/contractnegotiations" in paths
            assert not [p for p in paths if "/test/" in p]
        with ctx.sessions() as session:
            assert session.scalars(select(NegotiationRow)).first() is None


# ---- on ---------------------------------------------------------------------------------------------------

async def test_hooks_on_are_in_the_openapi_and_need_the_api_key(
        hooked: tuple[ConnectorContext, httpx.AsyncClient]) -> None:
    _ctx, client = hooked
    paths = (await client.get("/management/openapi.json")).json()["paths"]
    assert all(path in paths and "post" in paths[path] for path in HOOKS)
    for path in HOOKS:
        _problem(await client.post(path, json={}, headers={"X-Api-Key": "wrong"}), 401, "api_key_invalid")


async def test_a_full_offer_starts_a_negotiation_as_consumer(
        hooked: tuple[ConnectorContext, httpx.AsyncClient]) -> None:
    ctx, client = hooked
    offer = {k: v for k, v in OFFER.items() if k != "target"}
    response = await client.post(HOOKS[0], json={"connectorAddress": PROVIDER, "providerId": PROVIDER_DID,
                                                 "offer": offer, "datasetId": "asset-1"},
                                 headers={"X-Correlation-Id": "kit-run-1"})
    assert response.status_code == 200, response.text
    started = response.json()
    assert started["state"] == "REQUESTED" and started["type"] == "CONSUMER"
    assert started["consumerPid"] == started["@id"] and started["counterPartyId"] == PROVIDER_DID
    assert started["assetId"] == "asset-1" and started["offerId"] == OFFER["@id"]
    assert started["correlationId"] == "kit-run-1"
    with ctx.sessions() as session:
        sent = session.scalars(select(OutboxRow).where(OutboxRow.process_id == started["@id"])).one()
    message = json.loads(sent.body)
    assert sent.url == PROVIDER + "/negotiations/request" and sent.recipient_did == PROVIDER_DID
    assert message["@type"] == "ContractRequestMessage" and message["consumerPid"] == started["@id"]
    assert message["offer"]["@id"] == OFFER["@id"] and message["offer"]["target"] == "asset-1"
    assert message["offer"]["assigner"] == PROVIDER_DID
    assert message["callbackAddress"] == ctx.settings.protocol_url
    same = await client.get(f"/management/v3/contractnegotiations/{started['@id']}")
    assert same.json()["state"] == "REQUESTED"


async def test_bad_input_is_a_400_problem_naming_the_field_and_stores_nothing(
        hooked: tuple[ConnectorContext, httpx.AsyncClient]) -> None:
    ctx, client = hooked
    body = _problem(await client.post(HOOKS[0], json={"counterPartyAddress": PROVIDER}), 400, "field_missing")
    assert body["field"] == "datasetId" and "datasetId" in body["detail"]
    unreadable = {"@id": "urn:uuid:o", "target": "asset-1", "permission": "use"}
    body = _problem(await client.post(HOOKS[0], json={"counterPartyAddress": PROVIDER, "counterPartyId": PROVIDER_DID,
                                                      "offer": unreadable}), 400, "field_invalid")
    assert body["field"] == "offer"
    body = _problem(await client.post(HOOKS[0], json={"counterPartyAddress": PROVIDER, "counterPartyId": PROVIDER_DID,
                                                      "offer": OFFER, "datasetId": "asset-2"}), 400, "field_invalid")
    assert body["field"] == "datasetId" and "asset-1" in body["detail"]
    body = _problem(await client.post(HOOKS[1], json={"agreementId": "a1", "format": "S3-PUSH"}), 400,
                    "field_invalid")
    assert body["field"] == "transferType"
    _problem(await client.post(HOOKS[1], content=b"{not json", headers={"Content-Type": "application/json"}), 400,
             "json_invalid")
    with ctx.sessions() as session:
        assert session.scalars(select(NegotiationRow)).first() is None


async def test_an_unknown_agreement_is_404(hooked: tuple[ConnectorContext, httpx.AsyncClient]) -> None:
    _ctx, client = hooked
    body = _problem(await client.post(HOOKS[1], json={"agreementId": "urn:uuid:nope", "transferType": "HttpData-PULL"}),
                    404, "agreement_not_found")
    assert "urn:uuid:nope" in body["detail"]


async def test_an_unreachable_counterparty_is_a_502_problem(hooked: tuple[ConnectorContext, httpx.AsyncClient]) -> None:
    ctx, client = hooked
    gone = f"http://127.0.0.1:{free_port()}/dsp"  # nothing listens there
    body = _problem(await client.post(HOOKS[0], json={"counterPartyAddress": gone, "counterPartyId": PROVIDER_DID,
                                                      "datasetId": "asset-1"}), 502, "counterparty_unreachable")
    assert "catalog/datasets/asset-1" in body["detail"]
    _problem(await client.post(HOOKS[0], json={"counterPartyAddress": gone, "datasetId": "asset-1"}), 502,
             "counterparty_unreachable")  # no DID given: learning it fails the same way
    with ctx.sessions() as session:
        assert session.scalars(select(NegotiationRow)).first() is None
