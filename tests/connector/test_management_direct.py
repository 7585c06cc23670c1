"""Management routes served directly (connector.management.common.ManagementApp) answer as FastAPI does.

The management app as built and a plain FastAPI app with the same routers run on real loopback servers over
one connector context; every case is sent to both and the answers compared (status, media type, Allow,
Location, body; creations by shape, as each creates its own process).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from connector.app import build_management_app
from connector.context import ConnectorContext
from connector.http_errors import install_error_handlers
from connector.management import create_router as create_management_router
from connector.management import negotiations, transfers
from connector.management.common import DirectRoute, ManagementApp
from connector.storage.tables_protocol import TransferRow
from policies.errors import PolicyError
from tests.connector.test_management_negotiations import KEY, OFFER, PROVIDER, PROVIDER_DID, REQUEST, TRANSFER
from tests.connector.test_protocol_support import context, make_settings, serve

NEGOTIATIONS = "/management/v3/contractnegotiations"
TRANSFERS = "/management/v3/transferprocesses"
LIMITS = {"max_body_bytes": 4096, "max_json_depth": 8}
DEEP: Any = {"x": 1}
for _ in range(10):
    DEEP = {"x": DEEP}
QUERY = {"@context": {"@vocab": "https://w3id.org/edc/v0.0.1/ns/"}, "@type": "QuerySpec",
         "filterExpression": [{"operandLeft": "type", "operator": "=", "operandRight": "CONSUMER"}]}
BEARER = {"Authorization": f"Bearer {KEY}"}
NO_KEY: dict[str, str] = {}

# (method, path, body: a JSON value, raw bytes or None, headers); {n} and {t} are a stored negotiation and transfer
CASES: list[tuple[str, str, Any, dict[str, str] | None]] = [
    ("POST", NEGOTIATIONS, REQUEST, None),
    ("POST", NEGOTIATIONS, REQUEST, BEARER),
    ("POST", NEGOTIATIONS, REQUEST, NO_KEY),
    ("POST", NEGOTIATIONS, REQUEST, {"X-Api-Key": "wrong"}),
    ("POST", NEGOTIATIONS, b"{not json", None),
    ("POST", NEGOTIATIONS, {**REQUEST, "pad": "x" * 5000}, None),
    ("POST", NEGOTIATIONS, DEEP, None),
    ("POST", NEGOTIATIONS, [REQUEST], None),
    ("POST", NEGOTIATIONS, {**REQUEST, "protocol": "ids"}, None),
    ("POST", NEGOTIATIONS, {**REQUEST, "policy": {**OFFER, "@context": "urn:no:such:context"}}, None),
    ("POST", NEGOTIATIONS + "/request", QUERY, None),
    ("POST", NEGOTIATIONS + "/request", None, None),
    ("POST", NEGOTIATIONS + "/request", {**QUERY, "sortField": "nothing"}, None),
    ("POST", NEGOTIATIONS + "/request", QUERY, NO_KEY),
    ("GET", NEGOTIATIONS + "/{n}", None, None),
    ("GET", NEGOTIATIONS + "/{n}/state", None, None),
    ("GET", NEGOTIATIONS + "/urn:uuid:nothing", None, None),
    ("GET", NEGOTIATIONS + "/urn:uuid:nothing/state", None, NO_KEY),
    ("HEAD", NEGOTIATIONS + "/{n}", None, None),  # not served directly: FastAPI's
    ("PUT", NEGOTIATIONS + "/request", QUERY, None),  # another method: 405
    ("GET", NEGOTIATIONS, None, None),
    ("POST", NEGOTIATIONS + "/request/", QUERY, None),  # trailing slash: FastAPI's redirect
    ("POST", NEGOTIATIONS + "/{n}/terminate", {"reason": "changed my mind"}, None),
    ("GET", NEGOTIATIONS + "/{n}/agreement", None, None),
    ("POST", TRANSFERS, TRANSFER, None),
    ("POST", TRANSFERS, {**TRANSFER, "transferType": 7}, None),
    ("POST", TRANSFERS, TRANSFER, NO_KEY),
    ("POST", TRANSFERS + "/request", QUERY, None),
    ("POST", TRANSFERS + "/request", b"[1, 2", None),
    ("GET", TRANSFERS + "/{t}", None, None),
    ("GET", TRANSFERS + "/{t}/state", None, None),
    ("GET", TRANSFERS + "/urn:uuid:nothing", None, None),
    ("DELETE", TRANSFERS + "/{t}", None, None),
    ("GET", "/management/v3/assets/nothing", None, None),
]


@pytest.fixture(scope="module")
def apps(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ConnectorContext, str, str, dict[str, str]]]:
    """(context, base URL of the management app as built, of the same routers on plain FastAPI, stored ids)."""
    with context(tmp_path_factory.mktemp("direct"), limits=LIMITS) as ctx:
        plain = FastAPI()
        install_error_handlers(plain)
        plain.include_router(create_management_router(ctx), prefix="/management")
        with serve(build_management_app(ctx)) as direct_url, serve(plain) as plain_url:
            created = httpx.post(direct_url + NEGOTIATIONS, json=REQUEST, headers={"X-Api-Key": KEY}, timeout=30)
            assert created.status_code == 200, created.text
            now = datetime.now(UTC)
            with ctx.sessions.begin() as session:
                session.add(TransferRow(id="urn:uuid:t-1", role="consumer", state="REQUESTED",
                                        consumer_pid="urn:uuid:t-1", agreement_id="urn:uuid:a-1",
                                        transfer_type="HttpData-PULL", counterparty_did=PROVIDER_DID,
                                        counterparty_address=PROVIDER, approval="auto", created_at=now,
                                        updated_at=now))
            yield ctx, direct_url, plain_url, {"n": created.json()["@id"], "t": "urn:uuid:t-1"}


def _send(base: str, method: str, path: str, body: Any, headers: dict[str, str] | None) -> httpx.Response:
    sent = {"X-Api-Key": KEY} if headers is None else dict(headers)
    content = None if body is None else body if isinstance(body, bytes) else json.dumps(body).encode()
    if content is not None:
        sent["Content-Type"] = "application/json"
    return httpx.request(method, base + path, content=content, headers=sent, timeout=30, follow_redirects=False)


def _comparable(path: str, body: Any) -> Any:
    """An IdResponse with its own id and time left out (each app started its own process)."""
    if isinstance(body, dict) and body.get("@type") == "IdResponse":
        return {**body, "@id": "<new>", "createdAt": "<now>"}
    return body


@pytest.mark.parametrize(("method", "path", "body", "headers"), CASES,
                         ids=[f"{m} {p} #{i}" for i, (m, p, _, _) in enumerate(CASES)])
def test_the_direct_path_answers_as_fastapi_does(apps: tuple[ConnectorContext, str, str, dict[str, str]],
                                                 method: str, path: str, body: Any,
                                                 headers: dict[str, str] | None) -> None:
    _, direct_url, plain_url, ids = apps
    path = path.format(**ids)
    if path.endswith("/terminate"):  # a step changes the process: compare on two fresh ones
        pair = [_send(url, "POST", NEGOTIATIONS, REQUEST, None).json()["@id"] for url in (direct_url, plain_url)]
        direct = _send(direct_url, method, path.replace(ids["n"], pair[0]), body, headers)
        plain = _send(plain_url, method, path.replace(ids["n"], pair[1]), body, headers)
    else:
        direct = _send(direct_url, method, path, body, headers)
        plain = _send(plain_url, method, path, body, headers)
    assert direct.status_code == plain.status_code, direct.text
    assert direct.headers.get("content-type") == plain.headers.get("content-type")
    assert direct.headers.get("allow") == plain.headers.get("allow")
    assert direct.headers.get("location", "").replace(direct_url, "") == \
        plain.headers.get("location", "").replace(plain_url, "")
    if method != "HEAD" and direct.content:
        assert _comparable(path, direct.json()) == _comparable(path, plain.json())


def test_the_cases_are_about_what_they_say(apps: tuple[ConnectorContext, str, str, dict[str, str]]) -> None:
    """The comparison above compares the intended answers, not two equal crashes."""
    _, direct_url, _, ids = apps
    answers = []
    for method, path, body, headers in CASES[:14]:
        response = _send(direct_url, method, path.format(**ids), body, headers)
        answers.append((response.status_code, response.json().get("code") if response.status_code >= 400 else None))
    assert answers == [(200, None), (200, None), (401, "api_key_missing"), (401, "api_key_invalid"),
                       (400, "json_invalid"), (413, "body_too_large"), (400, "json_too_deep"),
                       (400, "request_invalid"), (400, "protocol_unsupported"), (400, "policy_invalid"),
                       (200, None), (200, None), (400, "query_sort_invalid"), (401, "api_key_missing")]


class _Counting:
    """An ASGI middleware counting the requests that reach FastAPI's stack."""

    def __init__(self, app: ASGIApp, seen: list[str]) -> None:
        self.app, self.seen = app, seen

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            self.seen.append(f"{scope['method']} {scope['path']}")
        await self.app(scope, receive, send)


