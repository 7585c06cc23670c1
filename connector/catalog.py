"""Provider-side DCAT catalog: what one verified caller may see, as DSP 2025-1 compact JSON-LD.

For every contract definition whose ACCESS policy permits the caller (``use``, with the caller's verified
credentials and claims, and the asset's facts), the assets its ``assetsSelector`` picks become
``Dataset``s whose ``hasPolicy`` carries the CONTRACT policy as an ``Offer``. The offer ``@id`` encodes the
contract definition, the asset and the contract policy's canonical hash, so a later contract request can be
traced back (``find_offer``) and an offer made before the policy changed is recognised as stale.
An unknown caller (``party is None``) sees an empty catalog.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any, Protocol, cast

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session, sessionmaker

from connector import jsonld
from connector.assets import Asset, AssetStore, asset_from_row
from connector.errors import NotFoundError
from connector.offers import (
    ContractDefinition,
    PolicyDefinition,
    contract_definition_from_row,
    policy_definition_from_row,
)
from connector.policy_gate import parse_document
from connector.policy_placeholders import fill_placeholders, fill_policy
from connector.querying import Criterion, QueryError, criteria_from_nodes, field_key
from connector.storage.tables_catalog import AssetRow, ContractDefinitionRow, PolicyDefinitionRow
from policies import Policy, Request, StateOfWorld, evaluate
from policies.errors import PolicyError

log = logging.getLogger("pactum.connector.catalog")

DSP_CONTEXT = jsonld.DSP_CONTEXT_URL
DATA_SERVICE_FRAGMENT = "#dataservice"
DISTRIBUTION_FORMATS = ("HttpData-PULL", "HttpData-PUSH")
MAX_LIMIT = 1000


class CatalogParty(Protocol):
    """E's verified party: DID, verified credentials (plain VC JSON) and claims lifted from them."""

    @property
    def did(self) -> str: ...

    @property
    def credentials(self) -> Sequence[Mapping[str, Any]]: ...

    @property
    def facts(self) -> Mapping[str, Any]: ...


class CatalogPage(dict[str, Any]):
    """The DSP ``Catalog`` (a plain dict for the protocol edge) plus ``total``: all datasets the caller may see."""

    total: int = 0


class OfferMatch(tuple[dict[str, Any], str, str]):
    """``(offer, asset_id, approval)`` as the negotiation unpacks it, plus ``definition``, ``asset``, ``policy``.

    ``offer`` is the catalog form (no ``target``); ``policy`` is the parsed message form (with ``target``).
    """

    definition: ContractDefinition
    asset: Asset
    policy: Policy

    def __new__(cls, definition: ContractDefinition, asset: Asset, policy: Policy,
                offer: dict[str, Any]) -> OfferMatch:
        match = super().__new__(cls, (offer, asset.id, definition.approval))
        match.definition, match.asset, match.policy = definition, asset, policy
        return match

    @property
    def offer(self) -> dict[str, Any]:
        return self[0]

    @property
    def asset_id(self) -> str:
        return self[1]

    @property
    def approval(self) -> str:
        return self[2]


@dataclass(frozen=True)
class VisibleDataset:
    asset: Asset
    offers: tuple[tuple[ContractDefinition, PolicyDefinition], ...]


# ---- offer ids -----------------------------------------------------------------------------------------

def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode("utf-8")).decode("ascii").rstrip("=")


def _unb64(text: str) -> str:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode("utf-8")


def offer_id(definition_id: str, asset_id: str, policy_hash: str) -> str:
    """``<b64url(contract definition id)>:<b64url(asset id)>:<first 32 hex of the policy hash>``."""
    return f"{_b64(definition_id)}:{_b64(asset_id)}:{policy_hash[:32]}"


def parse_offer_id(value: str) -> tuple[str, str, str] | None:
    """(contract definition id, asset id, hash prefix), or None when ``value`` is not one of our offer ids."""
    parts = value.split(":")
    if len(parts) != 3 or len(parts[2]) != 32:
        return None
    try:
        return _unb64(parts[0]), _unb64(parts[1]), parts[2]
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None


# ---- pieces of the catalog -----------------------------------------------------------------------------

def data_service_id(ctx: Any) -> str:
    return f"{ctx.did}{DATA_SERVICE_FRAGMENT}"


def data_service(ctx: Any) -> dict[str, Any]:
    """This connector's DSP endpoint as a ``DataService``."""
    return {"@id": data_service_id(ctx), "@type": "DataService", "endpointURL": ctx.settings.protocol_url}


