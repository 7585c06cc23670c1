"""DSP routes served directly (connector.protocol.direct) answer exactly as the same routes served by FastAPI.

Both apps run on real loopback servers over one connector context; the caller authenticates with the
connector's own self-issued tokens (a fresh one per request), so every check of the inbound path runs.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from connector.app import build_protocol_app
from connector.context import ConnectorContext
from connector.http_errors import install_error_handlers
from connector.protocol.direct import DirectRoutes, DspRoute, ProtocolApp
from connector.protocol.jsonld import DSP_CONTEXT
from connector.protocol.negotiation_routes import BINDING as NEGOTIATIONS
from connector.protocol.routers import dsp_routes, install_protocol_routes
from connector.protocol.transfer_routes import BINDING as TRANSFERS
from tests.connector.test_protocol_support import context, serve

LIMITS = {"max_body_bytes": 4096, "max_json_depth": 8}


def _message(message_type: str, **fields: Any) -> dict[str, Any]:
    return {"@context": [DSP_CONTEXT], "@type": message_type, **fields}


EVENT = _message("ContractNegotiationEventMessage", providerPid="urn:p", consumerPid="urn:c",
                 eventType="FINALIZED")
START = _message("TransferStartMessage", providerPid="urn:p", consumerPid="urn:c")
REQUEST = _message("ContractRequestMessage", consumerPid="urn:c", callbackAddress="http://127.0.0.1:1/cb",
                   offer={"@type": "Offer", "@id": "urn:offer:unknown", "target": "urn:asset:unknown",
                          "permission": [{"action": "use"}]})
DEEP: Any = {"x": 1}
for _ in range(10):
    DEEP = {"x": DEEP}

# (method, path, body: a JSON value, raw bytes or None, authenticated)
CASES: list[tuple[str, str, Any, bool]] = [
    ("POST", "/negotiations/request", REQUEST, False),
    ("POST", "/negotiations/request", b"{not json", True),
    ("POST", "/negotiations/request", {"pad": "x" * 5000}, True),
    ("POST", "/negotiations/request", DEEP, True),
    ("POST", "/negotiations/request", EVENT, True),  # the wrong @type for this path
    ("POST", "/negotiations/request", REQUEST, True),  # an offer this provider never made
    ("POST", "/negotiations/urn:p/events", EVENT, True),  # no such process
    ("POST", "/negotiations/urn:p/events", EVENT, False),
    ("POST", "/negotiations/urn:p/termination", _message("ContractNegotiationTerminationMessage",
                                                         providerPid="urn:p", consumerPid="urn:c"), True),
    ("POST", "/transfers/urn:p/start", START, True),
    ("POST", "/transfers/urn:p/start", START, False),
    ("POST", "/catalog/request", _message("CatalogRequestMessage"), True),
    ("GET", "/catalog/datasets/urn:asset:unknown/part", None, True),
    ("GET", "/negotiations/urn:p", None, True),
    ("GET", "/transfers/urn:p", None, False),
    ("GET", "/.well-known/dspace-version", None, False),
    ("PUT", "/negotiations/urn:p/events", EVENT, True),  # a DSP path, another method: 405
    ("HEAD", "/negotiations/urn:p", None, True),
    ("POST", "/negotiations/request/", REQUEST, True),  # trailing slash: FastAPI's redirect
    ("POST", "/negotiations", REQUEST, True),  # no such route: 404
]


@pytest.fixture(scope="module")
def apps(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ConnectorContext, str, str]]:
    """(context, base URL of the protocol app as built, base URL of the same routes on plain FastAPI)."""
    with context(tmp_path_factory.mktemp("direct"), limits=LIMITS) as ctx:
        plain = FastAPI()
        install_error_handlers(plain)
        install_protocol_routes(plain, ctx)
        with serve(build_protocol_app(ctx)) as direct_url, serve(plain) as plain_url:
            yield ctx, direct_url, plain_url


def _send(ctx: ConnectorContext, base: str, method: str, path: str, body: Any, authenticated: bool,
          headers: dict[str, str] | None = None) -> httpx.Response:
    sent = dict(headers or {})
    if authenticated:
        sent["Authorization"] = ctx.trust.authorization(ctx.did)
    content = None if body is None else body if isinstance(body, bytes) else json.dumps(body).encode()
    if content is not None:
        sent["Content-Type"] = "application/json"
    return httpx.request(method, base + path, content=content, headers=sent, timeout=30, follow_redirects=False)


@pytest.mark.parametrize(("method", "path", "body", "authenticated"), CASES,
                         ids=[f"{m} {p} {'auth' if a else 'anon'}" for m, p, _, a in CASES])
def test_the_direct_path_answers_as_fastapi_does(apps: tuple[ConnectorContext, str, str], method: str, path: str,
                                                 body: Any, authenticated: bool) -> None:
    ctx, direct_url, plain_url = apps
    direct = _send(ctx, direct_url, method, path, body, authenticated)
    plain = _send(ctx, plain_url, method, path, body, authenticated)
    assert direct.status_code == plain.status_code, direct.text
    assert direct.headers.get("content-type") == plain.headers.get("content-type")
    assert direct.headers.get("allow") == plain.headers.get("allow")
    assert direct.headers.get("location", "").replace(direct_url, "") == \
        plain.headers.get("location", "").replace(plain_url, "")
    if method != "HEAD" and direct.content:
        assert _comparable(direct.json()) == _comparable(plain.json())


def _comparable(body: Any) -> Any:
    """A body with the ports of the two servers' own URLs (the catalog's endpoint URL) left out."""
    return json.loads(json.dumps(body).replace("127.0.0.1", "host"))


def test_the_answers_are_the_dsp_errors_the_cases_are_about(apps: tuple[ConnectorContext, str, str]) -> None:
    """The comparison above compares refusals for the right reasons, not two equal crashes."""
    ctx, direct_url, _ = apps
    answers = []
    for method, path, body, authenticated in CASES[:11]:
        response = _send(ctx, direct_url, method, path, body, authenticated)
        answers.append((response.status_code, response.json()["code"]))
    assert answers == [(401, "token_missing"), (400, "body_not_json"), (413, "body_too_large"),
                       (400, "json_too_deep"), (400, "unexpected_type"), (400, "offer_unknown"),
                       (404, "negotiation_not_found"), (401, "token_missing"), (404, "negotiation_not_found"),
                       (404, "transfer_not_found"), (401, "token_missing")]


def test_the_correlation_id_is_echoed_on_every_route(apps: tuple[ConnectorContext, str, str]) -> None:
    ctx, direct_url, _ = apps
    for method, path in (("POST", "/negotiations/urn:p/events"), ("GET", "/health"), ("PUT", "/transfers/x/start")):
        response = _send(ctx, direct_url, method, path, EVENT, True, {"X-Correlation-Id": "corr-42"})
        assert response.headers["x-correlation-id"] == "corr-42"
    assert "x-correlation-id" not in _send(ctx, direct_url, "GET", "/health", None, False).headers


class _Counting:
    """An ASGI middleware counting the requests that reach FastAPI's stack."""

    def __init__(self, app: ASGIApp, seen: list[str]) -> None:
        self.app, self.seen = app, seen

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            self.seen.append(scope["path"])
        await self.app(scope, receive, send)