def test_the_process_routes_skip_fastapi_and_everything_else_takes_it(tmp_path: Path) -> None:
    seen: list[str] = []
    with context(tmp_path) as ctx:
        app = build_management_app(ctx)
        app.add_middleware(_Counting, seen=seen)
        with serve(app) as base:
            for method, path, body in (("POST", NEGOTIATIONS + "/request", QUERY), ("GET", NEGOTIATIONS + "/x", None),
                                       ("GET", NEGOTIATIONS + "/x/state", None), ("POST", TRANSFERS, TRANSFER),
                                       ("POST", TRANSFERS + "/request", QUERY), ("GET", TRANSFERS + "/x", None),
                                       ("GET", TRANSFERS + "/x/state", None)):
                assert _send(base, method, path, body, None).status_code in (200, 404), path
            assert _send(base, "GET", "/health", None, None).status_code == 200
            assert _send(base, "POST", NEGOTIATIONS + "/x/verify", None, None).status_code == 404
            assert _send(base, "HEAD", TRANSFERS + "/x", None, None).status_code == 405  # FastAPI: no HEAD
    assert seen == ["GET /health", f"POST {NEGOTIATIONS}/x/verify", f"HEAD {TRANSFERS}/x"]


def test_every_direct_route_is_one_fastapi_serves_with_the_same_endpoint(tmp_path: Path) -> None:
    with context(tmp_path) as ctx:
        app = build_management_app(ctx)
        documented = app.openapi()["paths"]
        for module in (negotiations, transfers):
            for route in module.direct_routes(ctx):
                assert route.method.lower() in documented["/management" + route.path], route.path
        plain = FastAPI(title=app.title)
        install_error_handlers(plain)
        plain.include_router(create_management_router(ctx), prefix="/management")
        assert {p: v for p, v in documented.items() if p.startswith("/management")} == plain.openapi()["paths"]


