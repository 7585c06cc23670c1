"""``/v3/contractnegotiations``: start, read, query, step and terminate negotiations (EDC v3 shapes).

Creating one starts a negotiation as consumer from an EDC ``ContractRequest``; the operator's steps
(``offer``, ``agree``, ``accept``, ``verify``, ``finalize``, ``terminate``) drive a negotiation in ``manual``
approval, and a step not possible now answers 409 listing the steps that are.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from sqlalchemy import select

from connector import negotiation as neg
from connector.errors import ConnectorError
from connector.jsonld import EDC, EDC_CONTEXT
from connector.management.common import read_json_body, read_query_spec, require_api_key
from connector.policy_gate import parse_offer, policy_to_jsonld
from connector.querying import QuerySpec, apply_query
from connector.storage.tables_protocol import NegotiationRow

if TYPE_CHECKING:
    from connector.context import ConnectorContext

_C = NegotiationRow.__table__.c  # plain columns, as the QuerySpec translation expects
BASE = "/v3/contractnegotiations"
PROTOCOL = "dataspace-protocol-http:2025-1"
PROTOCOLS = (PROTOCOL, "dataspace-protocol-http")
STEPS = ("offer", "agree", "accept", "verify", "finalize", "terminate")


class RequestInvalid(ConnectorError):
    code = "request_invalid"
    status = 400


def field(body: Mapping[str, Any], name: str) -> Any:
    """A field given bare, ``edc:``-prefixed or as a full EDC IRI."""
    for key in (name, f"edc:{name}", EDC + name):
        if key in body:
            value = body[key]
            if isinstance(value, list) and len(value) == 1:
                value = value[0]
            if isinstance(value, dict) and set(value) == {"@value"}:
                value = value["@value"]
            return value
    return None


def epoch_ms(row: NegotiationRow) -> int:
    return int(row.created_at.timestamp() * 1000)


def negotiation_json(row: NegotiationRow) -> dict[str, Any]:
    """EDC's ContractNegotiation shape (plus both pids and the pending operator step)."""
    out: dict[str, Any] = {
        "@context": dict(EDC_CONTEXT), "@type": "ContractNegotiation", "@id": row.id,
        "type": row.role.upper(), "protocol": PROTOCOL, "state": row.state,
        "counterPartyId": row.counterparty_did, "counterPartyAddress": row.counterparty_address,
        "consumerPid": row.consumer_pid, "providerPid": row.provider_pid, "assetId": row.asset_id,
        "offerId": row.offer_id, "approval": row.approval, "pendingStep": row.pending,
        "correlationId": row.correlation_id, "createdAt": epoch_ms(row),
        "stateTimestamp": int(row.updated_at.timestamp() * 1000),
    }
    if row.agreement_id:
        out["contractAgreementId"] = row.agreement_id
    if row.error_reason:
        out["errorDetail"] = row.error_reason
        out["errorCode"] = row.error_code
    return {k: v for k, v in out.items() if v is not None}


def normalise_policy(policy: Any) -> dict[str, Any]:
    """The offer in DSP compact form; an ODRL/EDC JSON-LD policy is read by the policy engine first."""
    if not isinstance(policy, dict):
        raise RequestInvalid("a ContractRequest needs 'policy': the offer (ODRL) as in the provider's catalog",
                             code="policy_missing")
    target = field(policy, "target") or policy.get("odrl:target")
    if isinstance(target, dict):
        target = target.get("@id")
    offer_id = policy.get("@id")
    if not offer_id:  # a counter-offer written by an operator may leave the id to us
        offer_id = f"urn:uuid:{uuid.uuid4()}"
        policy = {**policy, "@id": offer_id}
    if "@context" in policy and policy["@context"] not in (
            ["https://w3id.org/dspace/2025/1/context.jsonld"], "https://w3id.org/dspace/2025/1/context.jsonld"):
        from policies import parse_policy
        from policies.errors import PolicyError

        try:
            parsed = parse_policy(policy, format="json-ld")
        except PolicyError as exc:
            raise RequestInvalid(f"the policy cannot be read: {exc}", code="policy_invalid") from exc
        compact = policy_to_jsonld(parsed)
        compact["@type"] = "Offer"
        offer = compact
    else:
        offer = {k: v for k, v in policy.items() if k != "@context"}
        offer["@type"] = "Offer"
    if offer_id:
        offer["@id"] = offer_id
    if target:
        offer["target"] = target
    assigner = policy.get("assigner") or policy.get("odrl:assigner")
    if isinstance(assigner, dict):
        assigner = assigner.get("@id")
    if assigner:
        offer["assigner"] = assigner
    parse_offer(offer)
    return offer


NEGOTIATION_COLUMNS = {
    "id": _C.id, "state": _C.state, "type": _C.role,
    "counterPartyId": _C.counterparty_did, "counterPartyAddress": _C.counterparty_address,
    "contractAgreementId": _C.agreement_id, "assetId": _C.asset_id,
    "consumerPid": _C.consumer_pid, "providerPid": _C.provider_pid,
    "createdAt": _C.created_at, "correlationId": _C.correlation_id,
}


def query_negotiations(ctx: ConnectorContext, spec: QuerySpec) -> list[NegotiationRow]:
    columns = {k: v for k, v in NEGOTIATION_COLUMNS.items()}
    spec_filters = tuple(
        type(c)(c.left, c.operator, c.right.lower() if c.left in ("type", "edc:type") and isinstance(c.right, str)
                else c.right) for c in spec.filters)
    spec = QuerySpec(spec_filters, spec.sort_field, spec.sort_order, spec.offset, spec.limit, spec.extra)
    with ctx.sessions() as session:
        stmt = apply_query(select(NegotiationRow), spec, columns, default_sort=_C.id)
        return list(session.scalars(stmt))


