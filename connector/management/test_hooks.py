"""Test-only hooks (``test_hooks = true``): a conformance kit makes this connector start a process as consumer.

WHY: a DSP conformance kit (e.g. the Eclipse Dataspace TCK) plays the provider and must make the connector
under test send the first ``ContractRequestMessage`` or ``TransferRequestMessage``. The TCK does that by
POSTing plain JSON to two configurable webhooks (``negotiation.initiate.url``: ``providerId``, ``offerId``,
``datasetId``, ``connectorAddress``; ``transfer.initiate.url``: ``providerId``, ``agreementId``, ``format``,
``connectorAddress``) and then follows the processes over DSP. These routes are those webhooks:

* ``POST /management/test/negotiations``: counterparty address (and DID, else learned from its DSP version
  metadata) plus either a full ``offer`` or a ``datasetId`` whose first offer (or the one named ``offerId``)
  is fetched from the counterparty's catalog;
* ``POST /management/test/transfers``: agreement id, transfer type, optional data destination.

Each answers 200 with the new process (id, pids, state) as the management API shows it. The work is done by
the existing consumer entry points (``negotiation.start_negotiation``, ``transfer.start_transfer``, the
catalog client's ``request_dataset``); the hooks only read the kit's body. They are mounted (and appear in
the OpenAPI document) only when ``test_hooks`` is on, behind the same API key as the rest of the API.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from connector import jsonld
from connector import negotiation as neg
from connector import transfer as tp
from connector.errors import ConnectorError, NotFoundError
from connector.http_errors import problem_response
from connector.logs import correlation
from connector.management.agreements import get_agreement
from connector.management.catalog_requests import CounterpartyError, request_correlation_id, request_dataset
from connector.management.common import read_json_body, require_api_key
from connector.management.negotiations import PROTOCOLS, negotiation_json, normalise_policy
from connector.management.openapi import json_body
from connector.management.transfers import transfer_json
from connector.protocol.errors import MessageInvalid
from connector.storage.tables_protocol import NegotiationRow, TransferRow
from policies.errors import PolicyError

if TYPE_CHECKING:
    from connector.context import ConnectorContext

BASE = "/test"
APPROVALS = ("auto", "manual")
# the kit may use either spelling: Pactum's (EDC management API) name or the TCK webhook's name
NEGOTIATION_FIELDS = {"counterPartyAddress": "connectorAddress", "counterPartyId": "providerId", "offer": None,
                      "datasetId": None, "offerId": None, "approval": None, "protocol": None}
TRANSFER_FIELDS = {"agreementId": "contractId", "transferType": "format", "counterPartyAddress": "connectorAddress",
                   "counterPartyId": "providerId", "dataDestination": None, "purpose": None, "approval": None,
                   "protocol": None}
IGNORED = frozenset({"@context", "@type"})  # a kit sending JSON-LD-looking bodies is not refused for these


class HookInputInvalid(ConnectorError):
    """A hook body field is missing or wrong; ``field`` names it (also in the problem body)."""

    code = "field_invalid"
    status = 400

    def __init__(self, field: str, message: str, *, code: str | None = None) -> None:
        super().__init__(f"{field}: {message}", code=code)
        self.field = field


@dataclass(frozen=True)
class NegotiationHook:
    """What the kit asked for: with ``offer`` None, the offer comes from the counterparty's catalog."""

    counterparty_address: str
    counterparty_did: str | None
    offer: dict[str, Any] | None
    dataset_id: str | None
    offer_id: str | None
    approval: str | None


@dataclass(frozen=True)
class TransferHook:
    agreement_id: str
    transfer_type: str
    counterparty_address: str | None
    counterparty_did: str | None
    data_destination: dict[str, Any] | None
    purpose: str | None
    approval: str | None


# ------------------------------------------------------------------------------------------ reading bodies


