"""The consumer's process routes of the management API (negotiations, transfers): EDC v3 shapes and errors.

These are the calls an operator (and the negotiation benchmark) makes for every negotiation: start one
from an EDC ContractRequest, query states with a QuerySpec (``id in [...]``), read one, read its state. The
answers are compared field by field with what is stored, so a faster path cannot change a shape unnoticed.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from connector.app import build_management_app
from connector.context import ConnectorContext, build_context
from connector.jsonld import EDC_CONTEXT
from connector.storage.tables_protocol import AgreementRow, NegotiationRow, OutboxRow, TransferRow
from tests.connector.test_management_api import _problem
from tests.connector.test_protocol_support import make_settings

pytestmark = pytest.mark.anyio

KEY = "k"  # make_settings' management key
EDC = {"@vocab": "https://w3id.org/edc/v0.0.1/ns/"}
PROTOCOL = "dataspace-protocol-http:2025-1"
PROVIDER = "http://127.0.0.1:9/dsp"  # never contacted: messages only wait in the outbox
PROVIDER_DID = "did:web:provider.example"
OFFER = {"@id": "Y2Q:YXNzZXQ:0123456789abcdef0123456789abcdef", "@type": "Offer",
         "permission": [{"action": "use", "constraint": [{"leftOperand": "https://w3id.org/catenax/policy/Membership",
                                                          "operator": "eq", "rightOperand": "active"}]}]}
REQUEST = {"@context": EDC, "@type": "ContractRequest", "counterPartyAddress": PROVIDER,
           "counterPartyId": PROVIDER_DID, "protocol": PROTOCOL,
           "policy": {**OFFER, "target": "asset-1", "assigner": PROVIDER_DID}}
NEGOTIATIONS = "/management/v3/contractnegotiations"
TRANSFERS = "/management/v3/transferprocesses"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def consumer(tmp_path: Path) -> AsyncIterator[tuple[ConnectorContext, httpx.AsyncClient]]:
    ctx = build_context(make_settings(tmp_path, limits={"max_body_bytes": 8192, "max_json_depth": 12}))
    try:
        transport = httpx.ASGITransport(app=build_management_app(ctx))
        async with httpx.AsyncClient(transport=transport, base_url="http://mgmt", headers={"X-Api-Key": KEY}) as c:
            yield ctx, c
    finally:
        await ctx.aclose()


def _ms(value: datetime) -> int:
    return int(value.timestamp() * 1000)


def _stored_negotiation(ctx: ConnectorContext, negotiation_id: str) -> NegotiationRow:
    with ctx.sessions() as session:
        row = session.get(NegotiationRow, negotiation_id)
    assert row is not None
    return row


def _count(ctx: ConnectorContext, table: Any) -> int:
    with ctx.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(table)) or 0)


async def _start(client: httpx.AsyncClient, body: dict[str, Any] | None = None, **headers: str) -> str:
    r = await client.post(NEGOTIATIONS, json=body or REQUEST, headers=headers)
    assert r.status_code == 200, r.text
    negotiation_id: str = r.json()["@id"]
    return negotiation_id


# ---- start ------------------------------------------------------------------------------------------------

async def test_a_contract_request_starts_a_negotiation_and_answers_an_id_response(
        consumer: tuple[ConnectorContext, httpx.AsyncClient]) -> None:
    ctx, client = consumer
    r = await client.post(NEGOTIATIONS, json=REQUEST, headers={"X-Correlation-Id": "urn:corr:1"})
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    body = r.json()
    row = _stored_negotiation(ctx, body["@id"])
    assert body == {"@context": EDC_CONTEXT, "@type": "IdResponse", "@id": row.id, "createdAt": _ms(row.created_at)}
    assert (row.role, row.state, row.consumer_pid, row.provider_pid) == ("consumer", "REQUESTED", row.id, None)
    assert (row.counterparty_did, row.counterparty_address, row.offer_id, row.asset_id, row.correlation_id) == (
        PROVIDER_DID, PROVIDER, OFFER["@id"], "asset-1", "urn:corr:1")
    assert json.loads(row.policy or "{}") == {**OFFER, "target": "asset-1", "assigner": PROVIDER_DID}
    with ctx.sessions() as session:
        sent = session.scalars(select(OutboxRow).where(OutboxRow.process_id == row.id)).one()
    assert (sent.message_type, sent.url, sent.recipient_did) == (
        "ContractRequestMessage", PROVIDER + "/negotiations/request", PROVIDER_DID)
    message = json.loads(sent.body)
    assert message["consumerPid"] == row.id and message["offer"]["@id"] == OFFER["@id"]
    assert message["callbackAddress"] == ctx.settings.protocol_url


async def test_the_fields_may_be_prefixed_or_full_iris_and_the_approval_is_kept(
        consumer: tuple[ConnectorContext, httpx.AsyncClient]) -> None:
    ctx, client = consumer
    body = {"@context": EDC, "@type": "ContractRequest", "edc:counterPartyAddress": PROVIDER,
            "https://w3id.org/edc/v0.0.1/ns/counterPartyId": [{"@value": PROVIDER_DID}],
            "approval": "manual", "policy": REQUEST["policy"]}
    row = _stored_negotiation(ctx, await _start(client, body))
    assert (row.counterparty_did, row.approval, row.correlation_id) == (PROVIDER_DID, "manual", row.id)


@pytest.mark.parametrize(("body", "status", "code"), [
    ([REQUEST], 400, "request_invalid"),
    ({**REQUEST, "protocol": "ids-multipart"}, 400, "protocol_unsupported"),
    ({k: v for k, v in REQUEST.items() if k != "counterPartyAddress"}, 400, "address_missing"),
    ({k: v for k, v in REQUEST.items() if k != "policy"}, 400, "policy_missing"),
    ({**REQUEST, "policy": "urn:offer:1"}, 400, "policy_missing"),
    ({**REQUEST, "approval": "later"}, 400, "approval_invalid"),
    ({**REQUEST, "counterPartyAddress": "ftp://provider.example/dsp"}, 400, "callback_invalid"),
    ({**REQUEST, "policy": {**OFFER, "assigner": PROVIDER_DID}}, 400, "offer_incomplete"),
])
async def test_a_bad_contract_request_is_refused_and_nothing_is_stored(
        consumer: tuple[ConnectorContext, httpx.AsyncClient], body: Any, status: int, code: str) -> None:
    ctx, client = consumer
    _problem(await client.post(NEGOTIATIONS, json=body), status, code)
    assert _count(ctx, NegotiationRow) == 0 and _count(ctx, OutboxRow) == 0


async def test_bodies_keys_and_media_types_are_checked_before_anything_else(
        consumer: tuple[ConnectorContext, httpx.AsyncClient]) -> None:
    ctx, client = consumer
    _problem(await client.post(NEGOTIATIONS, content=b"{not json", headers={"Content-Type": "application/json"}),
             400, "json_invalid")
    _problem(await client.post(NEGOTIATIONS, content=b"", headers={"Content-Type": "application/json"}),
             400, "body_missing")
    _problem(await client.post(NEGOTIATIONS, content=b"<x/>", headers={"Content-Type": "application/xml"}),
             415, "unsupported_media_type")
    _problem(await client.post(NEGOTIATIONS, json={**REQUEST, "pad": "x" * 9000}), 413, "body_too_large")
    deep: Any = {}
    for _ in range(12):
        deep = {"x": deep}
    _problem(await client.post(NEGOTIATIONS, json={**REQUEST, "deep": deep}), 400, "json_too_deep")
    _problem(await client.post(NEGOTIATIONS, json=REQUEST, headers={"X-Api-Key": "wrong"}), 401, "api_key_invalid")
    async with httpx.AsyncClient(transport=client._transport, base_url="http://mgmt") as anonymous:
        for path in (NEGOTIATIONS, NEGOTIATIONS + "/request", TRANSFERS, TRANSFERS + "/request"):
            _problem(await anonymous.post(path, json=REQUEST), 401, "api_key_missing")
        _problem(await anonymous.get(NEGOTIATIONS + "/x/state"), 401, "api_key_missing")
        r = await anonymous.post(NEGOTIATIONS, json=REQUEST, headers={"Authorization": f"Bearer {KEY}"})
        assert r.status_code == 200, r.text
    assert _count(ctx, NegotiationRow) == 1


# ---- read and query -----------------------------------------------------------------------------------------

def _expected(row: NegotiationRow) -> dict[str, Any]:
    out = {"@context": EDC_CONTEXT, "@type": "ContractNegotiation", "@id": row.id, "type": row.role.upper(),
           "protocol": PROTOCOL, "state": row.state, "counterPartyId": row.counterparty_did,
           "counterPartyAddress": row.counterparty_address, "consumerPid": row.consumer_pid,
           "providerPid": row.provider_pid, "assetId": row.asset_id, "offerId": row.offer_id,
           "approval": row.approval, "pendingStep": row.pending, "correlationId": row.correlation_id,
           "createdAt": _ms(row.created_at), "stateTimestamp": _ms(row.updated_at),
           "contractAgreementId": row.agreement_id, "errorDetail": row.error_reason,
           "errorCode": row.error_code if row.error_reason else None}
    return {k: v for k, v in out.items() if v is not None}


def _move(ctx: ConnectorContext, negotiation_id: str, **changes: Any) -> None:
    with ctx.sessions.begin() as session:
        row = session.get(NegotiationRow, negotiation_id)
        assert row is not None
        for key, value in changes.items():
            setattr(row, key, value)


async def test_a_negotiation_reads_in_the_edc_shape_with_every_stored_field(
        consumer: tuple[ConnectorContext, httpx.AsyncClient]) -> None:
    ctx, client = consumer
    plain, agreed, failed = [await _start(client) for _ in range(3)]
    _move(ctx, agreed, state="AGREED", provider_pid="urn:uuid:p-1", agreement_id="urn:uuid:a-1", pending="verify",
          updated_at=datetime.now(UTC) + timedelta(seconds=3))
    _move(ctx, failed, state="TERMINATED", error_code="policy_denied", error_reason="the provider said no")
    for negotiation_id in (plain, agreed, failed):
        expected = _expected(_stored_negotiation(ctx, negotiation_id))
        r = await client.get(f"{NEGOTIATIONS}/{negotiation_id}")
        assert r.status_code == 200 and r.headers["content-type"] == "application/json"
        assert r.json() == expected and list(r.json()) == list(expected)
        r = await client.get(f"{NEGOTIATIONS}/{negotiation_id}/state")
        assert r.json() == {"@context": EDC_CONTEXT, "@type": "NegotiationState", "state": expected["state"]}
    assert "errorCode" not in (await client.get(f"{NEGOTIATIONS}/{plain}")).json()
    for suffix in ("", "/state"):
        _problem(await client.get(f"{NEGOTIATIONS}/urn:uuid:nothing{suffix}"), 404, "negotiation_not_found")


def _query(*criteria: tuple[str, str, Any], **spec: Any) -> dict[str, Any]:
    return {"@context": EDC, "@type": "QuerySpec", **spec, "filterExpression": [
        {"operandLeft": left, "operator": op, "operandRight": right} for left, op, right in criteria]}


async def test_a_query_spec_selects_sorts_and_pages_negotiations(
        consumer: tuple[ConnectorContext, httpx.AsyncClient]) -> None:
    ctx, client = consumer
    ids = [await _start(client) for _ in range(12)]
    _move(ctx, ids[3], state="FINALIZED", agreement_id="urn:uuid:a-3")
    _move(ctx, ids[5], state="TERMINATED", error_code="x", error_reason="refused")

    async def query(body: Any) -> list[dict[str, Any]]:
        r = await client.post(NEGOTIATIONS + "/request", json=body)
        assert r.status_code == 200 and r.headers["content-type"] == "application/json", r.text
        found: list[dict[str, Any]] = r.json()
        return found

    wanted = ids[:10]
    found = await query(_query(("id", "in", wanted), limit=10))
    assert [n["@id"] for n in found] == sorted(wanted)
    assert found == [_expected(_stored_negotiation(ctx, n["@id"])) for n in found]
    assert [n["@id"] for n in await query(_query(("id", "in", [ids[0]])))] == [ids[0]]
    assert [n["@id"] for n in await query(_query(("id", "=", ids[1])))] == [ids[1]]
    assert [n["@id"] for n in await query(_query(("edc:id", "in", wanted), limit=3, offset=2))] == sorted(wanted)[2:5]
    assert [n["state"] for n in await query(_query(("state", "in", ["FINALIZED", "TERMINATED"]),
                                                   sortField="state", sortOrder="DESC"))] == ["TERMINATED", "FINALIZED"]
    assert len(await query(_query(("type", "=", "CONSUMER")))) == 12
    assert await query(_query(("type", "=", "PROVIDER"))) == []
    assert [n["@id"] for n in await query(_query(("contractAgreementId", "=", "urn:uuid:a-3")))] == [ids[3]]
    assert [n["@id"] for n in await query(_query(("counterPartyId", "like", "did:web:provider%"),
                                                 ("id", "in", ids[:2])))] == sorted(ids[:2])
    assert [n["@id"] for n in await query({"@context": EDC, "@type": "QuerySpec", "limit": 3})] == sorted(ids)[:3]
    everything = await client.post(NEGOTIATIONS + "/request")  # no body: the first page, unfiltered
    assert [n["@id"] for n in everything.json()] == sorted(ids)
    assert await query(_query(("id", "in", ["urn:uuid:unknown"]))) == []


@pytest.mark.parametrize(("body", "code"), [
    (_query(("nothing", "=", "x")), "query_field_unknown"),
    (_query(("id", "~", "x")), "query_operator_unknown"),
    (_query(("id", "in", []), limit=3), "query_criterion_invalid"),
    (_query(("id", "=", {"a": 1})), "query_criterion_invalid"),
    (_query(sortField="nothing"), "query_sort_invalid"),
    (_query(sortOrder="UP"), "query_sort_invalid"),
    (_query(limit=0), "query_paging_invalid"),
    (_query(offset=-1), "query_paging_invalid"),
    ({"@context": EDC, "@type": "ContractRequest"}, "type_mismatch"),
    ([], "body_invalid"),
])
async def test_a_bad_query_spec_is_a_clear_400(consumer: tuple[ConnectorContext, httpx.AsyncClient], body: Any,
                                               code: str) -> None:
    _, client = consumer
    for base in (NEGOTIATIONS, TRANSFERS):
        _problem(await client.post(base + "/request", json=body), 400, code)


# ---- transfers ----------------------------------------------------------------------------------------------

def _transfer(ctx: ConnectorContext, number: int, **fields: Any) -> TransferRow:
    now = datetime.now(UTC)
    values: dict[str, Any] = {
        "id": f"urn:uuid:t-{number:02d}", "role": "consumer", "state": "REQUESTED",
        "consumer_pid": f"urn:uuid:t-{number:02d}",
        "provider_pid": None, "agreement_id": "urn:uuid:a-1", "transfer_type": "HttpData-PULL",
        "counterparty_did": PROVIDER_DID, "counterparty_address": PROVIDER, "approval": "auto",
        "request": json.dumps(None), "correlation_id": f"urn:corr:{number}", "created_at": now,
        "updated_at": now + timedelta(milliseconds=number), **fields}
    with ctx.sessions.begin() as session:
        session.add(TransferRow(**values))
    with ctx.sessions() as session:
        row = session.get(TransferRow, values["id"])
    assert row is not None
    return row


def _expected_transfer(row: TransferRow) -> dict[str, Any]:
    out = {"@context": EDC_CONTEXT, "@type": "TransferProcess", "@id": row.id, "type": row.role.upper(),
           "protocol": PROTOCOL, "state": row.state, "contractId": row.agreement_id,
           "transferType": row.transfer_type, "counterPartyId": row.counterparty_did,
           "counterPartyAddress": row.counterparty_address, "consumerPid": row.consumer_pid,
           "providerPid": row.provider_pid, "approval": row.approval, "pendingStep": row.pending,
           "correlationId": row.correlation_id, "createdAt": _ms(row.created_at),
           "stateTimestamp": _ms(row.updated_at),
           "dataDestination": json.loads(row.request) if row.request and json.loads(row.request) else None,
           "errorDetail": row.error_reason, "errorCode": row.error_code if row.error_reason else None}
    return {k: v for k, v in out.items() if v is not None}


async def test_transfer_processes_read_and_query_in_the_edc_shape(
        consumer: tuple[ConnectorContext, httpx.AsyncClient]) -> None:
    ctx, client = consumer
    rows = [_transfer(ctx, 0), _transfer(ctx, 1, state="STARTED", provider_pid="urn:uuid:p-1", pending="complete"),
            _transfer(ctx, 2, transfer_type="HttpData-PUSH", request=json.dumps({"type": "HttpData",
                                                                                "baseUrl": "http://sink.example"})),
            _transfer(ctx, 3, state="TERMINATED", error_code="refused", error_reason="no", role="provider")]
    for row in rows:
        expected = _expected_transfer(row)
        r = await client.get(f"{TRANSFERS}/{row.id}")
        assert r.status_code == 200 and r.json() == expected and list(r.json()) == list(expected)
        r = await client.get(f"{TRANSFERS}/{row.id}/state")
        assert r.json() == {"@context": EDC_CONTEXT, "@type": "TransferState", "state": row.state}
    found = (await client.post(TRANSFERS + "/request", json=_query(("id", "in", [r.id for r in rows[:3]])))).json()
    assert found == [_expected_transfer(r) for r in rows[:3]]
    found = (await client.post(TRANSFERS + "/request", json=_query(("type", "=", "PROVIDER")))).json()
    assert [t["@id"] for t in found] == [rows[3].id]
    found = (await client.post(TRANSFERS + "/request", json=_query(("contractId", "=", "urn:uuid:a-1"),
                                                                   sortField="createdAt", sortOrder="DESC",
                                                                   limit=2))).json()
    assert [t["@id"] for t in found] == [rows[3].id, rows[2].id]
    for suffix in ("", "/state"):
        _problem(await client.get(f"{TRANSFERS}/urn:uuid:nothing{suffix}"), 404, "transfer_not_found")


TRANSFER = {"@context": EDC, "@type": "TransferRequest", "contractId": "urn:uuid:a-1",
            "transferType": "HttpData-PULL", "counterPartyAddress": PROVIDER, "protocol": PROTOCOL}


@pytest.mark.parametrize(("body", "status", "code"), [
    ([TRANSFER], 400, "request_invalid"),
    ({**TRANSFER, "protocol": "ids"}, 400, "protocol_unsupported"),
    ({k: v for k, v in TRANSFER.items() if k != "contractId"}, 400, "contract_missing"),
    ({k: v for k, v in TRANSFER.items() if k != "transferType"}, 400, "transfer_type_missing"),
    ({**TRANSFER, "dataDestination": "http://sink"}, 400, "destination_invalid"),
    ({**TRANSFER, "approval": "never"}, 400, "approval_invalid"),
    ({**TRANSFER, "purpose": 7}, 400, "purpose_invalid"),
    ({**TRANSFER, "transferType": "Ftp-PUSH"}, 400, "transfer_type_unsupported"),
    (TRANSFER, 404, "agreement_not_found"),
])
async def test_a_bad_transfer_request_is_refused_and_nothing_is_stored(
        consumer: tuple[ConnectorContext, httpx.AsyncClient], body: Any, status: int, code: str) -> None:
    ctx, client = consumer
    _problem(await client.post(TRANSFERS, json=body), status, code)
    assert _count(ctx, TransferRow) == 0 and _count(ctx, OutboxRow) == 0


async def test_a_transfer_request_under_a_finalized_agreement_starts_a_transfer(
        consumer: tuple[ConnectorContext, httpx.AsyncClient]) -> None:
    ctx, client = consumer
    negotiation_id = await _start(client)
    _move(ctx, negotiation_id, state="FINALIZED", agreement_id="urn:uuid:a-1", provider_pid="urn:uuid:p-1")
    with ctx.sessions.begin() as session:
        session.add(AgreementRow(id="urn:uuid:a-1", negotiation_id=negotiation_id, role="consumer",
                                 asset_id="asset-1", assigner=PROVIDER_DID, assignee=ctx.did,
                                 policy=json.dumps(OFFER), policy_hash="0" * 64, signed_at=datetime.now(UTC),
                                 counterparty_address=PROVIDER, counterparty_did=PROVIDER_DID))
    r = await client.post(TRANSFERS, json=TRANSFER, headers={"X-Correlation-Id": "urn:corr:t"})
    assert r.status_code == 200, r.text
    with ctx.sessions() as session:
        row = session.get(TransferRow, r.json()["@id"])
    assert row is not None and (row.state, row.correlation_id, row.agreement_id) == (
        "REQUESTED", "urn:corr:t", "urn:uuid:a-1")
    assert r.json() == {"@context": EDC_CONTEXT, "@type": "IdResponse", "@id": row.id,
                        "createdAt": _ms(row.created_at)}


def _nested(levels: int) -> Any:
    value: Any = "leaf"
    for _ in range(levels):
        value = {"x": value}
    return value


async def test_the_depth_limit_holds_exactly_whether_or_not_the_body_is_walked(
        consumer: tuple[ConnectorContext, httpx.AsyncClient]) -> None:
    """Limit 12: the query body itself is level 1, so a value nested 11 deeper is the most allowed."""
    _, client = consumer
    query = NEGOTIATIONS + "/request"
    accepted = await client.post(query, json={**_query(), "note": _nested(11)})
    assert accepted.status_code == 200, accepted.text
    _problem(await client.post(query, json={**_query(), "note": _nested(12)}), 400, "json_too_deep")
    lists: Any = []
    for _ in range(12):
        lists = [lists]
    _problem(await client.post(query, json=lists), 400, "json_too_deep")  # 13 levels of arrays
    brackets_in_strings = await client.post(query, json={**_query(), "note": "{[" * 40})
    assert brackets_in_strings.status_code == 200, brackets_in_strings.text
    shallow_but_many = await client.post(query, json={**_query(), "notes": [[{}] for _ in range(20)]})
    assert shallow_but_many.status_code == 200, shallow_but_many.text