def offer_json(ctx: Any, definition: ContractDefinition, asset: Asset, contract: PolicyDefinition, *,
               with_target: bool = False) -> dict[str, Any]:
    """The contract policy as the ``Offer`` for ``asset`` (catalog form: no ``target``; message form: with it)."""
    policy = fill_placeholders(contract.policy, provider=ctx.did, asset=asset.id,  # library templates
                               policy_hash=contract.policy_hash)
    body = {k: v for k, v in policy.items() if k not in ("@context", "target", "assigner", "assignee")}
    body["@id"] = offer_id(definition.id, asset.id, contract.policy_hash)
    body["@type"] = "Offer"
    body["assigner"] = ctx.did
    if with_target:
        body["target"] = asset.id
    return body


def dataset_json(ctx: Any, visible: VisibleDataset) -> dict[str, Any]:
    """One ``Dataset``: the asset's public properties (full IRIs), its offers and its distributions."""
    asset = visible.asset
    out: dict[str, Any] = {"@id": asset.id, "@type": "Dataset"}
    for iri, value in asset.properties.items():
        out[iri] = value
    out["hasPolicy"] = [offer_json(ctx, cd, asset, contract) for cd, contract in visible.offers]
    out["distribution"] = [{"@type": "Distribution", "format": fmt, "accessService": data_service_id(ctx)}
                           for fmt in DISTRIBUTION_FORMATS]
    return out


def criteria_from_filter(raw: Any) -> tuple[Criterion, ...]:
    """The DSP ``filter`` (implementation-specific): a list of EDC criteria, or a QuerySpec with filterExpression."""
    if raw is None or raw == [] or raw == {}:
        return ()
    items = raw if isinstance(raw, list) else [raw]
    nodes: list[Any] = []
    for item in items:
        if not isinstance(item, Mapping):
            raise QueryError("each catalog filter entry must be a criterion object "
                             "({operandLeft, operator, operandRight})", code="catalog_filter_invalid")
        node = jsonld.expand_one(dict(item), what="catalog filter")
        expressions = jsonld.values(node, jsonld.EDC + "filterExpression")
        nodes.extend(expressions if expressions else [node])
    return criteria_from_nodes(nodes)


# ---- policy decisions ----------------------------------------------------------------------------------

def _now(ctx: Any) -> datetime:
    gate = getattr(ctx, "policy_gate", None)
    if gate is not None and hasattr(gate, "now"):
        now = gate.now()
        if isinstance(now, datetime):
            return now
    return datetime.now(UTC)


def access_permits(ctx: Any, policy: Policy, party: CatalogParty, asset: Asset, now: datetime | None = None) -> bool:
    """Does ``policy`` let ``party`` use ``asset`` now? A policy error counts as "no" (and is logged)."""
    request = Request(action="use", target=asset.id, assignee=party.did, assigner=ctx.did)
    policy = fill_policy(policy, provider=ctx.did, asset=asset.id)  # a library template's placeholders
    try:
        state = StateOfWorld(now=now or _now(ctx), facts=dict(party.facts or {}),
                             credentials=tuple(party.credentials or ()), asset=asset.policy_facts())
        return evaluate(policy, request, state).decision == "permit"
    except PolicyError as exc:
        log.warning("access policy %s could not be evaluated for %s on %s: %s", policy.uid, party.did, asset.id, exc)
        return False


def visible_datasets(ctx: Any, party: CatalogParty | None,
                     criteria: Sequence[Criterion] = ()) -> list[VisibleDataset]:
    """Every dataset ``party`` may see (ordered by asset id), with the offers that make it visible."""
    if party is None:
        return []
    with ctx.sessions() as session:
        assets = AssetStore(cast("sessionmaker[Session]", LentSession(session)), ctx.settings)
        offered = offered_definitions(session)
        return _visible(ctx, party, offered, lambda definition: assets.matching(
            tuple(definition.assets_selector) + tuple(criteria)))


def _visible(ctx: Any, party: CatalogParty, offered: Sequence[OfferedDefinition],
             picked_by: Callable[[ContractDefinition], Sequence[Asset]]) -> list[VisibleDataset]:
    """The datasets ``picked_by`` each definition whose access policy permits ``party``, with their offers."""
    now = _now(ctx)
    decisions: dict[tuple[str, str], bool] = {}
    found: dict[str, tuple[Asset, list[tuple[ContractDefinition, PolicyDefinition]]]] = {}
    for definition, access, contract in offered:
        access_policy = access.parsed()
        for asset in picked_by(definition):
            key = (access.policy_hash, asset.id)
            if key not in decisions:
                decisions[key] = access_permits(ctx, access_policy, party, asset, now)
            if decisions[key]:
                found.setdefault(asset.id, (asset, []))[1].append((definition, contract))
    return [VisibleDataset(asset, tuple(offers)) for _, (asset, offers) in sorted(found.items())]


# ---- the public API ------------------------------------------------------------------------------------

