"""A scripted DSP peer for conformance tests: a real participant (did:web, credential service, membership
credential from the authority) whose DSP messages are written by the test, and whose callback endpoints record
what the connector under test sends it.

WHY: the TCK-style scenarios need to send messages a well-behaved connector never would (out of order,
twice, for someone else's process) and to observe exactly what arrives, over real HTTP with real DCP.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

from identity.dcp.credential_service import create_credential_service_router
from identity.dcp.http import did_document_path
from identity.dcp.jti_store import JtiStore
from identity.dcp.scopes import type_scope
from identity.dids.resolver import Resolver
from identity.wallet import Wallet
from tests.e2e.conftest import FAST_SCRYPT, Authority, free_port

DSP = "https://w3id.org/dspace/2025/1/context.jsonld"


class ScriptedPeer:
    """Holds the wallet, serves identity + DSP callbacks on one loopback port, records inbound messages."""

    def __init__(self, folder: Path, authority: Authority, *, member: bool = True) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.did = f"did:web:127.0.0.1%3A{self.port}"
        self.wallet = Wallet.init(folder / "peer-wallet", self.did, "pw", scrypt_params=FAST_SCRYPT,
                                  credential_service_url=self.url + "/cs")
        authority.register(self.did, f"peer{self.port}")
        if member:
            self.wallet.store_credential(authority.issue(self.did, "membership")["credential"])
        self.received: list[tuple[str, dict[str, Any]]] = []
        self._cond = threading.Condition()
        self.app = self._build(folder)

    def _build(self, folder: Path) -> FastAPI:
        app = FastAPI()
        resolver = Resolver(allow_http_hosts=("127.0.0.1",))
        app.include_router(create_credential_service_router(
            self.wallet, resolver=resolver, jti_store=JtiStore(folder / "peer-jti.db"), prefix="/cs"))
        wallet = self.wallet

        @app.get(did_document_path(self.did))
        async def did_document() -> JSONResponse:
            return JSONResponse(wallet.did_document())

        @app.post("/{path:path}")
        async def record(path: str, request: Request) -> Response:
            body = await request.json()
            with self._cond:
                self.received.append(("/" + path, body))
                self._cond.notify_all()
            return Response(status_code=200)

        return app

    @contextmanager
    def running(self) -> Iterator[ScriptedPeer]:
        server = uvicorn.Server(uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="warning",
                                               access_log=False))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 15
        while not server.started:
            assert time.monotonic() < deadline and thread.is_alive(), "scripted peer did not start"
            time.sleep(0.01)
        try:
            yield self
        finally:
            server.should_exit = True
            thread.join(timeout=10)
            self.wallet.close()

    # ---- sending ----------------------------------------------------------------------------------------
    def headers(self, audience: str) -> dict[str, str]:
        access = self.wallet.issue_access_token(audience, [type_scope("MembershipCredential")])
        return {"Authorization": "Bearer " + self.wallet.sign_si_token(audience, access)}

    def post(self, url: str, message: dict[str, Any], audience: str) -> httpx.Response:
        body = {"@context": [DSP], **message}
        return httpx.post(url, json=body, headers=self.headers(audience), timeout=30)

    def get(self, url: str, audience: str) -> httpx.Response:
        return httpx.get(url, headers=self.headers(audience), timeout=30)

    # ---- receiving --------------------------------------------------------------------------------------
    def wait_for(self, message_type: str, timeout: float = 20, **match: Any) -> tuple[str, dict[str, Any]]:
        """The first recorded message of ``message_type`` whose fields equal ``match`` (waits for it)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for path, body in self.received:
                    if body.get("@type") == message_type and all(body.get(k) == v for k, v in match.items()):
                        return path, body
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"no {message_type} {match} arrived; got {self.received}")
                self._cond.wait(remaining)