def test_dsp_messages_skip_fastapi_and_everything_else_takes_it(tmp_path: Path) -> None:
    seen: list[str] = []
    with context(tmp_path) as ctx:
        app = build_protocol_app(ctx)
        app.add_middleware(_Counting, seen=seen)
        with serve(app) as base:
            assert _send(ctx, base, "POST", "/negotiations/urn:p/events", EVENT, True).status_code == 404
            assert _send(ctx, base, "GET", "/transfers/urn:p", None, True).status_code == 404
            assert _send(ctx, base, "GET", "/health", None, False).status_code == 200
            assert _send(ctx, base, "DELETE", "/transfers/urn:p", None, True).status_code == 405
    assert seen == ["/health", "/transfers/urn:p"]


def test_every_dsp_route_is_matched_to_its_own_endpoint(tmp_path: Path) -> None:
    with context(tmp_path) as ctx:
        routes = dsp_routes(ctx)
        direct = DirectRoutes(routes)
        for route in routes:
            concrete = route.path.replace("{pid}", "urn:uuid:1").replace("{dataset_id:path}", "a/b")
            found = direct.match(route.method, concrete)
            assert found is not None and found[0] is route.endpoint, route.path
            assert found[1] in ({}, {"pid": "urn:uuid:1"}, {"dataset_id": "a/b"})
        assert direct.match("PUT", "/negotiations/urn:uuid:1/events") is None
        assert direct.match("POST", "/negotiations/urn:uuid:1/events/") is None


