"""Library policy placeholders: filled when the connector makes an offer, so consumers see (and send back) the
provider's DID and the dataset id, never ``urn:pactum:provider`` / ``urn:pactum:asset``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from connector import jsonld
from connector.assets import Asset, AssetStore
from connector.catalog import build_catalog, find_offer
from connector.config import Settings, settings_from_mapping
from connector.negotiation import offers_match
from connector.offers import (
    ContractDefinition,
    ContractDefinitionStore,
    PolicyDefinitionStore,
    policy_definition_from_turtle,
)
from connector.policy_gate import parse_offer
from connector.policy_placeholders import (
    ASSET_PLACEHOLDER,
    PROVIDER_PLACEHOLDER,
    fill_placeholders,
    fill_policy,
    has_placeholders,
)
from connector.querying import Criterion
from connector.storage.db import open_database
from connector.trust import Party
from policies import Request, StateOfWorld, evaluate

EDC = jsonld.EDC
PROVIDER = "did:web:provider.example"
LIBRARY = Path(__file__).resolve().parents[2] / "policies" / "library"
MEMBER = Party("did:web:member.example",
               ({"type": ["VerifiableCredential", "MembershipCredential"], "issuer": "did:web:authority.example",
                 "credentialSubject": {"id": "did:web:member.example"}},))
# a template with placeholders on a rule and on a duty's action target too, not only on the policy
RULE_LEVEL = """@prefix odrl: <http://www.w3.org/ns/odrl/2/> .
<urn:test:rule-level> a odrl:Offer ;
  odrl:assigner <urn:pactum:provider> ;
  odrl:permission [ odrl:action odrl:use ; odrl:target <urn:pactum:asset> ; odrl:assigner <urn:pactum:provider> ;
                    odrl:duty [ odrl:action odrl:delete ; odrl:target <urn:pactum:asset> ] ] ."""


def test_fill_replaces_whole_values_everywhere_and_leaves_the_input_alone() -> None:
    template: dict[str, Any] = {
        "@context": ["urn:ctx:" + ASSET_PLACEHOLDER], "@id": "urn:p", "assigner": PROVIDER_PLACEHOLDER,
        "target": {"@id": ASSET_PLACEHOLDER},
        "permission": [{"action": "use", "target": ASSET_PLACEHOLDER,
                        "constraint": [{"leftOperand": "purpose", "operator": "eq",
                                        "rightOperand": {"@value": ASSET_PLACEHOLDER}}]}],
        "prohibition": [{"action": "distribute", "target": ASSET_PLACEHOLDER + ":other"}],
    }
    before = json.dumps(template, sort_keys=True)
    filled = fill_placeholders(template, provider=PROVIDER, asset="gears")
    assert json.dumps(template, sort_keys=True) == before
    assert filled["assigner"] == PROVIDER and filled["target"] == {"@id": "gears"}
    assert filled["permission"][0]["target"] == "gears"
    # a literal is text, not the placeholder IRI; a longer IRI is another IRI; the context is never touched
    assert filled["permission"][0]["constraint"][0]["rightOperand"] == {"@value": ASSET_PLACEHOLDER}
    assert filled["prohibition"][0]["target"] == ASSET_PLACEHOLDER + ":other"
    assert filled["@context"] == template["@context"]
    assert has_placeholders(template) and not has_placeholders(filled)


def test_fill_policy_fills_the_parsed_template_once_and_keeps_other_policies() -> None:
    template = policy_definition_from_turtle(RULE_LEVEL, definition_id="t").parsed()
    gears = fill_policy(template, provider=PROVIDER, asset="gears")
    bolts = fill_policy(template, provider=PROVIDER, asset="bolts")
    assert gears is fill_policy(template, provider=PROVIDER, asset="gears")  # cached per (template, asset)
    request = Request(action="use", target="gears", assignee="did:web:c", assigner=PROVIDER)
    state = StateOfWorld(now=datetime.now(UTC))
    assert evaluate(gears, request, state).decision == "permit"
    assert evaluate(bolts, request, state).decision != "permit"  # compiled separately, not shared
    assert evaluate(template, request, state).decision != "permit"
    plain = policy_definition_from_turtle(RULE_LEVEL.replace("urn:pactum:", "urn:x:"), definition_id="p").parsed()
    assert fill_policy(plain, provider=PROVIDER, asset="gears") is plain


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


def _publish(ctx: Ctx, access_turtle: str, contract_turtle: str, asset_ids: tuple[str, ...]) -> None:
    assets = AssetStore(ctx.sessions, ctx.settings)
    for asset_id in asset_ids:
        assets.create(Asset(asset_id, {EDC + "name": asset_id, EDC + "dataClass": "important",
                                       EDC + "category": "quality", EDC + "jurisdiction": "DE"}, {},
                            {"type": "Inline", "data": asset_id}))
    policies = PolicyDefinitionStore(ctx.sessions)
    policies.create(policy_definition_from_turtle(access_turtle, definition_id="access"))
    policies.create(policy_definition_from_turtle(contract_turtle, definition_id="contract"))
    ContractDefinitionStore(ctx.sessions).create(
        ContractDefinition("offer", "access", "contract", (Criterion("category", "=", "quality"),)))


def test_library_policy_is_stored_as_written_and_offered_filled(ctx: Ctx) -> None:
    library = (LIBRARY / "traceability-members.ttl").read_text("utf-8")
    _publish(ctx, library, library, ("gears", "bolts"))
    stored = PolicyDefinitionStore(ctx.sessions).get("contract")
    assert has_placeholders(stored.policy)  # one template for both assets
    catalog = build_catalog(ctx, MEMBER)
    assert [d["@id"] for d in catalog["dataset"]] == ["bolts", "gears"]
    assert not has_placeholders(catalog), "a placeholder reached the consumer"
    for dataset in catalog["dataset"]:
        offer = dataset["hasPolicy"][0]
        assert offer["assigner"] == PROVIDER
        found = find_offer(ctx, MEMBER, offer["@id"])
        assert found is not None and found.asset_id == dataset["@id"]
        # the consumer sends the filled offer back: the provider recognises it as the offer it made
        assert offers_match({**offer, "target": dataset["@id"]}, found.offer, found.asset_id)


def test_rule_level_placeholders_become_the_asset_and_the_provider(ctx: Ctx) -> None:
    members = (LIBRARY / "traceability-members.ttl").read_text("utf-8")
    _publish(ctx, members, RULE_LEVEL, ("gears",))
    offer = build_catalog(ctx, MEMBER)["dataset"][0]["hasPolicy"][0]
    assert not has_placeholders(offer)
    assert offer["permission"][0]["duty"][0]["target"] == "gears"  # the duty's own target, filled too
    found = find_offer(ctx, MEMBER, offer["@id"])
    assert found is not None
    rules = found.policy.rules
    targets = {t.iri for r in rules for t in (*r.targets, *(t for d in r.duties for t in d.targets))}
    assert targets and all(str(t).endswith("gears") for t in targets)  # JSON-LD may resolve a bare id
    assert {p.iri for r in rules for p in r.assigners} == {PROVIDER}
    assert offers_match({**offer, "target": "gears"}, found.offer, "gears")
    # an offer sent back with the template's placeholder instead is not the offer that was made
    unfilled = json.loads(json.dumps(offer).replace('"gears"', f'"{ASSET_PLACEHOLDER}"'))
    assert not offers_match({**unfilled, "target": "gears"}, found.offer, "gears")
    assert parse_offer({**offer, "target": "gears"}).uid == offer["@id"]
