"""Consumer-side catalog requests against a misbehaving counterparty (a real HTTP server on loopback).

The well-behaved path between two real connectors is in test_catalog_e2e; here the counterparty refuses,
answers junk, answers too much or answers JSON that is not a DSP catalog, and every case must be a clear
502 problem. The server also records what we sent: a DCP self-issued token for its DID and the correlation id.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from sqlalchemy.orm import Session, sessionmaker

from connector.config import Settings, settings_from_mapping
from connector.http_errors import install_error_handlers
from connector.management import catalog_requests, create_catalog_management_router
from connector.storage.db import open_database
from connector.trust import DcpTrust
from identity.wallet import Wallet
from tests.pg import free_port

pytestmark = pytest.mark.anyio

KEY = "catalog-request-key"
COUNTERPARTY = "did:web:counterparty.example"
EDC_VOCAB = {"@vocab": "https://w3id.org/edc/v0.0.1/ns/"}
FAST_SCRYPT = {"n": 2**10, "r": 8, "p": 1}
VALID_CATALOG = {"@context": ["https://w3id.org/dspace/2025/1/context.jsonld"], "@id": "urn:catalog",
                 "@type": "Catalog", "participantId": COUNTERPARTY}


@dataclass
class Seen:
    headers: list[dict[str, str]] = field(default_factory=list)
    queries: list[dict[str, str]] = field(default_factory=list)
    bodies: list[Any] = field(default_factory=list)


def _counterparty(seen: Seen) -> FastAPI:
    app = FastAPI()

    async def record(request: Request) -> None:
        seen.headers.append(dict(request.headers))
        seen.queries.append(dict(request.query_params))
        raw = await request.body()
        seen.bodies.append(raw.decode() if raw else None)

    @app.post("/good/catalog/request")
    async def good(request: Request) -> JSONResponse:
        await record(request)
        return JSONResponse(VALID_CATALOG)

    @app.post("/refuse/catalog/request")
    async def refuse(request: Request) -> JSONResponse:
        await record(request)
        return JSONResponse({"@context": ["https://w3id.org/dspace/2025/1/context.jsonld"], "@type": "CatalogError",
                             "code": "403", "reason": ["members only"]}, status_code=403)

    @app.post("/junk/catalog/request")
    async def junk(request: Request) -> PlainTextResponse:
        await record(request)
        return PlainTextResponse("<html>surprise</html>")

    @app.post("/invalid/catalog/request")
    async def invalid(request: Request) -> JSONResponse:
        await record(request)
        return JSONResponse({"@type": "Catalog", "dataset": "not a list"})

    @app.post("/huge/catalog/request")
    async def huge(request: Request) -> JSONResponse:
        await record(request)
        return JSONResponse({**VALID_CATALOG, "padding": "x" * 5000})

    @app.get("/good/catalog/datasets/{dataset_id:path}")
    async def missing(dataset_id: str, request: Request) -> JSONResponse:
        await record(request)
        return JSONResponse({"@type": "CatalogError", "code": "404", "reason": [f"no dataset {dataset_id}"]},
                            status_code=404)

    return app


@pytest.fixture(scope="module")
def counterparty() -> Iterator[tuple[str, Seen]]:
    seen = Seen()
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(_counterparty(seen), host="127.0.0.1", port=port, log_level="warning",
                                           timeout_graceful_shutdown=1, timeout_keep_alive=1))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "counterparty server did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}", seen
    finally:
        server.should_exit = True
        server.force_exit = True  # idle keep-alive connections need not be waited for
        thread.join(timeout=10)


@dataclass
class Ctx:
    settings: Settings
    sessions: sessionmaker[Session]
    wallet: Wallet
    http: httpx.AsyncClient
    trust: Any = None

    @property
    def did(self) -> str:
        return self.wallet.did


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    settings = settings_from_mapping({"participant": {"name": "consumer", "did": "did:web:consumer.example"},
                                      "management": {"api_key": KEY}})
    engine, sessions = open_database(f"sqlite:///{tmp_path / 'consumer.db'}")
    wallet = Wallet.init(tmp_path / "wallet", "did:web:consumer.example", "pw", scrypt_params=FAST_SCRYPT)
    async with httpx.AsyncClient(timeout=10) as http:
        ctx = Ctx(settings, sessions, wallet, http)
        ctx.trust = DcpTrust(ctx)  # type: ignore[arg-type]  # the real DCP signer over this wallet
        app = FastAPI()
        install_error_handlers(app)
        app.include_router(create_catalog_management_router(ctx), prefix="/management")
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://mgmt", headers={"X-Api-Key": KEY}) as c:
            yield c
    wallet.close()
    engine.dispose()


def _request(address: str, **extra: Any) -> dict[str, Any]:
    return {"@context": EDC_VOCAB, "@type": "CatalogRequest", "counterPartyAddress": address,
            "counterPartyId": COUNTERPARTY, "protocol": "dataspace-protocol-http:2025-1", **extra}


async def test_a_good_answer_is_returned_and_the_request_is_signed(client: httpx.AsyncClient,
                                                                  counterparty: tuple[str, Seen]) -> None:
    base, seen = counterparty
    before = len(seen.headers)
    r = await client.post("/management/v3/catalog/request", headers={"X-Correlation-Id": "urn:test:trace-1"},
                          json=_request(base + "/good", querySpec={"offset": 20, "limit": 10, "filterExpression": [
                              {"operandLeft": "category", "operator": "=", "operandRight": "quality"}]}))
    assert r.status_code == 200, r.text
    assert r.json() == VALID_CATALOG
    headers, query = seen.headers[before], seen.queries[before]
    assert headers["x-correlation-id"] == "urn:test:trace-1"
    assert query == {"offset": "20", "limit": "10"}
    scheme, _, token = headers["authorization"].partition(" ")
    claims = jwt.decode(token, options={"verify_signature": False})
    assert scheme == "Bearer" and claims["aud"] == COUNTERPARTY and claims["iss"] == "did:web:consumer.example"
    message = json.loads(seen.bodies[before])
    assert message["@type"] == "CatalogRequestMessage"
    assert message["filter"] == [{"@type": "Criterion", "operandLeft": "category", "operator": "=",
                                  "operandRight": "quality"}]


@pytest.mark.parametrize("path, code, words", [
    ("/refuse", "counterparty_refused", "403: members only"),
    ("/junk", "counterparty_answer_invalid", "usable JSON"),
    ("/invalid", "counterparty_answer_invalid", "invalid Catalog"),
    ("/nothing-here", "counterparty_refused", "404"),
])
async def test_misbehaving_counterparties_are_502(client: httpx.AsyncClient, counterparty: tuple[str, Seen],
                                                  path: str, code: str, words: str) -> None:
    r = await client.post("/management/v3/catalog/request", json=_request(counterparty[0] + path))
    assert r.status_code == 502 and r.headers["content-type"] == "application/problem+json", r.text
    assert r.json()["code"] == code and words in r.json()["detail"], r.json()


async def test_an_oversized_answer_is_refused(client: httpx.AsyncClient, counterparty: tuple[str, Seen],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(catalog_requests, "MAX_ANSWER_BYTES", 4096)
    r = await client.post("/management/v3/catalog/request", json=_request(counterparty[0] + "/huge"))
    assert r.status_code == 502 and r.json()["code"] == "counterparty_answer_too_large"


async def test_a_missing_dataset_names_the_counterpartys_reason(client: httpx.AsyncClient,
                                                                counterparty: tuple[str, Seen]) -> None:
    r = await client.post("/management/v3/catalog/dataset/request", json={
        "@context": EDC_VOCAB, "@type": "DatasetRequest", "@id": "urn:asset/with slash",
        "counterPartyAddress": counterparty[0] + "/good", "counterPartyId": COUNTERPARTY})
    assert r.status_code == 502
    assert "404: no dataset urn:asset/with slash" in r.json()["detail"]
    r = await client.post("/management/v3/catalog/dataset/request", json={
        "@context": EDC_VOCAB, "counterPartyAddress": counterparty[0] + "/good", "counterPartyId": COUNTERPARTY})
    assert r.status_code == 400 and r.json()["code"] == "dataset_id_missing"


async def test_a_counterparty_id_that_is_not_a_did_is_refused(client: httpx.AsyncClient,
                                                              counterparty: tuple[str, Seen]) -> None:
    r = await client.post("/management/v3/catalog/request",
                          json={**_request(counterparty[0] + "/good"), "counterPartyId": "provider-a"})
    assert r.status_code == 400 and r.json()["code"] == "counterparty_id_invalid"