def test_an_endpoint_that_fails_unexpectedly_is_a_logged_500_problem(tmp_path: Path,
                                                                      caplog: pytest.LogCaptureFixture) -> None:
    async def broken(request: Request) -> Response:
        raise RuntimeError("a bug")

    async def refusing(request: Request) -> Response:
        from connector.protocol.errors import ProtocolError
        raise ProtocolError("not now", code="not_now", status=409)

    app = ProtocolApp()
    install_error_handlers(app)
    routes = [DspRoute("POST", "/broken", broken, "broken", "t"), DspRoute("POST", "/refusing", refusing, "r", "t")]
    app.serve_directly(routes)
    with serve(app) as base, caplog.at_level(logging.ERROR, logger="pactum.connector.http"):
        failed = httpx.post(base + "/broken", timeout=10)
        refused = httpx.post(base + "/refusing", timeout=10)
    assert failed.status_code == 500 and failed.headers["content-type"] == "application/problem+json"
    assert failed.json()["code"] == "internal_error"
    assert any("a bug" in r.getMessage() and r.exc_info for r in caplog.records)
    assert refused.status_code == 409 and refused.json()["code"] == "not_now"


def test_our_role_in_a_process_is_read_in_the_callers_session(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from connector.storage.tables_protocol import NegotiationRow

    with context(tmp_path) as ctx:
        now = datetime.now(UTC)
        with ctx.sessions.begin() as session:
            session.add(NegotiationRow(id="urn:ours", role="consumer", state="REQUESTED", consumer_pid="urn:ours",
                                       counterparty_did="did:web:p", counterparty_address="http://p",
                                       approval="auto", created_at=now, updated_at=now))
        with ctx.sessions() as session:
            assert NEGOTIATIONS.role_in(session, "urn:ours") == "consumer"
            assert NEGOTIATIONS.role_in(session, "urn:unknown") == "provider"
            assert session.identity_map.keys() == set()  # nothing loaded: the handler reads FOR UPDATE itself
        assert TRANSFERS.role_of(ctx, "urn:ours") == "provider"  # another table


def test_the_version_route_is_unchanged(apps: tuple[ConnectorContext, str, str]) -> None:
    ctx, direct_url, _ = apps
    body = httpx.get(direct_url + "/.well-known/dspace-version", timeout=10).json()
    assert body["protocolVersions"][0]["serviceId"] == f"{ctx.did}#dataservice"


@pytest.mark.parametrize("extra", ["1e400", str(2**60), '"\\ud800"'])
def test_a_value_without_a_canonical_form_is_a_dsp_error_not_a_crash(apps: tuple[ConnectorContext, str, str],
                                                                     extra: str) -> None:
    """The inbound log's digest is over the message's RFC 8785 form; a message that has none is refused."""
    ctx, direct_url, _ = apps
    body = json.dumps(EVENT)[:-1].encode() + b', "extra": ' + extra.encode() + b"}"
    response = _send(ctx, direct_url, "POST", "/negotiations/urn:p/events", body, True)
    assert response.status_code == 400
    assert response.json()["code"] == "message_not_canonical"
    assert response.json()["@type"] == "ContractNegotiationError"


def _nested(depth: int) -> Any:
    value: Any = "leaf"
    for _ in range(depth - 1):
        value = {"x": value}
    return value


@pytest.mark.parametrize(("depth", "code"), [(LIMITS["max_json_depth"], "unexpected_type"),
                                             (LIMITS["max_json_depth"] + 1, "json_too_deep")])
def test_the_depth_limit_holds_at_its_boundary(apps: tuple[ConnectorContext, str, str], depth: int, code: str) -> None:
    ctx, direct_url, _ = apps
    response = _send(ctx, direct_url, "POST", "/negotiations/request", _nested(depth), True)
    assert response.status_code == 400 and response.json()["code"] == code


def test_brackets_inside_strings_do_not_count_as_depth(apps: tuple[ConnectorContext, str, str]) -> None:
    ctx, direct_url, _ = apps
    response = _send(ctx, direct_url, "POST", "/negotiations/urn:p/events", {**EVENT, "note": "{[" * 40}, True)
    assert response.status_code == 404 and response.json()["code"] == "negotiation_not_found"


def test_a_direct_endpoint_runs_under_the_callers_correlation_id() -> None:
    from fastapi.responses import JSONResponse

    from connector.logs import current_correlation_id
    from connector.threads import in_thread

    async def echo(request: Request) -> Response:
        return JSONResponse({"here": current_correlation_id(), "in_thread": await in_thread(current_correlation_id)})

    app = ProtocolApp()
    app.serve_directly([DspRoute("POST", "/echo", echo, "echo", "t")])
    with serve(app) as base:
        given = httpx.post(base + "/echo", headers={"X-Correlation-Id": "corr-9"}, timeout=10)
        none = httpx.post(base + "/echo", timeout=10)
    assert given.json() == {"here": "corr-9", "in_thread": "corr-9"}
    assert given.headers["x-correlation-id"] == "corr-9"
    assert none.json() == {"here": None, "in_thread": None} and "x-correlation-id" not in none.headers