def _fields(body: Any, known: Mapping[str, str | None]) -> dict[str, Any]:
    """The body's fields under their canonical names; unknown fields and a field given twice are refused."""
    if not isinstance(body, dict):
        raise HookInputInvalid("body", "must be one JSON object", code="body_invalid")
    aliases: dict[str, str] = {alias: canonical for canonical, alias in known.items() if alias is not None}
    found: dict[str, Any] = {}
    for key, value in body.items():
        if key in IGNORED:
            continue
        name = str(aliases.get(key, key))
        if name not in known:
            raise HookInputInvalid(key, f"unknown field; this hook reads {', '.join(sorted(known))}",
                                   code="field_unknown")
        if name in found:
            raise HookInputInvalid(name, f"given twice (as {name} and {known[name]}); send one",
                                   code="field_conflict")
        found[name] = value
    return found


def _text(fields: Mapping[str, Any], name: str, *, required: bool = False) -> str | None:
    value = fields.get(name)
    if value is None:
        if required:
            raise HookInputInvalid(name, "is required", code="field_missing")
        return None
    if not isinstance(value, str) or not value.strip():
        raise HookInputInvalid(name, "must be a non-empty string")
    return value.strip()


def _address(fields: Mapping[str, Any], *, required: bool) -> str | None:
    address = _text(fields, "counterPartyAddress", required=required)
    if address is None:
        return None
    parts = urlsplit(address)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.username or parts.password:
        raise HookInputInvalid("counterPartyAddress", f"{address[:200]!r} is not the counterparty's absolute "
                               "http(s) DSP URL")
    return address.rstrip("/")


def _did(fields: Mapping[str, Any]) -> str | None:
    did = _text(fields, "counterPartyId")
    if did is not None and not did.startswith("did:"):
        raise HookInputInvalid("counterPartyId", f"{did[:200]!r} is not a DID (leave it out to learn the "
                               "counterparty's DID from its DSP version metadata)")
    return did


def _check_protocol(fields: Mapping[str, Any]) -> None:
    """``protocol`` may be given (EDC clients send it) but only DSP 2025-1 is spoken."""
    protocol = fields.get("protocol")
    if protocol is not None and protocol not in PROTOCOLS:
        raise HookInputInvalid("protocol", f"{str(protocol)[:100]!r} is not supported; use {PROTOCOLS[0]}")


def _approval(fields: Mapping[str, Any]) -> str | None:
    approval = fields.get("approval")
    if approval is not None and approval not in APPROVALS:
        raise HookInputInvalid("approval", f"must be {' or '.join(APPROVALS)}")
    return approval


def read_negotiation_hook(body: Any) -> NegotiationHook:
    """The negotiation hook's body, checked field by field (pure: no I/O)."""
    fields = _fields(body, NEGOTIATION_FIELDS)
    _check_protocol(fields)
    offer = fields.get("offer")
    if offer is not None and not isinstance(offer, dict):
        raise HookInputInvalid("offer", "must be an ODRL offer object as the counterparty's catalog shows it")
    dataset_id = _text(fields, "datasetId")
    offer_id = _text(fields, "offerId")
    if offer is None and dataset_id is None:
        raise HookInputInvalid("datasetId", "is required unless a full 'offer' is given", code="field_missing")
    if offer is not None and offer_id is not None and offer.get("@id") not in (None, offer_id):
        raise HookInputInvalid("offerId", f"{offer_id!r} differs from the given offer's @id {offer.get('@id')!r}")
    return NegotiationHook(counterparty_address=str(_address(fields, required=True)), counterparty_did=_did(fields),
                           offer=offer, dataset_id=dataset_id, offer_id=offer_id, approval=_approval(fields))


def read_transfer_hook(body: Any) -> TransferHook:
    """The transfer hook's body, checked field by field (pure: no I/O)."""
    fields = _fields(body, TRANSFER_FIELDS)
    _check_protocol(fields)
    agreement_id = str(_text(fields, "agreementId", required=True))
    transfer_type = str(_text(fields, "transferType", required=True))
    if transfer_type not in tp.TRANSFER_TYPES:
        raise HookInputInvalid("transferType", f"{transfer_type[:100]!r} is not supported; use "
                               f"{' or '.join(tp.TRANSFER_TYPES)}")
    destination = fields.get("dataDestination")
    if destination is not None and not isinstance(destination, dict):
        raise HookInputInvalid("dataDestination", "must be a DataAddress object")
    return TransferHook(agreement_id=agreement_id, transfer_type=transfer_type,
                        counterparty_address=_address(fields, required=False), counterparty_did=_did(fields),
                        data_destination=destination, purpose=_text(fields, "purpose"), approval=_approval(fields))


