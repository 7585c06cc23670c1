"""A scripted DSP 2025-1 counterparty for the conformance suite (test ids follow the DSP TCK).

The peer is a real participant: a did:web wallet whose MembershipCredential the test authority issued, a
DCP credential service and DID document, and DSP endpoints, all on one loopback port served by uvicorn in
a thread. It answers the connector under test (CUT) the way a counterparty would and records every message
the CUT sends, after checking it: the self-issued token (signature, ``aud`` = the peer's DID, replay), the
official DSP JSON Schema of its ``@type``, and that it arrived on the path the HTTPS binding prescribes for
that type with the peer's own process id in the path. Tests send the peer's messages with real tokens.

Every ``test_tck_*`` module shares one CUT process (``manual`` approval; contract definitions choose
``auto`` where a scenario wants it) and one peer through :func:`shared_tck`.
"""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from connector.errors import ConnectorError
from connector.protocol.schemas import validate_message
from identity.dcp.credential_service import create_credential_service_router
from identity.dcp.jti_store import JtiStore
from identity.dcp.scopes import type_scope
from identity.dcp.tokens import verify_si_token
from identity.dids import Resolver
from identity.errors import IdentityError
from identity.wallet import Wallet
from tests.e2e.conftest import FAST_SCRYPT, PASSPHRASE, Authority, Connector, free_port, make_connector
from tests.e2e.flows import EDC, publish

DSP_CONTEXT = "https://w3id.org/dspace/2025/1/context.jsonld"
LOOPBACK = ("127.0.0.1", "localhost")

# @type -> the path it must arrive on (HTTPS binding); ``{pid}`` is the receiving side's process id.
BINDING_PATHS: dict[str, tuple[str, ...]] = {
    "ContractRequestMessage": ("/negotiations/request", "/negotiations/{pid}/request"),
    "ContractOfferMessage": ("/negotiations/offers", "/negotiations/{pid}/offers"),
    "ContractAgreementMessage": ("/negotiations/{pid}/agreement",),
    "ContractAgreementVerificationMessage": ("/negotiations/{pid}/agreement/verification",),
    "ContractNegotiationEventMessage": ("/negotiations/{pid}/events",),
    "ContractNegotiationTerminationMessage": ("/negotiations/{pid}/termination",),
    "TransferRequestMessage": ("/transfers/request",),
    "TransferStartMessage": ("/transfers/{pid}/start",),
    "TransferCompletionMessage": ("/transfers/{pid}/completion",),
    "TransferSuspensionMessage": ("/transfers/{pid}/suspension",),
    "TransferTerminationMessage": ("/transfers/{pid}/termination",),
}


def new_pid() -> str:
    return f"urn:uuid:{uuid.uuid4()}"


def binding_problem(message_type: str, path: str, own_pids: set[str]) -> str | None:
    """Why ``path`` is the wrong place for a ``message_type`` (None when it is right)."""
    shapes = BINDING_PATHS.get(message_type)
    if shapes is None:
        return f"{message_type} is not a message a counterparty may POST"
    for shape in shapes:
        pattern = "^" + re.escape(shape).replace(re.escape("{pid}"), "(?P<pid>[^/]+)") + "$"
        found = re.match(pattern, path)
        if found is None:
            continue
        pid = found.groupdict().get("pid")
        if pid is not None and pid not in own_pids:
            return f"{message_type} addressed to {pid!r}, which is not a process id of the receiving side"
        return None
    return f"{message_type} arrived on {path}, the binding says {' or '.join(shapes)}"


@dataclass
class Exchange:
    """One request the CUT made to the peer, with what was wrong about it (``problem``), if anything."""

    method: str
    path: str
    message: dict[str, Any]
    caller: str | None
    correlation_id: str | None
    problem: str | None = None
    at: float = field(default_factory=time.monotonic)

    @property
    def type(self) -> str:
        return str(self.message.get("@type", ""))


Responder = Callable[[Exchange], tuple[int, dict[str, Any] | None]]