def create_router(ctx: ConnectorContext) -> APIRouter:
    router = APIRouter(tags=["contract negotiations"], dependencies=[Depends(require_api_key(ctx.settings))])

    @router.post(BASE, summary="Start a contract negotiation as consumer (EDC ContractRequest)")
    async def create(request: Request) -> JSONResponse:
        body = await read_json_body(request, ctx.settings)
        if not isinstance(body, dict):
            raise RequestInvalid("the body must be a ContractRequest object")
        address = field(body, "counterPartyAddress")
        protocol = field(body, "protocol") or PROTOCOL
        if protocol not in PROTOCOLS:
            raise RequestInvalid(f"protocol {protocol!r} is not supported; use {PROTOCOL}", code="protocol_unsupported")
        if not isinstance(address, str):
            raise RequestInvalid("a ContractRequest needs 'counterPartyAddress'", code="address_missing")
        offer = normalise_policy(field(body, "policy"))
        counterparty = field(body, "counterPartyId") or offer.get("assigner")
        if not isinstance(counterparty, str) or not counterparty.startswith("did:"):
            counterparty = await ctx.trust.discover_did(address)
        approval = field(body, "approval")
        if approval not in (None, "auto", "manual"):
            raise RequestInvalid("approval must be 'auto' or 'manual'", code="approval_invalid")
        row = await run_in_threadpool(lambda: neg.start_negotiation(
            ctx, counterparty_address=address, counterparty_did=counterparty, offer=offer, approval=approval,
            correlation_id=request.headers.get("X-Correlation-Id")))
        return JSONResponse({"@context": dict(EDC_CONTEXT), "@type": "IdResponse", "@id": row.id,
                             "createdAt": epoch_ms(row)})

    @router.post(BASE + "/offers", summary="Offer a contract to a consumer (provider-initiated negotiation)")
    async def offer(request: Request) -> JSONResponse:
        body = await read_json_body(request, ctx.settings)
        if not isinstance(body, dict):
            raise RequestInvalid("the body must be a ContractOffer object")
        address = field(body, "counterPartyAddress")
        if not isinstance(address, str):
            raise RequestInvalid("a ContractOffer needs 'counterPartyAddress'", code="address_missing")
        policy = normalise_policy(field(body, "policy"))
        counterparty = field(body, "counterPartyId")
        if not isinstance(counterparty, str) or not counterparty.startswith("did:"):
            counterparty = await ctx.trust.discover_did(address)
        row = await run_in_threadpool(lambda: neg.offer_to(
            ctx, counterparty_address=address, counterparty_did=counterparty, offer=policy,
            correlation_id=request.headers.get("X-Correlation-Id")))
        return JSONResponse({"@context": dict(EDC_CONTEXT), "@type": "IdResponse", "@id": row.id,
                             "createdAt": epoch_ms(row)})

    @router.post(BASE + "/request", summary="Query negotiations with a QuerySpec")
    async def query(request: Request) -> JSONResponse:
        spec = await read_query_spec(request, ctx.settings)
        rows = await run_in_threadpool(query_negotiations, ctx, spec)
        return JSONResponse([negotiation_json(r) for r in rows])

    @router.get(BASE + "/{negotiation_id}", summary="Get a negotiation")
    async def get(negotiation_id: str) -> JSONResponse:
        row = await run_in_threadpool(neg.get_negotiation, ctx, negotiation_id)
        return JSONResponse(negotiation_json(row))

    @router.get(BASE + "/{negotiation_id}/state", summary="Get a negotiation's state")
    async def state(negotiation_id: str) -> JSONResponse:
        row = await run_in_threadpool(neg.get_negotiation, ctx, negotiation_id)
        return JSONResponse({"@context": dict(EDC_CONTEXT), "@type": "NegotiationState", "state": row.state})

    @router.get(BASE + "/{negotiation_id}/agreement", summary="The agreement of a negotiation")
    async def agreement(negotiation_id: str) -> JSONResponse:
        from connector.management.agreements import agreement_json, get_agreement

        row = await run_in_threadpool(neg.get_negotiation, ctx, negotiation_id)
        if not row.agreement_id:
            raise ConnectorError(f"negotiation {negotiation_id} has no agreement (state {row.state})",
                                 code="agreement_not_found", status=404)
        found = await run_in_threadpool(get_agreement, ctx, row.agreement_id)
        return JSONResponse(agreement_json(found))

    @router.post(BASE + "/{negotiation_id}/{step}", summary="Take an operator step (manual approval)")
    async def step(negotiation_id: str, step: str, request: Request) -> Response:
        if step not in STEPS:
            raise ConnectorError(f"unknown step {step!r}; steps are {', '.join(STEPS)}", code="step_unknown",
                                 status=404)
        body = await read_json_body(request, ctx.settings, required=False) or {}
        if not isinstance(body, dict):
            raise RequestInvalid("the body must be a JSON object")
        args: dict[str, Any] = {}
        reason = field(body, "reason")
        if reason is not None:
            args["reason"] = str(reason)
        policy = field(body, "policy")
        if policy is not None:
            args["policy"] = normalise_policy(policy)
        try:
            row = await run_in_threadpool(lambda: neg.run_step(ctx, negotiation_id, step, body=args, operator=True))
        except neg.StepNotAllowed as exc:
            return JSONResponse({"type": "urn:pactum:error:step_not_allowed", "title": "step not allowed",
                                 "status": 409, "code": exc.code, "detail": str(exc), "allowed": list(exc.allowed)},
                                status_code=409, media_type="application/problem+json")
        if step == "terminate":
            return Response(status_code=204)
        return JSONResponse(negotiation_json(row))

    return router