def test_a_direct_route_checks_the_key_first_and_answers_errors_as_the_handlers_do(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    calls: list[str] = []

    async def broken(request: Request) -> Response:
        calls.append("broken")
        raise RuntimeError("a bug")

    async def refusing(request: Request, item: str) -> Response:
        calls.append(item)
        raise PolicyError("no such operator", code="operator_unknown")

    async def answering(request: Request, item: str) -> Response:
        return JSONResponse({"item": item, "path": request.url.path})

    def app_with(settings_key: str | None) -> ManagementApp:
        app = ManagementApp()
        install_error_handlers(app)
        extra = {"management": {"api_key": settings_key}} if settings_key else {"management": {}}
        app.serve_directly([DirectRoute("POST", "/broken", broken), DirectRoute("POST", "/items/{item}", refusing),
                            DirectRoute("GET", "/items/{item}", answering)],
                           settings=make_settings(tmp_path, **extra), prefix="/m")
        return app

    with serve(app_with(KEY)) as base, caplog.at_level(logging.ERROR, logger="pactum.connector.http"):
        anonymous = httpx.post(base + "/m/broken", timeout=10)
        failed = httpx.post(base + "/m/broken", headers={"X-Api-Key": KEY}, timeout=10)
        refused = httpx.post(base + "/m/items/a%20b", headers={"X-Api-Key": KEY}, timeout=10)
        answered = httpx.get(base + "/m/items/x%20y", headers={"X-Api-Key": KEY}, timeout=10)
        elsewhere = httpx.get(base + "/items/x", headers={"X-Api-Key": KEY}, timeout=10)
    assert anonymous.status_code == 401 and anonymous.json()["code"] == "api_key_missing"
    assert failed.status_code == 500 and failed.headers["content-type"] == "application/problem+json"
    assert failed.json()["code"] == "internal_error"
    assert any("a bug" in r.getMessage() and r.exc_info for r in caplog.records)
    assert refused.status_code == 400 and refused.json()["code"] == "policy_operator_unknown"
    assert answered.json() == {"item": "x y", "path": "/m/items/x y"}
    assert elsewhere.status_code == 404  # only below the prefix
    assert calls == ["broken", "a b"]
    with serve(app_with(None)) as base:
        unconfigured = httpx.post(base + "/m/broken", headers={"X-Api-Key": KEY}, timeout=10)
    assert unconfigured.status_code == 401 and unconfigured.json()["code"] == "api_key_not_configured"
    assert calls == ["broken", "a b"]