class ScriptedPeer:
    """The counterparty (see module docstring). ``start``/``stop`` run its server; ``send`` talks to the CUT."""

    def __init__(self, wallet: Wallet, port: int) -> None:
        self.wallet = wallet
        self.port = port
        self.own_pids: set[str] = set()
        self.exchanges: list[Exchange] = []
        self._rules: list[tuple[str, re.Pattern[str], Responder]] = []
        self._changed = threading.Condition()
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._jti = JtiStore(wallet.folder / "peer_jti.db")
        self._resolver = Resolver(allow_http_hosts=LOOPBACK)
        self._http = httpx.Client(timeout=20)

    # ---- set-up ---------------------------------------------------------------------------------------------
    @classmethod
    def create(cls, folder: Path, authority: Authority, name: str = "tck-peer") -> ScriptedPeer:
        """A wallet on a free port, registered with the authority and holding its MembershipCredential."""
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        did = f"did:web:127.0.0.1%3A{port}"
        wallet = Wallet.init(folder / "wallet", did, PASSPHRASE, scrypt_params=FAST_SCRYPT,
                             credential_service_url=base + "/api/credentials", data_service_url=base)
        authority.register(did, name)
        wallet.store_credential(authority.issue(did, "membership")["credential"])
        return cls(wallet, port)

    @property
    def did(self) -> str:
        return self.wallet.did

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _app(self) -> FastAPI:
        app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
        wallet = self.wallet

        @app.get("/.well-known/did.json")
        async def did_document() -> JSONResponse:
            return JSONResponse(wallet.did_document(), media_type="application/did+json")

        @app.get("/.well-known/dspace-version")
        async def version() -> JSONResponse:
            return JSONResponse({"protocolVersions": [{
                "version": "2025-1", "path": "/", "binding": "HTTPS", "serviceId": f"{wallet.did}#dataservice"}]})

        app.include_router(create_credential_service_router(
            wallet, resolver=self._resolver, jti_store=self._jti, prefix="/api/credentials"))

        @app.api_route("/{path:path}", methods=["GET", "POST"])
        async def dsp(path: str, request: Request) -> Response:
            return await self._receive(request)

        return app

    def start(self) -> None:
        config = uvicorn.Config(self._app(), host="127.0.0.1", port=self.port, log_config=None,
                                access_log=False, lifespan="off")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="tck-peer", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 20
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the scripted DSP peer did not start")
            time.sleep(0.02)

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._http.close()
        self._jti.close()
        self.wallet.close()

    # ---- inbound (the CUT calls us) -------------------------------------------------------------------------
    async def _receive(self, request: Request) -> Response:
        path = request.url.path
        raw = await request.body()
        exchange = Exchange(request.method, path, {}, None, request.headers.get("x-correlation-id"))
        problems: list[str] = []
        header = request.headers.get("authorization", "")
        try:
            if not header.lower().startswith("bearer "):
                raise IdentityError("no bearer self-issued token", code="token_missing")
            token = await verify_si_token(header[7:].strip(), audience=self.did, resolver=self._resolver,
                                          jti_store=self._jti)
            exchange.caller = token.did
        except IdentityError as exc:
            problems.append(f"token: {exc}")
        if request.method == "POST":
            try:
                exchange.message = httpx.Response(200, content=raw).json()
            except ValueError:
                problems.append("body is not JSON")
            if exchange.message:
                try:
                    validate_message(exchange.message, exchange.type)
                except ConnectorError as exc:
                    problems.append(f"schema: {exc}")
                where = binding_problem(exchange.type, path, self.own_pids)
                if where:
                    problems.append(f"binding: {where}")
        exchange.problem = "; ".join(problems) or None
        status, body = self._respond(exchange)
        with self._changed:
            self.exchanges.append(exchange)
            self._changed.notify_all()
        if exchange.problem and status < 400:
            status, body = 400, {"@type": "Error", "reason": [exchange.problem]}
        if body is None:
            return Response(status_code=status)
        return JSONResponse(body, status_code=status)

    def _respond(self, exchange: Exchange) -> tuple[int, dict[str, Any] | None]:
        for method, pattern, responder in reversed(self._rules):
            if method == exchange.method and pattern.search(exchange.path):
                return responder(exchange)
        message = exchange.message
        if exchange.path == "/negotiations/request" and exchange.type == "ContractRequestMessage":
            pid = self.adopt(new_pid())
            return 201, {"@context": [DSP_CONTEXT], "@type": "ContractNegotiation", "providerPid": pid,
                         "consumerPid": message.get("consumerPid", ""), "state": "REQUESTED"}
        if exchange.path == "/transfers/request" and exchange.type == "TransferRequestMessage":
            pid = self.adopt(new_pid())
            return 201, {"@context": [DSP_CONTEXT], "@type": "TransferProcess", "providerPid": pid,
                         "consumerPid": message.get("consumerPid", ""), "state": "REQUESTED"}
        return 200, None

    def on(self, method: str, path_pattern: str, responder: Responder) -> Callable[[], None]:
        """Answer requests matching ``path_pattern`` (regex) with ``responder`` (the newest rule wins);
        returns the function that removes the rule again."""
        rule = (method, re.compile(path_pattern), responder)
        self._rules.append(rule)
        return lambda: self._rules.remove(rule)

    def adopt(self, pid: str) -> str:
        """Remember ``pid`` as one of the peer's own process ids (the CUT must address messages to it)."""
        self.own_pids.add(pid)
        return pid

    def expect(self, message_type: str, *, timeout: float = 20, **fields: Any) -> Exchange:
        """The first message of ``message_type`` whose top-level ``fields`` match; it must be conformant."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for exchange in self.exchanges:
                    if exchange.type == message_type and all(exchange.message.get(k) == v for k, v in fields.items()):
                        assert exchange.problem is None, f"non-conformant {message_type}: {exchange.problem}"
                        return exchange
                left = deadline - time.monotonic()
                if left <= 0:
                    seen = [(e.type, e.path) for e in self.exchanges[-10:]]
                    raise AssertionError(f"no {message_type} with {fields} within {timeout}s; last seen: {seen}")
                self._changed.wait(left)

    def received(self, **fields: Any) -> list[Exchange]:
        """Messages whose top-level ``fields`` match (e.g. ``consumerPid=...``), oldest first."""
        with self._changed:
            return [e for e in self.exchanges if all(e.message.get(k) == v for k, v in fields.items())]

    def problems(self, **fields: Any) -> list[str]:
        """Everything non-conformant the CUT sent (optionally only messages matching ``fields``)."""
        return [f"{e.type or e.method} {e.path}: {e.problem}" for e in self.received(**fields) if e.problem]

    # ---- outbound (we call the CUT) -------------------------------------------------------------------------
    def authorization(self, audience: str) -> str:
        """``Bearer <SI token>`` for ``audience`` carrying an access token to our MembershipCredential."""
        access = self.wallet.issue_access_token(audience, [type_scope("MembershipCredential", "read")])
        return "Bearer " + self.wallet.sign_si_token(audience, access)

    def send(self, cut: Connector, path: str, message: dict[str, Any] | None = None, *,
             method: str = "POST", validate: bool = True, headers: dict[str, str] | None = None) -> httpx.Response:
        """One DSP request to the CUT's protocol address, signed for its DID (message schema-checked first)."""
        if message is not None and validate:
            validate_message(message, str(message.get("@type")))
        headers = {**(headers or {}), "Authorization": self.authorization(cut.did)}
        return self._http.request(method, cut.protocol_url + path, json=message, headers=headers)


