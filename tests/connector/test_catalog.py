"""Provider-side catalog: access policies decide visibility, offers are stable and traceable, DSP-schema valid."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from connector import jsonld
from connector.assets import Asset, AssetStore
from connector.catalog import (
    build_catalog,
    catalog_page,
    criteria_from_filter,
    find_offer,
    get_dataset,
    offer_id,
    parse_offer_id,
    selector_picks_id,
)
from connector.config import Settings, settings_from_mapping
from connector.errors import NotFoundError
from connector.offers import (
    ContractDefinition,
    ContractDefinitionStore,
    PolicyDefinitionStore,
    policy_definition_from_turtle,
)
from connector.protocol.schemas import validate_message
from connector.querying import Criterion, QueryError
from connector.storage.db import open_database
from connector.trust import Party
from policies import policies_equal

EDC = jsonld.EDC
PROVIDER = "did:web:provider.example"
PREFIXES = """@prefix odrl: <http://www.w3.org/ns/odrl/2/> .
@prefix xb: <https://w3id.org/pactum/xborder/v1#> .
"""
MEMBERS = PREFIXES + """<urn:test:members> a odrl:Set ; odrl:profile <https://w3id.org/pactum/xborder/v1> ;
  odrl:permission [ odrl:action odrl:use ; odrl:constraint [ odrl:leftOperand xb:certification ;
    odrl:operator odrl:hasPart ; odrl:rightOperand "MembershipCredential" ] ] ."""
UP_TO_IMPORTANT = PREFIXES + """<urn:test:up-to-important> a odrl:Set ;
  odrl:profile <https://w3id.org/pactum/xborder/v1> ;
  odrl:permission [ odrl:action odrl:use ; odrl:constraint [ odrl:leftOperand xb:dataClass ;
    odrl:operator odrl:lteq ; odrl:rightOperand "important" ] ] ."""
OPEN = PREFIXES + "<urn:test:open> a odrl:Set ; odrl:permission [ odrl:action odrl:use ] ."
CONTRACT = PREFIXES + """<urn:test:contract> a odrl:Set ; odrl:permission [ odrl:action odrl:use ;
  odrl:constraint [ odrl:leftOperand odrl:purpose ; odrl:operator odrl:eq ; odrl:rightOperand "quality" ] ] ;
  odrl:prohibition [ odrl:action odrl:distribute ] ."""
CONTRACT_V2 = CONTRACT.replace('"quality"', '"research"')

MEMBER = Party("did:web:member.example",
               ({"type": ["VerifiableCredential", "MembershipCredential"], "issuer": "did:web:authority.example",
                 "credentialSubject": {"id": "did:web:member.example"}},))
STRANGER = Party("did:web:stranger.example")


@dataclass
class Ctx:
    settings: Settings
    sessions: sessionmaker[Session]
    did: str = PROVIDER


@pytest.fixture
def ctx(database_url: str) -> Iterator[Ctx]:
    settings = settings_from_mapping({"participant": {"name": "provider", "did": PROVIDER},
                                      "public": {"protocol_url": "https://provider.example/dsp"}})
    engine, sessions = open_database(database_url)
    yield Ctx(settings, sessions)
    engine.dispose()


def _publish(ctx: Ctx) -> None:
    """Assets of every data class; members see quality data, anyone sees up-to-important data."""
    assets = AssetStore(ctx.sessions, ctx.settings)
    for asset_id, klass, category in (("brakes", "core", "design"), ("gears", "important", "quality"),
                                      ("bolts", "general", "quality"), ("nuts", "general", "logistics")):
        assets.create(Asset(asset_id, {EDC + "name": asset_id.title(), EDC + "dataClass": klass,
                                       EDC + "category": category, EDC + "jurisdiction": "DE"}, {"secret": "x"},
                            {"type": "Inline", "data": asset_id}))
    policies = PolicyDefinitionStore(ctx.sessions)
    for pid, text in (("members", MEMBERS), ("up-to-important", UP_TO_IMPORTANT), ("open", OPEN),
                      ("contract", CONTRACT)):
        policies.create(policy_definition_from_turtle(text, definition_id=pid))
    contracts = ContractDefinitionStore(ctx.sessions)
    contracts.create(ContractDefinition("members-quality", "members", "contract",
                                        (Criterion("category", "=", "quality"),)))
    contracts.create(ContractDefinition("by-class", "up-to-important", "open", (), "manual"))


def _ids(catalog: dict[str, Any]) -> list[str]:
    return [d["@id"] for d in catalog.get("dataset", [])]


def test_access_policies_decide_who_sees_what(ctx: Ctx) -> None:
    _publish(ctx)
    member = build_catalog(ctx, MEMBER)
    # brakes is core: by-class hides it, and it is not quality data
    assert _ids(member) == ["bolts", "gears", "nuts"] and member.total == 3
    offers = {d["@id"]: [o["@id"] for o in d["hasPolicy"]] for d in member["dataset"]}
    assert len(offers["gears"]) == 2 and len(offers["nuts"]) == 1  # members-quality + by-class / by-class only
    stranger = build_catalog(ctx, STRANGER)
    assert _ids(stranger) == ["bolts", "gears", "nuts"]
    assert all(len(d["hasPolicy"]) == 1 for d in stranger["dataset"])  # only the by-class offer
    nobody = build_catalog(ctx, None)
    assert "dataset" not in nobody and nobody.total == 0
    for catalog in (member, stranger, nobody):
        validate_message(dict(catalog), "Catalog")


def test_catalog_shape_offers_and_distributions(ctx: Ctx) -> None:
    _publish(ctx)
    catalog = build_catalog(ctx, MEMBER)
    assert catalog["@context"] == [jsonld.DSP_CONTEXT_URL]
    assert catalog["participantId"] == PROVIDER
    assert catalog["service"] == [{"@id": PROVIDER + "#dataservice", "@type": "DataService",
                                   "endpointURL": "https://provider.example/dsp"}]
    gears = next(d for d in catalog["dataset"] if d["@id"] == "gears")
    assert gears[EDC + "dataClass"] == "important" and "secret" not in str(gears)
    assert "dataAddress" not in str(gears) and "Inline" not in str(gears)
    assert {d["format"] for d in gears["distribution"]} == {"HttpData-PULL", "HttpData-PUSH"}
    assert all(d["accessService"] == PROVIDER + "#dataservice" for d in gears["distribution"])
    offer = next(o for o in gears["hasPolicy"] if "prohibition" in o)
    assert offer["@type"] == "Offer" and offer["assigner"] == PROVIDER and "target" not in offer
    assert parse_offer_id(offer["@id"])[:2] == ("members-quality", "gears")  # type: ignore[index]


def test_offer_ids_are_stable_and_change_with_the_policy(ctx: Ctx) -> None:
    _publish(ctx)
    first = build_catalog(ctx, MEMBER)
    again = build_catalog(ctx, MEMBER)
    assert first == again
    policies = PolicyDefinitionStore(ctx.sessions)
    policies.update(policy_definition_from_turtle(CONTRACT_V2, definition_id="contract"))
    changed = build_catalog(ctx, MEMBER)
    old = {o["@id"] for d in first["dataset"] for o in d["hasPolicy"]}
    new = {o["@id"] for d in changed["dataset"] for o in d["hasPolicy"]}
    assert old != new and len(old) == len(new)


def test_paging_and_filters(ctx: Ctx) -> None:
    _publish(ctx)
    page, total = catalog_page(ctx, MEMBER, None, 1, 1)
    assert _ids(page) == ["gears"] and total == 3
    empty = build_catalog(ctx, MEMBER, None, 10, 5)
    assert "dataset" not in empty and empty.total == 3
    validate_message(dict(empty), "Catalog")
    quality = build_catalog(ctx, MEMBER, [{"operandLeft": "category", "operator": "=", "operandRight": "quality"}])
    assert _ids(quality) == ["bolts", "gears"]
    as_spec = build_catalog(ctx, MEMBER, {"filterExpression": [
        {"operandLeft": "id", "operator": "in", "operandRight": ["nuts", "brakes"]}]})
    assert _ids(as_spec) == ["nuts"]
    with pytest.raises(QueryError):
        build_catalog(ctx, MEMBER, ["not a criterion"])
    with pytest.raises(QueryError):
        build_catalog(ctx, MEMBER, None, 0, 0)
    assert criteria_from_filter([]) == ()


def test_get_dataset_only_for_those_who_may_see_it(ctx: Ctx) -> None:
    _publish(ctx)
    dataset = get_dataset(ctx, MEMBER, "gears")
    assert dataset["@id"] == "gears" and dataset["@context"] == [jsonld.DSP_CONTEXT_URL]
    validate_message(dataset, "Dataset")
    for party, dataset_id in ((MEMBER, "brakes"), (MEMBER, "missing"), (None, "gears")):
        with pytest.raises(NotFoundError) as info:
            get_dataset(ctx, party, dataset_id)
        assert info.value.status == 404


def test_find_offer_traces_an_offer_back(ctx: Ctx) -> None:
    _publish(ctx)
    gears = get_dataset(ctx, MEMBER, "gears")
    offer = next(o for o in gears["hasPolicy"] if "prohibition" in o)
    found = find_offer(ctx, MEMBER, offer["@id"])
    assert found is not None
    catalog_offer, asset_id, approval = found
    assert catalog_offer == offer and asset_id == "gears" and approval == "auto"
    assert found.definition.id == "members-quality" and found.asset.id == "gears"
    assert found.policy.uid == offer["@id"]
    assert [r.kind for r in found.policy.rules] == ["permission", "prohibition"]
    # the same offer read back from the catalog JSON (as a consumer would send it) means the same policy
    from connector.policy_gate import parse_offer
    assert policies_equal(found.policy, parse_offer({**offer, "target": "gears"}))
    # a stranger may not take the members' offer; manual approval travels with the definition's offer
    assert find_offer(ctx, STRANGER, offer["@id"]) is None
    by_class = next(o for o in gears["hasPolicy"] if o is not offer)
    manual = find_offer(ctx, STRANGER, by_class["@id"])
    assert manual is not None and manual.approval == "manual"


def test_find_offer_refuses_stale_foreign_and_broken_ids(ctx: Ctx) -> None:
    _publish(ctx)
    offer = next(o for o in get_dataset(ctx, MEMBER, "gears")["hasPolicy"] if "prohibition" in o)
    assert find_offer(ctx, None, offer["@id"]) is None
    for bad in ("", "urn:uuid:1234", "a:b:c", offer_id("members-quality", "missing", "0" * 64),
                offer_id("nope", "gears", "0" * 64), offer_id("members-quality", "nuts", offer["@id"][-32:] * 2)):
        assert find_offer(ctx, MEMBER, bad) is None, bad
    PolicyDefinitionStore(ctx.sessions).update(policy_definition_from_turtle(CONTRACT_V2, definition_id="contract"))
    assert find_offer(ctx, MEMBER, offer["@id"]) is None  # the contract policy changed since it was offered


def test_expired_membership_hides_the_offer(ctx: Ctx) -> None:
    _publish(ctx)
    expired = Party(MEMBER.did, ({**MEMBER.credentials[0], "validUntil": "2020-01-01T00:00:00Z"},))
    assert datetime.now(UTC).year > 2020
    offers = {d["@id"]: len(d["hasPolicy"]) for d in build_catalog(ctx, expired)["dataset"]}
    assert offers == {"bolts": 1, "gears": 1, "nuts": 1}


def test_selector_of_ids_is_decided_without_sql() -> None:
    id_iri = EDC + "id"
    assert selector_picks_id((), "gears") is True  # an empty selector picks every asset, as in SQL
    for left in ("id", "edc:id", id_iri, "@id"):
        assert selector_picks_id((Criterion(left, "=", "gears"),), "gears") is True, left
        assert selector_picks_id((Criterion(left, "=", "gear"),), "gears") is False, left
    assert selector_picks_id((Criterion("id", "=", "Gears"),), "gears") is False  # case matters, as in SQL
    assert selector_picks_id((Criterion("id", "in", ["bolts", "gears"]),), "gears") is True
    assert selector_picks_id((Criterion("id", "in", ["bolts"]),), "gears") is False
    # anything else is left to SQL: other fields, operators, non-string operands
    for criterion in (Criterion("category", "=", "quality"), Criterion("id", "like", "ge%"),
                      Criterion("id", "=", 7), Criterion("id", "in", []), Criterion("id", "in", ["gears", 1])):
        assert selector_picks_id((Criterion("id", "=", "gears"), criterion), "gears") is None, criterion


def _by_id(ctx: Ctx, selector: tuple[Criterion, ...]) -> str:
    """A contract definition over ``selector`` with the open access policy; the offer id for ``bolts``."""
    ContractDefinitionStore(ctx.sessions).create(ContractDefinition("by-id", "open", "contract", selector))
    dataset = get_dataset(ctx, STRANGER, "bolts")
    return str(next(o["@id"] for o in dataset["hasPolicy"] if "prohibition" in o))


def test_find_offer_by_id_selector_follows_every_change_at_once(ctx: Ctx) -> None:
    _publish(ctx)
    offer = _by_id(ctx, (Criterion(EDC + "id", "=", "bolts"),))
    found = find_offer(ctx, STRANGER, offer)
    assert found is not None and found.asset_id == "bolts" and found.definition.id == "by-id"
    assert found.asset.properties[EDC + "name"] == "Bolts"
    with ctx.sessions() as session:  # read in a lent session (the request's transaction) the same way
        lent = find_offer(ctx, STRANGER, offer, session)
    assert lent is not None and lent.offer == found.offer
    contracts = ContractDefinitionStore(ctx.sessions)
    # the selector now names another asset: the offer on bolts is gone
    contracts.update(ContractDefinition("by-id", "open", "contract", (Criterion("id", "in", ["nuts"]),)))
    assert find_offer(ctx, STRANGER, offer) is None
    contracts.update(ContractDefinition("by-id", "open", "contract", (Criterion("id", "in", ["nuts", "bolts"]),)))
    assert find_offer(ctx, STRANGER, offer) is not None
    # the access policy is swapped for one only members satisfy: strangers lose the offer, members keep it
    contracts.update(ContractDefinition("by-id", "members", "contract", (Criterion("id", "=", "bolts"),)))
    assert find_offer(ctx, STRANGER, offer) is None and find_offer(ctx, MEMBER, offer) is not None
    # the asset is deleted: nothing to trace
    AssetStore(ctx.sessions, ctx.settings).delete("bolts")
    assert find_offer(ctx, MEMBER, offer) is None


def test_find_offer_mixed_selector_is_decided_in_sql(ctx: Ctx) -> None:
    _publish(ctx)
    offer = _by_id(ctx, (Criterion("id", "=", "bolts"), Criterion("category", "=", "quality")))
    assert find_offer(ctx, STRANGER, offer) is not None
    assets = AssetStore(ctx.sessions, ctx.settings)
    bolts = assets.get("bolts")
    assets.update(Asset("bolts", {**bolts.properties, EDC + "category": "logistics"}, bolts.private_properties,
                        bolts.data_address))
    assert find_offer(ctx, STRANGER, offer) is None  # the asset's category no longer matches the selector


def test_a_definition_whose_policy_is_gone_offers_nothing(ctx: Ctx) -> None:
    """Only raw database edits can get here (the store refuses to delete a policy in use); it must not break."""
    from sqlalchemy import delete

    from connector.storage.tables_catalog import PolicyDefinitionRow

    _publish(ctx)
    before = {d["@id"]: len(d["hasPolicy"]) for d in build_catalog(ctx, MEMBER)["dataset"]}
    with ctx.sessions.begin() as session:
        session.execute(delete(PolicyDefinitionRow).where(PolicyDefinitionRow.id == "contract"))
    after = {d["@id"]: len(d["hasPolicy"]) for d in build_catalog(ctx, MEMBER)["dataset"]}
    assert before == {"bolts": 2, "gears": 2, "nuts": 1} and after == {"bolts": 1, "gears": 1, "nuts": 1}
    assert len(get_dataset(ctx, MEMBER, "gears")["hasPolicy"]) == 1