def build_catalog(ctx: Any, party: CatalogParty | None, filter: Any = None, offset: int = 0,
                  limit: int = 50) -> CatalogPage:
    """The DSP ``Catalog`` page for ``party``; ``.total`` is the number of datasets it may see in all.

    ``filter`` is the DSP message's ``filter`` (EDC criteria over asset fields) or already-parsed criteria.
    Use ``catalog_page`` for the ``(catalog, total)`` pair.
    """
    if offset < 0 or not 1 <= limit <= MAX_LIMIT:
        raise QueryError(f"offset must be >= 0 and limit from 1 to {MAX_LIMIT}", code="catalog_paging_invalid")
    criteria = tuple(filter) if isinstance(filter, tuple) and all(isinstance(c, Criterion) for c in filter) \
        else criteria_from_filter(filter)
    visible = visible_datasets(ctx, party, criteria)
    page = visible[offset:offset + limit]
    catalog = CatalogPage({
        "@context": [DSP_CONTEXT],
        "@id": f"{ctx.did}#catalog",
        "@type": "Catalog",
        "participantId": ctx.did,
        "service": [data_service(ctx)],
    })
    if page:
        catalog["dataset"] = [dataset_json(ctx, v) for v in page]
    catalog.total = len(visible)
    log.info("catalog for %s: %d of %d visible datasets (offset %d)", party.did if party else "an unknown caller",
             len(page), len(visible), offset)
    return catalog


def catalog_page(ctx: Any, party: CatalogParty | None, filter: Any = None, offset: int = 0,
                 limit: int = 50) -> tuple[dict[str, Any], int]:
    """``(catalog, total)``: the same as ``build_catalog`` as a pair."""
    catalog = build_catalog(ctx, party, filter, offset, limit)
    return dict(catalog), catalog.total


def get_dataset(ctx: Any, party: CatalogParty | None, dataset_id: str) -> dict[str, Any]:
    """One ``Dataset`` (with ``@context``) if ``party`` may see it; NotFoundError (404) otherwise.

    WHY 404 and not 403 for a dataset the caller may not see: its existence is itself not disclosed.
    """
    if party is not None:
        with ctx.sessions() as session:
            reader = cast("sessionmaker[Session]", LentSession(session))
            asset = AssetStore(reader, ctx.settings).find(dataset_id)
            if asset is not None:
                def picked_by(definition: ContractDefinition) -> Sequence[Asset]:
                    return (asset,) if _picks(session, definition.assets_selector, dataset_id) else ()

                for visible in _visible(ctx, party, offered_definitions(session), picked_by):
                    return {"@context": [DSP_CONTEXT], **dataset_json(ctx, visible)}
    raise NotFoundError(f"no dataset {dataset_id!r} for this caller", code="dataset_not_found")


class LentSession:
    """Stands in for a session factory and lends one open session, so several stores read in one session.

    WHY: tracing an offer reads a contract definition, an asset, a selector match and two policies; five
    sessions (each a pool checkout, a transaction and a reset) cost more than the reads themselves.
    Only for reading: the stores' ``find``/``matches`` use ``sessions()``, never ``begin()``.
    """

    def __init__(self, session: Session) -> None:
        self._session = session

    def __call__(self) -> contextlib.AbstractContextManager[Session]:
        return contextlib.nullcontext(self._session)


def find_offer(ctx: Any, party: CatalogParty | None, offer: str,
               session: Session | None = None) -> OfferMatch | None:
    """Trace an offer id back to what was offered, if ``party`` may still take it.

    The result unpacks as ``(offer JSON in catalog form, asset id, approval)`` and carries ``.definition``
    (the contract definition), ``.asset`` and ``.policy``: the offer in DSP message form (``@id`` = the offer
    id, ``assigner`` = our DID, ``target`` = the asset id) parsed by the policy engine.
    None when the id is not ours, anything it names is gone, the contract policy changed since the offer
    was made, the asset no longer matches the selector, or the access policy does not permit ``party``.
    ``session``: an open session to read in (e.g. the transaction handling the request), else a new one.
    """
    if party is None:
        return None
    parsed = parse_offer_id(offer)
    if parsed is None:
        return None
    definition_id, asset_id, hash_prefix = parsed
    if session is None:
        with ctx.sessions() as own:
            traced = trace_offer(own, definition_id, asset_id)
    else:
        traced = trace_offer(session, definition_id, asset_id)
    if traced is None:
        return None
    definition, access, contract, asset = traced
    if not contract.policy_hash.startswith(hash_prefix):
        return None
    if not access_permits(ctx, access.parsed(), party, asset):
        return None
    # a policy outside a DSP message needs the DSP ODRL profile context too; the stored policy names both
    context = contract.policy.get("@context") or [DSP_CONTEXT]
    document = {"@context": context, **offer_json(ctx, definition, asset, contract, with_target=True)}
    policy = parse_document(document)  # the same offer document parses once
    return OfferMatch(definition, asset, policy, offer_json(ctx, definition, asset, contract))