def dsp(message_type: str, **fields: Any) -> dict[str, Any]:
    """A DSP message in compact form with the 2025-1 context."""
    return {"@context": [DSP_CONTEXT], "@type": message_type, **{k: v for k, v in fields.items() if v is not None}}


def wait_until(check: Callable[[], Any], *, timeout: float = 20, interval: float = 0.05) -> Any:
    """Poll ``check`` until it returns something truthy (for states the CUT reaches asynchronously)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s (last value {value!r})")
        time.sleep(interval)


def utc_timestamp() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Finalized:
    """A FINALIZED negotiation between the CUT and the peer, and its agreement."""

    agreement_id: str
    asset_id: str
    consumer_pid: str
    provider_pid: str


def finalize_with_cut_as_provider(peer: ScriptedPeer, cut: Connector, *, data: str = "tck data",
                                  approval: str = "manual") -> Finalized:
    """The peer negotiates an offer of the CUT to FINALIZED (the shortest DSP path).

    ``approval`` is the contract definition's: in ``manual`` the test agrees and finalizes as the CUT's
    operator, and transfers under the agreement wait for the operator too (they inherit it).
    """
    asset_id = publish(cut, approval=approval, data=data)
    r = peer.send(cut, f"/catalog/datasets/{asset_id}", method="GET")
    assert r.status_code == 200, r.text
    offer = r.json()["hasPolicy"][0]
    consumer_pid = peer.adopt(new_pid())
    r = peer.send(cut, "/negotiations/request", dsp("ContractRequestMessage", consumerPid=consumer_pid,
                                                   offer={**offer, "target": asset_id},
                                                   callbackAddress=peer.base_url))
    assert r.status_code == 201, r.text
    provider_pid = str(r.json()["providerPid"])
    if approval == "manual":
        operator_step(cut, provider_pid, "agree")
    agreement = peer.expect("ContractAgreementMessage", consumerPid=consumer_pid).message["agreement"]
    r = peer.send(cut, f"/negotiations/{provider_pid}/agreement/verification", dsp(
        "ContractAgreementVerificationMessage", providerPid=provider_pid, consumerPid=consumer_pid))
    assert r.status_code == 200, r.text
    if approval == "manual":
        operator_step(cut, provider_pid, "finalize")
    event = peer.expect("ContractNegotiationEventMessage", consumerPid=consumer_pid).message
    assert event["eventType"] == "FINALIZED"
    wait_until(lambda: cut.negotiation(provider_pid)["state"] == "FINALIZED")
    return Finalized(str(agreement["@id"]), asset_id, consumer_pid, provider_pid)


def operator_step(cut: Connector, negotiation_id: str, step: str) -> None:
    """The CUT's operator takes a negotiation step through the management API."""
    r = cut.mgmt("POST", f"/v3/contractnegotiations/{negotiation_id}/{step}", json={})
    assert r.status_code in (200, 204), r.text


