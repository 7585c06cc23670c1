"""Asset, policy-definition and contract-definition repositories on SQLite and PostgreSQL, with QuerySpecs."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy.orm import Session, sessionmaker

from connector import jsonld
from connector.assets import Asset, AssetInvalid, AssetStore, asset_from_node
from connector.config import Settings, settings_from_mapping
from connector.errors import ConflictError, NotFoundError
from connector.offers import (
    ContractDefinition,
    ContractDefinitionStore,
    DefinitionInvalid,
    PolicyDefinitionStore,
    policy_definition_from_turtle,
)
from connector.querying import Criterion, QueryError, QuerySpec, query_spec_from_json
from connector.storage.db import open_database

EDC = jsonld.EDC
OPEN_POLICY = """@prefix odrl: <http://www.w3.org/ns/odrl/2/> .
<urn:test:open> a odrl:Set ; odrl:permission [ odrl:action odrl:use ] ."""


@pytest.fixture
def settings() -> Settings:
    return settings_from_mapping({"participant": {"name": "provider"},
                                  "data_sources": [{"name": "files", "type": "folder", "path": "/srv/data"},
                                                   {"name": "greeting", "type": "inline", "data": "hello"}]})


@pytest.fixture
def sessions(database_url: str) -> Iterator[sessionmaker[Session]]:
    engine, factory = open_database(database_url)
    yield factory
    engine.dispose()


def _asset(asset_id: str, **props: object) -> Asset:
    return Asset(asset_id, {EDC + k: v for k, v in props.items()}, {},
                 {"type": "HttpData", "baseUrl": "https://data.example/x"})


def test_asset_lifecycle(sessions: sessionmaker[Session], settings: Settings) -> None:
    store = AssetStore(sessions, settings)
    created = store.create(_asset("a1", name="Brakes", dataClass="core"))
    assert created.created_at > 0
    with pytest.raises(ConflictError) as dup:
        store.create(_asset("a1"))
    assert dup.value.status == 409
    got = store.get("a1")
    assert got.data_class == "core" and got.properties[EDC + "name"] == "Brakes"
    store.update(_asset("a1", name="Brakes v2", dataClass="general"))
    assert store.get("a1").properties[EDC + "name"] == "Brakes v2"
    assert store.query(QuerySpec((Criterion("name", "=", "Brakes"),))) == []
    assert [a.id for a in store.query(QuerySpec((Criterion("name", "=", "Brakes v2"),)))] == ["a1"]
    store.delete("a1")
    with pytest.raises(NotFoundError):
        store.get("a1")
    with pytest.raises(NotFoundError):
        store.delete("a1")
    with pytest.raises(NotFoundError):
        store.update(_asset("a1"))


def test_asset_queries_filter_sort_and_page(sessions: sessionmaker[Session], settings: Settings) -> None:
    store = AssetStore(sessions, settings)
    for i, (klass, cat) in enumerate([("core", "design"), ("important", "quality"), ("general", "quality"),
                                      ("general", ["quality", "logistics"]), ("important", "design")]):
        store.create(_asset(f"asset-{i}", dataClass=klass, category=cat, rank=i, flag=i % 2 == 0))

    def ids(body: dict[str, object]) -> list[str]:
        return [a.id for a in store.query(query_spec_from_json(body))]

    assert ids({}) == [f"asset-{i}" for i in range(5)]
    assert ids({"filterExpression": [{"operandLeft": "category", "operator": "=", "operandRight": "quality"}]}) == \
        ["asset-1", "asset-2", "asset-3"]
    assert ids({"filterExpression": [
        {"operandLeft": "edc:category", "operator": "=", "operandRight": "quality"},
        {"operandLeft": EDC + "dataClass", "operator": "in", "operandRight": ["general", "core"]}]}) == \
        ["asset-2", "asset-3"]
    assert ids({"filterExpression": [{"operandLeft": "id", "operator": "like", "operandRight": "asset-%"}],
                "sortField": "id", "sortOrder": "DESC", "offset": 1, "limit": 2}) == ["asset-3", "asset-2"]
    assert ids({"filterExpression": [{"operandLeft": "dataClass", "operator": "!=", "operandRight": "general"}],
                "sortField": "dataClass"}) == ["asset-0", "asset-1", "asset-4"]
    assert ids({"filterExpression": [{"operandLeft": "flag", "operator": "=", "operandRight": True}]}) == \
        ["asset-0", "asset-2", "asset-4"]
    assert ids({"filterExpression": [{"operandLeft": "rank", "operator": "=", "operandRight": 3}]}) == ["asset-3"]
    assert ids({"filterExpression": [{"operandLeft": "https://w3id.org/edc/v0.0.1/ns/id", "operator": "=",
                                      "operandRight": "asset-4"}]}) == ["asset-4"]
    with pytest.raises(QueryError, match="cannot sort"):
        ids({"sortField": "name"})
    assert store.matches("asset-1", (Criterion("category", "=", "quality"),))
    assert not store.matches("asset-0", (Criterion("category", "=", "quality"),))
    assert store.count() == 5


@pytest.mark.parametrize("body, message", [
    ({"limit": 0}, "'limit' must be from 1"),
    ({"limit": 5000}, "'limit' must be from 1"),
    ({"offset": -1}, "'offset' must be 0 or more"),
    ({"offset": "ten"}, "'offset' must be a whole number"),
    ({"sortOrder": "UP"}, "'sortOrder' must be ASC or DESC"),
    ({"filterExpression": [{"operandLeft": "id", "operator": "~", "operandRight": "x"}]}, "operator '~'"),
    ({"filterExpression": [{"operator": "=", "operandRight": "x"}]}, "needs 'operandLeft'"),
    ({"filterExpression": [{"operandLeft": "id", "operator": "="}]}, "needs 'operandRight'"),
])
def test_bad_query_specs_are_clear_errors(body: dict[str, object], message: str) -> None:
    with pytest.raises(QueryError, match=message) as info:
        query_spec_from_json(body)
    assert info.value.status == 400


@pytest.mark.parametrize("address, code", [
    ({"type": "Ftp"}, "data_address_type_unknown"),
    ({"type": "HttpData"}, "data_address_invalid"),
    ({"type": "HttpData", "baseUrl": "file:///etc/passwd"}, "data_address_invalid"),
    ({"type": "HttpData", "baseUrl": "https://x.example", "proxyPath": "maybe"}, "data_address_invalid"),
    ({"type": "File", "source": "nowhere", "path": "a.csv"}, "data_source_unknown"),
    ({"type": "File", "source": "greeting", "path": "a.csv"}, "data_source_mismatch"),
    ({"type": "File", "source": "files", "path": "../etc/passwd"}, "data_address_path_invalid"),
    ({"type": "File", "source": "files", "path": "/etc/passwd"}, "data_address_path_invalid"),
    ({"type": "Inline"}, "data_address_invalid"),
])
def test_bad_data_addresses_are_refused(settings: Settings, address: dict[str, object], code: str) -> None:
    node = jsonld.expand_one({"@id": "x", "dataAddress": address})
    with pytest.raises(AssetInvalid) as info:
        asset_from_node(node, settings)
    assert info.value.code == code


def test_good_data_addresses_and_pactum_properties(settings: Settings) -> None:
    for address in ({"type": "HttpData", "baseUrl": "https://x.example/api", "proxyPath": "true"},
                    {"type": "File", "source": "files", "path": "parts/brakes.csv"},
                    {"type": "Inline", "data": "a,b\n1,2"}, {"type": "Inline", "source": "greeting"}):
        node = jsonld.expand_one({"@id": "x", "properties": {"dataClass": "important", "category": ["a", "b"],
                                                             "jurisdiction": "DE"}, "dataAddress": address})
        asset = asset_from_node(node, settings)
        assert asset.data_address["type"] == address["type"]
        facts = asset.policy_facts()
        assert facts["dataClass"] == "important" and facts["category"] == ["a", "b"] and facts["origin"] == "DE"


@pytest.mark.parametrize("props, code", [
    ({"dataClass": "secret"}, "asset_data_class_invalid"),
    ({"category": []}, "asset_category_invalid"),
    ({"jurisdiction": "Germany"}, "asset_jurisdiction_invalid"),
])
def test_bad_pactum_properties(settings: Settings, props: dict[str, object], code: str) -> None:
    node = jsonld.expand_one({"@id": "x", "properties": props, "dataAddress": {"type": "Inline", "data": "x"}})
    with pytest.raises(AssetInvalid) as info:
        asset_from_node(node, settings)
    assert info.value.code == code


def test_policy_and_contract_definitions(sessions: sessionmaker[Session]) -> None:
    policies = PolicyDefinitionStore(sessions)
    contracts = ContractDefinitionStore(sessions)
    created = policies.create(policy_definition_from_turtle(OPEN_POLICY, definition_id="open"))
    assert created.policy_uid == "urn:test:open" and len(created.policy_hash) == 64
    assert policies.get("open").parsed().uid == "urn:test:open"
    with pytest.raises(ConflictError):
        policies.create(policy_definition_from_turtle(OPEN_POLICY, definition_id="open"))
    with pytest.raises(DefinitionInvalid, match="no such policy definition"):
        contracts.create(ContractDefinition("cd", "open", "missing"))
    selector = (Criterion("category", "=", "quality"), Criterion("dataClass", "in", ["general", "important"]))
    contracts.create(ContractDefinition("cd", "open", "open", selector, "manual"))
    got = contracts.get("cd")
    assert got.assets_selector == selector and got.approval == "manual"
    with pytest.raises(ConflictError, match="used by contract definition 'cd'"):
        policies.delete("open")
    assert [c.id for c in contracts.query(query_spec_from_json(
        {"filterExpression": [{"operandLeft": "approval", "operator": "=", "operandRight": "manual"}]}))] == ["cd"]
    contracts.delete("cd")
    policies.delete("open")
    with pytest.raises(NotFoundError):
        policies.get("open")
    with pytest.raises(NotFoundError):
        contracts.get("cd")


def test_an_asset_under_a_provider_agreement_cannot_be_deleted(sessions: sessionmaker[Session],
                                                               settings: Settings) -> None:
    from datetime import UTC, datetime

    from connector.storage.tables_protocol import AgreementRow

    store = AssetStore(sessions, settings)
    store.create(_asset("agreed"))
    store.create(_asset("consumed"))
    with sessions.begin() as session:
        for agreement_id, asset_id, role in (("agr-1", "agreed", "provider"), ("agr-2", "consumed", "consumer")):
            session.add(AgreementRow(id=agreement_id, negotiation_id="n", role=role, asset_id=asset_id,
                                     assigner="did:web:p", assignee="did:web:c", policy="{}", policy_hash="0" * 64,
                                     signed_at=datetime.now(UTC), counterparty_address="http://c",
                                     counterparty_did="did:web:c"))
    with pytest.raises(ConflictError, match="agr-1") as info:
        store.delete("agreed")
    assert info.value.code == "asset_in_use"
    assert store.get("agreed").id == "agreed"
    store.delete("consumed")  # an agreement where we are the consumer does not pin our own asset


def test_concurrent_creates_of_one_id_give_one_winner(sessions: sessionmaker[Session], settings: Settings) -> None:
    from concurrent.futures import ThreadPoolExecutor

    store = AssetStore(sessions, settings)

    def attempt(n: int) -> str:
        try:
            store.create(_asset("raced", n=n))
            return "created"
        except ConflictError:
            return "conflict"

    with ThreadPoolExecutor(max_workers=6) as pool:
        outcomes = sorted(pool.map(attempt, range(6)))
    assert outcomes == ["conflict"] * 5 + ["created"]
    assert store.count() == 1


def test_private_properties_are_queryable_only_by_name(sessions: sessionmaker[Session], settings: Settings) -> None:
    store = AssetStore(sessions, settings)
    store.create(Asset("p1", {EDC + "owner": "public-team"}, {EDC + "owner": "secret-team"},
                       {"type": "Inline", "data": "x"}))
    private = query_spec_from_json({"filterExpression": [
        {"operandLeft": "privateProperties.'owner'", "operator": "=", "operandRight": "secret-team"}]})
    public = query_spec_from_json({"filterExpression": [
        {"operandLeft": "owner", "operator": "=", "operandRight": "secret-team"}]})
    assert [a.id for a in store.query(private)] == ["p1"]
    assert store.query(public) == []


LIKE_CASES = [
    ("like", "Bra%", ["Brakes"]),
    ("like", "bra%", ["brackets"]),
    ("like", "%kes", ["Brakes", "spikes"]),
    ("like", "_rakes", ["Brakes"]),
    ("like", "100\\%%", ["100% steel"]),
    ("like", "a\\_b", ["a_b"]),
    ("like", "a_b", ["a_b", "axb"]),
    ("like", "star*%", ["star*dust"]),
    ("like", "[x]%", ["[x] box"]),
    ("ilike", "BRA%", ["Brakes", "brackets"]),
    ("ilike", "%KES", ["Brakes", "spikes"]),
]


def test_like_means_the_same_on_every_backend(sessions: sessionmaker[Session], settings: Settings) -> None:
    store = AssetStore(sessions, settings)
    names = ["Brakes", "brackets", "spikes", "100% steel", "1000 steel", "a_b", "axb", "star*dust", "stardust",
             "[x] box", "x box"]
    for i, name in enumerate(names):
        store.create(_asset(f"n{i:02}", name=name))
    for operator, pattern, expected in LIKE_CASES:
        spec = query_spec_from_json({"filterExpression": [
            {"operandLeft": "name", "operator": operator, "operandRight": pattern}]})
        found = sorted(a.properties[EDC + "name"] for a in store.query(spec))
        assert found == sorted(expected), (operator, pattern)


def test_a_like_pattern_ending_in_an_escape_is_refused(sessions: sessionmaker[Session], settings: Settings) -> None:
    spec = query_spec_from_json({"filterExpression": [
        {"operandLeft": "name", "operator": "like", "operandRight": "abc\\"}]})
    with pytest.raises(QueryError, match="lone escape"):
        AssetStore(sessions, settings).query(spec)
