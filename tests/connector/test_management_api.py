"""The management API over HTTP (ASGI): auth, EDC v3 shapes, problem+json, limits, nothing stored on errors."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.orm import Session, sessionmaker

from connector.config import Settings, settings_from_mapping
from connector.http_errors import install_error_handlers
from connector.management import create_catalog_management_router
from connector.storage.db import open_database

pytestmark = pytest.mark.anyio

KEY = "s3cret-management-key"
EDC_VOCAB = {"@vocab": "https://w3id.org/edc/v0.0.1/ns/"}
ODRL = "http://www.w3.org/ns/odrl.jsonld"
TURTLE = """@prefix odrl: <http://www.w3.org/ns/odrl/2/> .
<urn:test:turtle> a odrl:Set ; odrl:permission [ odrl:action odrl:use ;
  odrl:constraint [ odrl:leftOperand odrl:purpose ; odrl:operator odrl:eq ; odrl:rightOperand "research" ] ] ."""


@dataclass
class Ctx:
    settings: Settings
    sessions: sessionmaker[Session]
    did: str = "did:web:provider.example"


def _settings(**extra: Any) -> Settings:
    return settings_from_mapping({"participant": {"name": "provider"}, "management": {"api_key": KEY},
                                  "limits": {"max_body_bytes": 16384, "max_json_depth": 16},
                                  "data_sources": [{"name": "files", "type": "folder", "path": "/srv/files"}],
                                  **extra})


def _app(settings: Settings, sessions: sessionmaker[Session]) -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)
    app.include_router(create_catalog_management_router(Ctx(settings, sessions)), prefix="/management")
    return app


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def sessions(tmp_path: Any) -> Iterator[sessionmaker[Session]]:
    engine, factory = open_database(f"sqlite:///{tmp_path / 'mgmt.db'}")
    yield factory
    engine.dispose()


@pytest.fixture
async def client(sessions: sessionmaker[Session]) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=_app(_settings(), sessions))
    async with httpx.AsyncClient(transport=transport, base_url="http://mgmt", headers={"X-Api-Key": KEY}) as c:
        yield c


def _asset(asset_id: str = "asset-1", **props: Any) -> dict[str, Any]:
    return {"@context": EDC_VOCAB, "@id": asset_id, "properties": {"name": asset_id, **props},
            "dataAddress": {"type": "HttpData", "baseUrl": "https://backend.example/data"}}


def _policy(pid: str = "p1", constraint: dict[str, Any] | None = None) -> dict[str, Any]:
    permission: dict[str, Any] = {"action": "use"}
    if constraint:
        permission["constraint"] = [constraint]
    return {"@context": EDC_VOCAB, "@id": pid, "@type": "PolicyDefinition",
            "policy": {"@context": ODRL, "@type": "Set", "permission": [permission]}}


def _problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["status"] == status and body["code"] == code, body
    assert body["type"] == f"urn:pactum:error:{code}" and body["title"] and body["detail"]
    return body


# ---- auth ------------------------------------------------------------------------------------------------

async def test_api_key_is_required_and_compared(sessions: sessionmaker[Session]) -> None:
    transport = httpx.ASGITransport(app=_app(_settings(), sessions))
    async with httpx.AsyncClient(transport=transport, base_url="http://mgmt") as c:
        _problem(await c.get("/management/v3/assets/x"), 401, "api_key_missing")
        _problem(await c.get("/management/v3/assets/x", headers={"X-Api-Key": "wrong"}), 401, "api_key_invalid")
        _problem(await c.get("/management/v3/assets/x", headers={"Authorization": "Basic " + KEY}), 401,
                 "api_key_missing")
        _problem(await c.post("/management/v3/assets", json=_asset(), headers={"X-Api-Key": KEY[:-1]}), 401,
                 "api_key_invalid")
        for headers in ({"x-api-key": KEY}, {"X-API-KEY": KEY}, {"Authorization": f"Bearer {KEY}"},
                        {"authorization": f"bearer {KEY}"}):
            _problem(await c.get("/management/v3/assets/x", headers=headers), 404, "asset_not_found")
        assert (await c.get("/management/openapi.json")).status_code == 200  # the description is public


async def test_without_a_configured_key_everything_is_refused(sessions: sessionmaker[Session]) -> None:
    settings = settings_from_mapping({"participant": {"name": "provider"}})
    transport = httpx.ASGITransport(app=_app(settings, sessions))
    async with httpx.AsyncClient(transport=transport, base_url="http://mgmt") as c:
        for headers in ({}, {"X-Api-Key": ""}, {"X-Api-Key": "anything"}):
            _problem(await c.get("/management/v3/assets/x", headers=headers), 401, "api_key_not_configured")


# ---- assets ----------------------------------------------------------------------------------------------

async def test_asset_crud_in_edc_shapes(client: httpx.AsyncClient) -> None:
    created = await client.post("/management/v3/assets", json=_asset(dataClass="important", category="quality"))
    assert created.status_code == 200, created.text
    body = created.json()
    assert body["@type"] == "IdResponse" and body["@id"] == "asset-1" and body["createdAt"] > 1_600_000_000_000
    assert body["@context"]["@vocab"] == "https://w3id.org/edc/v0.0.1/ns/"
    _problem(await client.post("/management/v3/assets", json=_asset()), 409, "asset_exists")

    got = (await client.get("/management/v3/assets/asset-1")).json()
    assert got["@id"] == "asset-1" and got["@type"] == "Asset" and got["createdAt"] == body["createdAt"]
    assert got["properties"] == {"name": "asset-1", "dataClass": "important", "category": "quality", "id": "asset-1"}
    assert got["dataAddress"] == {"@type": "DataAddress", "type": "HttpData",
                                  "baseUrl": "https://backend.example/data"}
    assert set(got["@context"]) >= {"@vocab", "edc", "odrl", "dcat", "dct", "dspace"}

    updated = _asset(dataClass="general")
    assert (await client.put("/management/v3/assets/asset-1", json=updated)).status_code == 204
    assert (await client.put("/management/v3/assets", json=updated)).status_code == 204
    assert (await client.get("/management/v3/assets/asset-1")).json()["properties"]["dataClass"] == "general"
    _problem(await client.put("/management/v3/assets/other", json=updated), 400, "id_mismatch")
    _problem(await client.put("/management/v3/assets", json=_asset("ghost")), 404, "asset_not_found")

    assert (await client.delete("/management/v3/assets/asset-1")).status_code == 204
    _problem(await client.get("/management/v3/assets/asset-1"), 404, "asset_not_found")
    _problem(await client.delete("/management/v3/assets/asset-1"), 404, "asset_not_found")


async def test_any_spelling_of_edc_terms_is_accepted(client: httpx.AsyncClient) -> None:
    prefixed = {"@context": {"edc": "https://w3id.org/edc/v0.0.1/ns/"}, "@id": "a-prefixed",
                "edc:properties": {"edc:name": "P"},
                "edc:dataAddress": {"edc:type": "Inline", "edc:data": "x"}}
    bare = {"@id": "a-bare", "properties": {"name": "B"}, "dataAddress": {"type": "Inline", "data": "y"}}
    for body in (prefixed, bare):
        assert (await client.post("/management/v3/assets", json=body)).status_code == 200
    names = {a["@id"]: a["properties"]["name"] for a in (await client.post("/management/v3/assets/request")).json()}
    assert names == {"a-bare": "B", "a-prefixed": "P"}


async def test_asset_queries(client: httpx.AsyncClient) -> None:
    for i in range(6):
        r = await client.post("/management/v3/assets", json=_asset(f"asset-{i}", category="even" if i % 2 == 0
                                                                    else "odd", dataClass="general"))
        assert r.status_code == 200
    everything = await client.post("/management/v3/assets/request", json={"@context": EDC_VOCAB,
                                                                         "@type": "QuerySpec"})
    assert [a["@id"] for a in everything.json()] == [f"asset-{i}" for i in range(6)]
    assert all(a["@context"]["@vocab"] for a in everything.json())
    spec = {"@context": EDC_VOCAB, "@type": "QuerySpec", "offset": 1, "limit": 2, "sortField": "id",
            "sortOrder": "DESC",
            "filterExpression": [{"operandLeft": "category", "operator": "=", "operandRight": "even"}]}
    assert [a["@id"] for a in (await client.post("/management/v3/assets/request", json=spec)).json()] == \
        ["asset-2", "asset-0"]
    _problem(await client.post("/management/v3/assets/request", json={"limit": -1}), 400, "query_paging_invalid")
    _problem(await client.post("/management/v3/assets/request", json={"filterExpression": [
        {"operandLeft": "id", "operator": "regex", "operandRight": "x"}]}), 400, "query_operator_unknown")
    _problem(await client.post("/management/v3/assets/request", json={"sortField": "name"}), 400,
             "query_sort_invalid")
    _problem(await client.post("/management/v3/assets/request", json={"@type": "Asset"}), 400, "type_mismatch")
    typed = await client.post("/management/v3/assets", json={**_asset("typed"), "@type": "Asset"})
    assert typed.status_code == 200, typed.text


@pytest.mark.parametrize("body, code", [
    ({"@id": "x", "dataAddress": {"type": "Ftp"}}, "data_address_type_unknown"),
    ({"@id": "x", "dataAddress": {"type": "File", "source": "files", "path": "../../etc/passwd"}},
     "data_address_path_invalid"),
    ({"@id": "x", "dataAddress": {"type": "File", "source": "elsewhere", "path": "a.csv"}}, "data_source_unknown"),
    ({"@id": "x"}, "data_address_missing"),
    ({"@id": "", "dataAddress": {"type": "Inline", "data": "x"}}, "id_invalid"),
    ({"dataAddress": {"type": "Inline", "data": "x"}}, "id_invalid"),
    ({"@id": "x", "properties": {"dataClass": "top-secret"}, "dataAddress": {"type": "Inline", "data": "x"}},
     "asset_data_class_invalid"),
    ({"@context": "https://unpinned.example/context", "@id": "x"}, "jsonld_context_unknown"),
    ({"@context": 42, "@id": "x"}, "jsonld_invalid"),
    ([{"@id": "x"}], "body_invalid"),
    ({"@id": "x", "@type": "PolicyDefinition", "dataAddress": {"type": "Inline", "data": "x"}}, "type_mismatch"),
])
async def test_bad_assets_are_problems_and_store_nothing(client: httpx.AsyncClient, body: Any, code: str) -> None:
    _problem(await client.post("/management/v3/assets", json=body), 400, code)
    assert (await client.post("/management/v3/assets/request")).json() == []


async def test_body_limits_and_bad_json(client: httpx.AsyncClient) -> None:
    big = _asset(description="x" * 20000)
    _problem(await client.post("/management/v3/assets", json=big), 413, "body_too_large")
    deep: dict[str, Any] = {"leaf": 1}
    for _ in range(20):
        deep = {"n": deep}
    _problem(await client.post("/management/v3/assets", json=_asset(nested=deep)), 400, "json_too_deep")
    _problem(await client.post("/management/v3/assets", content=b"{not json",
                               headers={"Content-Type": "application/json"}), 400, "json_invalid")
    _problem(await client.post("/management/v3/assets", content=b"",
                               headers={"Content-Type": "application/json"}), 400, "body_missing")
    _problem(await client.post("/management/v3/assets", content=b"<asset/>",
                               headers={"Content-Type": "application/xml"}), 415, "unsupported_media_type")

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: the stream itself is cut off
        for _ in range(20):
            yield b" " * 1000

    _problem(await client.post("/management/v3/assets", content=chunks(),
                               headers={"Content-Type": "application/json"}), 413, "body_too_large")
    assert (await client.post("/management/v3/assets/request")).json() == []


async def test_unknown_routes_and_methods_are_problems(client: httpx.AsyncClient) -> None:
    _problem(await client.get("/management/v3/nothing-here"), 404, "not_found")
    _problem(await client.patch("/management/v3/assets/x"), 405, "method_not_allowed")


# ---- policy definitions ----------------------------------------------------------------------------------

async def test_policy_definitions_json_ld_and_turtle(client: httpx.AsyncClient) -> None:
    created = await client.post("/management/v3/policydefinitions", json=_policy("p1", {
        "leftOperand": "purpose", "operator": "eq", "rightOperand": "quality"}))
    assert created.status_code == 200, created.text
    assert created.json()["@type"] == "IdResponse" and created.json()["@id"] == "p1"
    got = (await client.get("/management/v3/policydefinitions/p1")).json()
    assert got["@type"] == "PolicyDefinition" and got["@id"] == "p1"
    policy = got["policy"]
    assert policy["@type"] == "odrl:Set" and policy["@id"] == "urn:pactum:policy:p1"
    permission = policy["odrl:permission"]
    assert permission["odrl:action"] == {"@id": "odrl:use"}
    assert permission["odrl:constraint"]["odrl:rightOperand"] == "quality"

    bare = {"@id": "p-bare", "policy": {"@type": "Set", "uid": "urn:x:bare", "permission": [{"action": "use"}]}}
    assert (await client.post("/management/v3/policydefinitions", json=bare)).status_code == 200
    assert (await client.get("/management/v3/policydefinitions/p-bare")).json()["policy"]["@id"] == "urn:x:bare"

    turtle = await client.post("/management/v3/policydefinitions?id=p-ttl", content=TURTLE,
                               headers={"Content-Type": "text/turtle"})
    assert turtle.status_code == 200, turtle.text
    assert turtle.json()["@id"] == "p-ttl"
    no_id = await client.post("/management/v3/policydefinitions", content=TURTLE,
                              headers={"Content-Type": "text/turtle; charset=utf-8"})
    assert no_id.json()["@id"] == "urn:test:turtle"
    _problem(await client.post("/management/v3/policydefinitions", json=_policy("p1")), 409,
             "policy_definition_exists")
    iri_id = await client.post("/management/v3/policydefinitions", content=TURTLE.replace("urn:test:turtle",
                               "https://policies.example/quality/v1"), headers={"Content-Type": "text/turtle"})
    assert iri_id.json()["@id"] == "https://policies.example/quality/v1"
    by_iri = await client.get("/management/v3/policydefinitions/https://policies.example/quality/v1")
    assert by_iri.status_code == 200 and by_iri.json()["@id"] == "https://policies.example/quality/v1"
    assert (await client.delete("/management/v3/policydefinitions/https://policies.example/quality/v1")).status_code \
        == 204

    listed = (await client.post("/management/v3/policydefinitions/request", json={"sortField": "id"})).json()
    assert [d["@id"] for d in listed] == ["p-bare", "p-ttl", "p1", "urn:test:turtle"]

    replaced = await client.put("/management/v3/policydefinitions/p1", content=TURTLE,
                                headers={"Content-Type": "text/turtle"})
    assert replaced.status_code == 204
    assert (await client.get("/management/v3/policydefinitions/p1")).json()["policy"]["@id"] == "urn:test:turtle"
    assert (await client.delete("/management/v3/policydefinitions/p1")).status_code == 204
    _problem(await client.get("/management/v3/policydefinitions/p1"), 404, "policy_definition_not_found")


@pytest.mark.parametrize("body, code, words", [
    ({"@id": "bad", "policy": {"@context": ODRL, "@type": "Set",
                               "permission": [{"constraint": [{"leftOperand": "purpose"}]}]}}, "policy_", ""),
    ({"@id": "bad", "policy": {"@context": ODRL, "@type": "Set", "permission": [{"action": "use", "constraint": [
        {"leftOperand": "https://example.org/unknownThing", "operator": "eq", "rightOperand": "x"}]}]}},
     "policy_", "unknownThing"),
    ({"@id": "bad", "policy": "not an object"}, "policy_missing", "policy"),
    ({"@id": "bad"}, "policy_missing", "policy"),
])
async def test_invalid_policies_are_400_with_the_parsers_reason(client: httpx.AsyncClient, body: Any, code: str,
                                                                words: str) -> None:
    response = await client.post("/management/v3/policydefinitions", json={"@context": EDC_VOCAB, **body})
    assert response.status_code == 400, response.text
    problem = response.json()
    assert problem["code"].startswith(code) and words in problem["detail"]
    _problem(await client.get("/management/v3/policydefinitions/bad"), 404, "policy_definition_not_found")


async def test_invalid_turtle_is_a_problem(client: httpx.AsyncClient) -> None:
    response = await client.post("/management/v3/policydefinitions?id=t", content="this is not turtle .",
                                 headers={"Content-Type": "text/turtle"})
    assert response.status_code == 400 and response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"].startswith("policy")
    _problem(await client.post("/management/v3/policydefinitions", content="",
                               headers={"Content-Type": "text/turtle"}), 400, "body_missing")


# ---- contract definitions --------------------------------------------------------------------------------

async def test_contract_definitions(client: httpx.AsyncClient) -> None:
    for pid in ("access", "contract"):
        assert (await client.post("/management/v3/policydefinitions", json=_policy(pid))).status_code == 200
    body = {"@context": EDC_VOCAB, "@id": "cd1", "accessPolicyId": "access", "contractPolicyId": "contract",
            "assetsSelector": [{"@type": "Criterion", "operandLeft": "https://w3id.org/edc/v0.0.1/ns/id",
                                "operator": "=", "operandRight": "asset-1"}]}
    created = await client.post("/management/v3/contractdefinitions", json=body)
    assert created.status_code == 200, created.text
    got = (await client.get("/management/v3/contractdefinitions/cd1")).json()
    assert got["@type"] == "ContractDefinition" and got["accessPolicyId"] == "access"
    assert got["approval"] == "auto"  # the connector's default
    assert got["assetsSelector"] == [{"@type": "Criterion", "operandLeft": "https://w3id.org/edc/v0.0.1/ns/id",
                                      "operator": "=", "operandRight": "asset-1"}]
    _problem(await client.post("/management/v3/contractdefinitions", json=body), 409, "contract_definition_exists")
    _problem(await client.delete("/management/v3/policydefinitions/access"), 409, "policy_definition_in_use")

    manual = {**body, "@id": "cd2", "approval": "manual", "assetsSelector": []}
    assert (await client.post("/management/v3/contractdefinitions", json=manual)).status_code == 200
    listed = await client.post("/management/v3/contractdefinitions/request", json={"filterExpression": [
        {"operandLeft": "approval", "operator": "=", "operandRight": "manual"}]})
    assert [(d["@id"], d["assetsSelector"]) for d in listed.json()] == [("cd2", [])]

    assert (await client.put("/management/v3/contractdefinitions", json={**manual, "approval": "auto"})).status_code \
        == 204
    assert (await client.get("/management/v3/contractdefinitions/cd2")).json()["approval"] == "auto"
    assert (await client.delete("/management/v3/contractdefinitions/cd2")).status_code == 204
    _problem(await client.get("/management/v3/contractdefinitions/cd2"), 404, "contract_definition_not_found")


@pytest.mark.parametrize("change, code", [
    ({"accessPolicyId": "missing"}, "policy_definition_unknown"),
    ({"contractPolicyId": None}, "jsonld_invalid"),
    ({"approval": "sometimes"}, "approval_invalid"),
    ({"assetsSelector": [{"operandLeft": "id", "operator": "~", "operandRight": "x"}]}, "query_operator_unknown"),
    ({"assetsSelector": ["id = x"]}, "query_criterion_invalid"),
])
async def test_bad_contract_definitions(client: httpx.AsyncClient, change: dict[str, Any], code: str) -> None:
    assert (await client.post("/management/v3/policydefinitions", json=_policy("p"))).status_code == 200
    body = {"@context": EDC_VOCAB, "@id": "cd", "accessPolicyId": "p", "contractPolicyId": "p", **change}
    body = {k: v for k, v in body.items() if v is not None}
    response = await client.post("/management/v3/contractdefinitions", json=body)
    assert response.status_code == 400, response.text
    assert response.json()["code"] == code
    assert (await client.post("/management/v3/contractdefinitions/request")).json() == []


# ---- catalog requests (input checks; the DSP round trip runs in test_catalog_e2e) ------------------------

@pytest.mark.parametrize("body, code", [
    ({"@type": "CatalogRequest"}, "jsonld_invalid"),
    ({"counterPartyAddress": "ftp://x.example"}, "counterparty_address_invalid"),
    ({"counterPartyAddress": "http://x.example", "protocol": "ids-multipart"}, "protocol_unsupported"),
])
async def test_catalog_request_input_is_checked(client: httpx.AsyncClient, body: dict[str, Any], code: str) -> None:
    _problem(await client.post("/management/v3/catalog/request", json={"@context": EDC_VOCAB, **body}), 400, code)


async def test_openapi_lists_the_management_paths(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/management/openapi.json")).json()
    paths = spec["paths"]
    for path in ("/management/v3/assets", "/management/v3/assets/request", "/management/v3/assets/{asset_id}",
                 "/management/v3/policydefinitions", "/management/v3/contractdefinitions/request",
                 "/management/v3/catalog/request", "/management/v3/catalog/dataset/request"):
        assert path in paths, path
    create = paths["/management/v3/policydefinitions"]["post"]["requestBody"]["content"]
    assert "text/turtle" in create and "example" in create["application/json"]


LIBRARY = Path(__file__).resolve().parents[2] / "policies" / "library"


@pytest.mark.parametrize("name", sorted(p.name for p in LIBRARY.iterdir() if p.suffix in (".ttl", ".jsonld")))
async def test_every_library_policy_is_accepted_and_round_trips(client: httpx.AsyncClient, name: str) -> None:
    from policies import canonical_hash, load_policy_file, parse_policy

    source = LIBRARY / name
    original = load_policy_file(source)
    if source.suffix == ".ttl":
        created = await client.post(f"/management/v3/policydefinitions?id={source.stem}",
                                    content=source.read_bytes(), headers={"Content-Type": "text/turtle"})
    else:
        created = await client.post("/management/v3/policydefinitions", json={
            "@context": EDC_VOCAB, "@id": source.stem, "policy": json.loads(source.read_text())})
    assert created.status_code == 200, created.text
    stored = (await client.get(f"/management/v3/policydefinitions/{source.stem}")).json()
    # what the API answers (EDC context, odrl: prefixes) is the same policy as the file
    again = parse_policy({"@context": stored["@context"], **stored["policy"]}, format="json-ld")
    assert canonical_hash(again) == canonical_hash(original)