_DEFINITIONS, _ASSETS = ContractDefinitionRow.__table__, AssetRow.__table__
_ACCESS, _CONTRACT = PolicyDefinitionRow.__table__.alias("access_policy"), \
    PolicyDefinitionRow.__table__.alias("contract_policy")
_PARTS = (_DEFINITIONS, _ACCESS, _CONTRACT, _ASSETS)
# WHY one Core statement built once: a contract request names a contract definition and an asset; the
# definition, both its policies and the asset come back in one round trip (they were five ORM reads), as
# plain rows (no identity-map bookkeeping for objects nobody changes), and a statement with bound parameters
# is built once per process instead of on every request.
_TRACE = (select(*_PARTS)
          .join(_ACCESS, _ACCESS.c.id == _DEFINITIONS.c.access_policy_id)
          .join(_CONTRACT, _CONTRACT.c.id == _DEFINITIONS.c.contract_policy_id)
          .join(_ASSETS, _ASSETS.c.id == bindparam("asset_id"))
          .where(_DEFINITIONS.c.id == bindparam("definition_id")))


# Every contract definition with its two policies (LEFT JOIN: a definition whose policy is gone is reported).
_OFFERED = (select(*_PARTS[:3])
            .outerjoin(_ACCESS, _ACCESS.c.id == _DEFINITIONS.c.access_policy_id)
            .outerjoin(_CONTRACT, _CONTRACT.c.id == _DEFINITIONS.c.contract_policy_id)
            .order_by(_DEFINITIONS.c.id))
OfferedDefinition = tuple[ContractDefinition, PolicyDefinition, PolicyDefinition]


def offered_definitions(session: Session) -> list[OfferedDefinition]:
    """(contract definition, access policy, contract policy) for every definition, by id, in one query.

    A definition whose policy definition is missing is skipped with a warning (it can offer nothing)."""
    out: list[OfferedDefinition] = []
    for found in session.execute(_OFFERED):
        definition_row, access_row, contract_row = _split(found, _PARTS[:3])
        if access_row.id is None or contract_row.id is None:
            log.warning("contract definition %s refers to a missing policy definition; skipped", definition_row.id)
            continue
        out.append((contract_definition_from_row(definition_row), policy_definition_from_row(access_row),
                    policy_definition_from_row(contract_row)))
    return out


def _picks(session: Session, selector: Sequence[Criterion], asset_id: str) -> bool:
    """Does ``selector`` pick asset ``asset_id``? Decided without SQL for id criteria, else by the store."""
    verdict = selector_picks_id(selector, asset_id)
    if verdict is None:  # criteria over other fields: the store's SQL decides, as for the catalog
        verdict = AssetStore(cast("sessionmaker[Session]", LentSession(session))).matches(asset_id, selector)
    return verdict


def _split(found: Sequence[Any], tables: Sequence[Any] = _PARTS) -> list[Any]:
    """The joined row cut into one attribute view per table (what the stores' row converters read)."""
    parts, start = [], 0
    for table in tables:
        columns = table.columns
        parts.append(SimpleNamespace(**{c.key: found[start + i] for i, c in enumerate(columns)}))
        start += len(columns)
    return parts


def trace_offer(session: Session, definition_id: str, asset_id: str) -> tuple[
        ContractDefinition, PolicyDefinition, PolicyDefinition, Asset] | None:
    """(contract definition, access policy, contract policy, asset) when all exist and the asset matches the
    definition's selector; None otherwise. One query, two when the selector needs SQL to decide."""
    found = session.execute(_TRACE, {"definition_id": definition_id, "asset_id": asset_id}).first()
    if found is None:
        return None
    definition_row, access_row, contract_row, asset_row = _split(found)
    definition = contract_definition_from_row(definition_row)
    if not _picks(session, definition.assets_selector, asset_id):
        return None
    return (definition, policy_definition_from_row(access_row), policy_definition_from_row(contract_row),
            asset_from_row(asset_row))


def selector_picks_id(selector: Sequence[Criterion], asset_id: str) -> bool | None:
    """Does a selector of only ``id =`` / ``id in`` criteria pick ``asset_id``? None for any other selector.

    WHY decided here: most selectors name their assets by id (EDC's usual form); string equality is what
    SQL's ``=`` on the id column gives on SQLite (BINARY) and PostgreSQL (deterministic collation) alike, so
    the answer is the same without another query. An empty selector picks every asset, as in SQL.
    """
    for criterion in selector:
        if field_key(criterion.left) != "id":
            return None
        right = criterion.right
        if criterion.operator == "=" and isinstance(right, str):
            if right != asset_id:
                return False
        elif criterion.operator == "in" and isinstance(right, list) and right \
                and all(isinstance(v, str) for v in right):
            if asset_id not in right:
                return False
        else:
            return None
    return True