# ------------------------------------------------------------------------------------------ offers


def offer_in_dataset(dataset: Mapping[str, Any], offer_id: str | None) -> dict[str, Any]:
    """The dataset's offer named ``offer_id``, or its first; 404 when there is none (pure)."""
    policies = dataset.get("hasPolicy", dataset.get("odrl:hasPolicy", []))
    offers = [p for p in (policies if isinstance(policies, list) else [policies]) if isinstance(p, dict)]
    name = dataset.get("@id")
    if not offers:
        raise NotFoundError(f"dataset {name!r} has no offer in the counterparty's catalog", code="offer_not_found")
    if offer_id is None:
        return dict(offers[0])
    for offer in offers:
        if offer.get("@id") == offer_id:
            return dict(offer)
    shown = ", ".join(repr(o.get("@id")) for o in offers[:5])
    raise NotFoundError(f"offerId: dataset {name!r} has no offer {offer_id!r} (it offers {shown})",
                        code="offer_not_found")


def _as_request_offer(offer: Mapping[str, Any], dataset_id: str | None, assigner: str) -> dict[str, Any]:
    """The offer as ``start_negotiation`` takes it: DSP compact form with ``target`` and ``assigner``."""
    given = dict(offer)
    if dataset_id is not None and not (given.get("target") or given.get("odrl:target")):
        given["target"] = dataset_id
    if not (given.get("assigner") or given.get("odrl:assigner")):
        given["assigner"] = assigner
    return normalise_policy(given)


async def _fetch_offer(ctx: ConnectorContext, hook: NegotiationHook, did: str) -> dict[str, Any]:
    """The offer from the counterparty's catalog (the same signed DSP dataset request as the management API)."""
    assert hook.dataset_id is not None
    node = {"@id": hook.dataset_id, jsonld.EDC + "counterPartyAddress": [{"@value": hook.counterparty_address}],
            jsonld.EDC + "counterPartyId": [{"@value": did}]}
    dataset = await request_dataset(ctx, node)
    offer = offer_in_dataset(dataset, hook.offer_id)
    try:
        return _as_request_offer(offer, hook.dataset_id, did)
    except (ConnectorError, PolicyError) as exc:
        raise CounterpartyError(f"the counterparty's offer {offer.get('@id')!r} cannot be used: {exc}",
                                code="counterparty_answer_invalid") from exc


def _given_offer(hook: NegotiationHook, did: str) -> dict[str, Any]:
    assert hook.offer is not None
    try:
        offer = _as_request_offer(hook.offer, hook.dataset_id, did)
    except (ConnectorError, PolicyError) as exc:
        raise HookInputInvalid("offer", str(exc)) from exc
    if hook.dataset_id is not None and offer.get("target") != hook.dataset_id:
        raise HookInputInvalid("datasetId", f"{hook.dataset_id!r} differs from the offer's target "
                               f"{offer.get('target')!r}")
    if not offer.get("target"):
        raise HookInputInvalid("datasetId", "is required when the offer has no 'target'", code="field_missing")
    return offer


# ------------------------------------------------------------------------------------------ starting processes


async def start_negotiation_hook(ctx: ConnectorContext, hook: NegotiationHook,
                                 correlation_id: str | None = None) -> NegotiationRow:
    """Start a negotiation as consumer for the kit (DID discovered and offer fetched when not given)."""
    did = hook.counterparty_did or await ctx.trust.discover_did(hook.counterparty_address)
    offer = _given_offer(hook, did) if hook.offer is not None else await _fetch_offer(ctx, hook, did)
    try:
        return await run_in_threadpool(lambda: neg.start_negotiation(
            ctx, counterparty_address=hook.counterparty_address, counterparty_did=did, offer=offer,
            approval=hook.approval, correlation_id=correlation_id))
    except MessageInvalid as exc:  # the address is checked already: what the DSP schema refused is the offer
        if hook.offer is not None:
            raise HookInputInvalid("offer", str(exc)) from exc
        raise CounterpartyError(f"the counterparty's offer {offer.get('@id')!r} cannot be requested: {exc}",
                                code="counterparty_answer_invalid") from exc