def finalize_with_cut_as_consumer(peer: ScriptedPeer, cut: Connector) -> Finalized:
    """The CUT's operator negotiates (``auto``) with the peer as provider up to FINALIZED."""
    asset_id = f"urn:uuid:{uuid.uuid4()}"
    permission = [{"action": "use"}]
    r = cut.mgmt("POST", "/v3/contractnegotiations", json={
        "@context": EDC, "@type": "ContractRequest", "counterPartyAddress": peer.base_url,
        "counterPartyId": peer.did, "protocol": "dataspace-protocol-http:2025-1", "approval": "auto",
        "policy": {"@id": f"offer:{asset_id}", "@type": "Offer", "permission": permission, "target": asset_id,
                   "assigner": peer.did}})
    assert r.status_code == 200, r.text
    consumer_pid = str(r.json()["@id"])
    peer.expect("ContractRequestMessage", consumerPid=consumer_pid)
    provider_pid = str(wait_until(lambda: cut.negotiation(consumer_pid).get("providerPid")))
    agreement_id = new_pid()
    pids = {"providerPid": provider_pid, "consumerPid": consumer_pid}
    r = peer.send(cut, f"/negotiations/{consumer_pid}/agreement", dsp("ContractAgreementMessage", **pids, agreement={
        "@id": agreement_id, "@type": "Agreement", "target": asset_id, "assigner": peer.did, "assignee": cut.did,
        "timestamp": utc_timestamp(), "permission": permission}))
    assert r.status_code == 200, r.text
    peer.expect("ContractAgreementVerificationMessage", consumerPid=consumer_pid)
    r = peer.send(cut, f"/negotiations/{consumer_pid}/events",
                  dsp("ContractNegotiationEventMessage", **pids, eventType="FINALIZED"))
    assert r.status_code == 200, r.text
    cut.wait_state("negotiation", consumer_pid, "FINALIZED")
    return Finalized(agreement_id, asset_id, consumer_pid, provider_pid)


@dataclass
class Tck:
    """The connector under test (manual approval by default, auto per contract definition) and the peer."""

    cut: Connector
    peer: ScriptedPeer
    authority: Authority


_SHARED: dict[str, Tck] = {}


def shared_tck(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
               authority: Authority) -> Tck:
    """One CUT and one peer for the whole session, whichever TCK module asks first.

    Each ``test_tck_*`` module declares a session fixture ``tck`` returning this; the first caller's
    session-scoped finalizer stops both at the end of the session.
    """
    if "tck" not in _SHARED:
        base = tmp_path_factory.mktemp("tck")
        cut = make_connector(base, "cut", authority, approval="manual")
        peer = ScriptedPeer.create(base / "peer", authority)
        peer.start()
        request.addfinalizer(peer.stop)
        request.addfinalizer(cut.stop)  # before start: a CUT that never got healthy is stopped too
        cut.start()
        request.addfinalizer(lambda: _SHARED.pop("tck", None))
        _SHARED["tck"] = Tck(cut, peer, authority)
    return _SHARED["tck"]
