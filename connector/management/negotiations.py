"""``/v3/contractnegotiations``: start, read, query, step and terminate negotiations (EDC v3 shapes).

Creating one starts a negotiation as consumer from an EDC ``ContractRequest``; the operator's steps
(``offer``, ``agree``, ``accept``, ``verify``, ``finalize``, ``terminate``) drive a negotiation in ``manual``
approval, and a step not possible now answers 409 listing the steps that are.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from sqlalchemy import Row, bindparam, select

from connector import negotiation as neg
from connector.errors import ConnectorError, NotFoundError
from connector.jsonld import EDC, EDC_CONTEXT
from connector.management.common import DirectRoute, read_json_body, read_query_spec, require_api_key
from connector.policy_gate import parse_offer, policy_to_jsonld
from connector.querying import Criterion, PreparedQueries, QuerySpec
from connector.storage.tables_protocol import NegotiationRow
from connector.threads import in_thread

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


def epoch_ms(row: NegotiationRow | Row[Any]) -> int:
    return int(row.created_at.timestamp() * 1000)


# The columns negotiation_json reads, in the order of VIEW_COLUMNS' rows (a query selects only these).
VIEW_COLUMNS = ("id", "role", "state", "counterparty_did", "counterparty_address", "consumer_pid", "provider_pid",
                "asset_id", "offer_id", "approval", "pending", "correlation_id", "created_at", "updated_at",
                "agreement_id", "error_reason", "error_code")


def negotiation_json(row: NegotiationRow | Row[Any]) -> dict[str, Any]:
    """EDC's ContractNegotiation shape (plus both pids and the pending operator step).

    ``row``: the stored negotiation, or a row of :data:`VIEW_COLUMNS` (read by position: a Row's attributes
    cost a microsecond each, more than the rest of this function).
    """
    values: Sequence[Any] = row if isinstance(row, Row) and row._fields == VIEW_COLUMNS else [
        getattr(row, c) for c in VIEW_COLUMNS]
    (pid, role, state, counterparty_did, counterparty_address, consumer_pid, provider_pid, asset_id, offer_id,
     approval, pending, correlation_id, created_at, updated_at, agreement_id, error_reason, error_code) = values
    out: dict[str, Any] = {
        "@context": dict(EDC_CONTEXT), "@type": "ContractNegotiation", "@id": pid,
        "type": role.upper(), "protocol": PROTOCOL, "state": state,
        "counterPartyId": counterparty_did, "counterPartyAddress": counterparty_address,
        "consumerPid": consumer_pid, "providerPid": provider_pid, "assetId": asset_id,
        "offerId": offer_id, "approval": approval, "pendingStep": pending,
        "correlationId": correlation_id, "createdAt": int(created_at.timestamp() * 1000),
        "stateTimestamp": int(updated_at.timestamp() * 1000),
    }
    if agreement_id:
        out["contractAgreementId"] = agreement_id
    if error_reason:
        out["errorDetail"] = error_reason
        out["errorCode"] = error_code
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
# WHY a Core select of these columns on a plain connection: an answer is negotiation_json of each row, which
# reads only these; ORM objects (identity map, instrumented attributes), a session around one SELECT and the
# stored policy and party texts cost more than the query itself.
_NEGOTIATION_VIEW = select(*(_C[name] for name in VIEW_COLUMNS))
_ONE_NEGOTIATION = _NEGOTIATION_VIEW.where(_C.id == bindparam("pid"))


def with_lowercase_type(spec: QuerySpec) -> QuerySpec:
    """``type`` is stored lower-case (``consumer``) but shown upper-case (``CONSUMER``): compare it lower-case."""
    if not any(c.left in ("type", "edc:type") for c in spec.filters):
        return spec
    filters = tuple(
        Criterion(c.left, c.operator, c.right.lower() if c.left in ("type", "edc:type") and isinstance(c.right, str)
                  else c.right) for c in spec.filters)
    return QuerySpec(filters, spec.sort_field, spec.sort_order, spec.offset, spec.limit, spec.extra)


_QUERIES = PreparedQueries(_NEGOTIATION_VIEW, NEGOTIATION_COLUMNS, default_sort=_C.id)


def query_negotiations(ctx: ConnectorContext, spec: QuerySpec) -> list[Row[Any]]:
    """The negotiations ``spec`` selects, as rows with the columns :func:`negotiation_json` reads."""
    stmt, params = _QUERIES.statement(with_lowercase_type(spec))
    with ctx.engine.connect() as conn:
        return list(conn.execute(stmt, params))


def read_negotiation(ctx: ConnectorContext, negotiation_id: str) -> Row[Any]:
    """One negotiation as a row of :data:`VIEW_COLUMNS`; 404 as :func:`connector.negotiation.get_negotiation`."""
    with ctx.engine.connect() as conn:
        row = conn.execute(_ONE_NEGOTIATION, {"pid": negotiation_id}).first()
    if row is None:
        raise NotFoundError(f"no contract negotiation {negotiation_id!r}", code="negotiation_not_found")
    return row


# ---- the routes an operator calls for every negotiation (also served directly: common.ManagementApp) --------

async def start(ctx: ConnectorContext, request: Request) -> JSONResponse:
    """``POST /v3/contractnegotiations``: an EDC ContractRequest becomes a consumer negotiation; IdResponse."""
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
    row = await in_thread(lambda: neg.start_negotiation(
        ctx, counterparty_address=address, counterparty_did=counterparty, offer=offer, approval=approval,
        correlation_id=request.headers.get("X-Correlation-Id")))
    return JSONResponse({"@context": dict(EDC_CONTEXT), "@type": "IdResponse", "@id": row.id,
                         "createdAt": epoch_ms(row)})


async def find(ctx: ConnectorContext, request: Request) -> JSONResponse:
    """``POST /v3/contractnegotiations/request``: the negotiations a QuerySpec selects."""
    spec = await read_query_spec(request, ctx.settings)
    rows = await in_thread(query_negotiations, ctx, spec)
    return JSONResponse([negotiation_json(r) for r in rows])


async def read(ctx: ConnectorContext, request: Request, negotiation_id: str) -> JSONResponse:
    """``GET /v3/contractnegotiations/{id}``."""
    return JSONResponse(negotiation_json(await in_thread(read_negotiation, ctx, negotiation_id)))


async def read_state(ctx: ConnectorContext, request: Request, negotiation_id: str) -> JSONResponse:
    """``GET /v3/contractnegotiations/{id}/state``."""
    row = await in_thread(read_negotiation, ctx, negotiation_id)
    return JSONResponse({"@context": dict(EDC_CONTEXT), "@type": "NegotiationState", "state": row.state})


def direct_routes(ctx: ConnectorContext) -> list[DirectRoute]:
    """The routes above, for :meth:`connector.management.common.ManagementApp.serve_directly`."""
    return [DirectRoute("POST", BASE, partial(start, ctx)), DirectRoute("POST", BASE + "/request", partial(find, ctx)),
            DirectRoute("GET", BASE + "/{negotiation_id}", partial(read, ctx)),
            DirectRoute("GET", BASE + "/{negotiation_id}/state", partial(read_state, ctx))]


def create_router(ctx: ConnectorContext) -> APIRouter:
    router = APIRouter(tags=["contract negotiations"], dependencies=[Depends(require_api_key(ctx.settings))])

    @router.post(BASE, summary="Start a contract negotiation as consumer (EDC ContractRequest)")
    async def create(request: Request) -> JSONResponse:
        return await start(ctx, request)

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
        return await find(ctx, request)

    @router.get(BASE + "/{negotiation_id}", summary="Get a negotiation")
    async def get(negotiation_id: str, request: Request) -> JSONResponse:
        return await read(ctx, request, negotiation_id)

    @router.get(BASE + "/{negotiation_id}/state", summary="Get a negotiation's state")
    async def state(negotiation_id: str, request: Request) -> JSONResponse:
        return await read_state(ctx, request, negotiation_id)

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