def start_transfer_hook(ctx: ConnectorContext, hook: TransferHook, correlation_id: str | None = None) -> TransferRow:
    """Start a transfer as consumer for the kit under one of our agreements (404 when it is unknown)."""
    agreement = get_agreement(ctx, hook.agreement_id)
    if hook.counterparty_did is not None and agreement.counterparty_did != hook.counterparty_did:
        raise HookInputInvalid("counterPartyId", f"agreement {hook.agreement_id!r} was made with "
                               f"{agreement.counterparty_did}, not {hook.counterparty_did}",
                               code="counterparty_mismatch")
    return tp.start_transfer(ctx, agreement_id=hook.agreement_id, counterparty_address=hook.counterparty_address,
                             transfer_type=hook.transfer_type, data_destination=hook.data_destination,
                             approval=hook.approval, correlation_id=correlation_id, purpose=hook.purpose)


# ------------------------------------------------------------------------------------------ routes

NEGOTIATION_BODY: dict[str, Any] = {
    "schema": {"type": "object", "properties": {
        "counterPartyAddress": {"type": "string", "description": "the counterparty's DSP URL (TCK: connectorAddress)"},
        "counterPartyId": {"type": "string", "description": "its DID (TCK: providerId); learned when left out"},
        "offer": {"type": "object", "description": "a full offer; else the offer comes from the catalog"},
        "datasetId": {"type": "string"}, "offerId": {"type": "string"},
        "approval": {"type": "string", "enum": list(APPROVALS)}}, "required": ["counterPartyAddress"]},
    "example": {"counterPartyAddress": "https://provider.example/dsp", "counterPartyId": "did:web:provider.example",
                "datasetId": "asset-1"},
}
TRANSFER_BODY: dict[str, Any] = {
    "schema": {"type": "object", "properties": {
        "agreementId": {"type": "string", "description": "TCK: agreementId; EDC: contractId"},
        "transferType": {"type": "string", "enum": list(tp.TRANSFER_TYPES), "description": "TCK: format"},
        "counterPartyAddress": {"type": "string"}, "counterPartyId": {"type": "string"},
        "dataDestination": {"type": "object"}, "purpose": {"type": "string"},
        "approval": {"type": "string", "enum": list(APPROVALS)}}, "required": ["agreementId", "transferType"]},
    "example": {"agreementId": "urn:uuid:0d0c1a3e-agreement", "transferType": "HttpData-PULL"},
}


def _invalid(exc: HookInputInvalid) -> JSONResponse:
    return problem_response(exc.status, exc.code, str(exc), field=exc.field)


def create_router(ctx: ConnectorContext) -> APIRouter:
    """The two hooks; ``connector.management`` includes this only when ``settings.test_hooks`` is on."""
    router = APIRouter(tags=["test hooks (test_hooks = true only)"],
                       dependencies=[Depends(require_api_key(ctx.settings))])

    @router.post(BASE + "/negotiations", summary="TEST ONLY: start a negotiation as consumer",
                 openapi_extra=json_body(NEGOTIATION_BODY))
    async def negotiation_hook(request: Request) -> JSONResponse:
        try:
            hook = read_negotiation_hook(await read_json_body(request, ctx.settings))
            correlation_id = request_correlation_id(request)
            with correlation(correlation_id):
                row = await start_negotiation_hook(ctx, hook, correlation_id)
        except HookInputInvalid as exc:
            return _invalid(exc)
        return JSONResponse(negotiation_json(row))

    @router.post(BASE + "/transfers", summary="TEST ONLY: start a transfer as consumer",
                 openapi_extra=json_body(TRANSFER_BODY))
    async def transfer_hook(request: Request) -> JSONResponse:
        try:
            hook = read_transfer_hook(await read_json_body(request, ctx.settings))
            correlation_id = request_correlation_id(request)
            with correlation(correlation_id):
                row = await run_in_threadpool(start_transfer_hook, ctx, hook, correlation_id)
        except HookInputInvalid as exc:
            return _invalid(exc)
        return JSONResponse(transfer_json(row))

    return router


__all__ = ["HookInputInvalid", "NegotiationHook", "TransferHook", "create_router", "offer_in_dataset",
           "read_negotiation_hook", "read_transfer_hook", "start_negotiation_hook", "start_transfer_hook"]
