"""Status-list revocation on the data path: a real issuer's signed Bitstring Status List served over HTTP."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from connector.dataplane.revocation import StatusListRevocation
from identity.credentials.jwt import issue_vc_jwt
from identity.credentials.status_list import StatusList, build_status_list_credential, status_entry
from identity.dids import Resolver, did_key_from_key
from identity.keys import generate_key
from tests.connector.test_dataplane_support import free_port, make_party, serving, token_of, transfer_info


class Issuer:
    """An issuer with a did:key that publishes one status list credential (a signed JWT) over HTTP."""

    def __init__(self, port: int) -> None:
        self.key = generate_key("EdDSA")
        self.did = did_key_from_key(self.key)
        self.kid = f"{self.did}#{self.key.public_multibase()}"
        self.url = f"http://127.0.0.1:{port}/status/1"
        self.bits = StatusList.create()
        self.fetches = 0

    def jwt(self) -> str:
        return issue_vc_jwt(build_status_list_credential(self.did, self.url, self.bits), self.key, self.kid)

    def credential(self, index: int, subject: str) -> dict[str, Any]:
        """The plain verified VC JSON a connector keeps after negotiation."""
        return {"@context": ["https://www.w3.org/ns/credentials/v2"], "id": f"urn:cred:{index}",
                "type": ["VerifiableCredential", "MembershipCredential"], "issuer": self.did,
                "credentialSubject": {"id": subject}, "credentialStatus": status_entry(self.url, index)}

    def app(self) -> Starlette:
        async def status(_request: Any) -> PlainTextResponse:
            self.fetches += 1
            return PlainTextResponse(self.jwt(), media_type="application/vc+jwt")

        return Starlette(routes=[Route("/status/1", status)])


def test_revoked_membership_refuses_data_and_suspends_the_agreement(database_url: str, tmp_path: Path) -> None:
    folder = tmp_path / "src"
    folder.mkdir()
    (folder / "d.txt").write_text("members only")
    suspended: list[tuple[str, str]] = []

    async def scenario() -> None:
        port = free_port()
        issuer = Issuer(port)
        server = uvicorn.Server(uvicorn.Config(issuer.app(), host="127.0.0.1", port=port, log_level="warning",
                                               lifespan="off"))
        task = asyncio.create_task(server.serve())
        http = httpx.AsyncClient()
        check = StatusListRevocation(Resolver(), http, allow_http_hosts=("127.0.0.1",), ttl=60)
        provider = make_party("provider", database_url, tmp_path, revocation=check,
                              suspend_transfers=lambda agr, reason: suspended.append((agr, reason)))
        consumer = make_party("consumer", f"sqlite:///{tmp_path / 'c.db'}", tmp_path)
        try:
            while not server.started:
                await asyncio.sleep(0.01)
            async with serving(provider), httpx.AsyncClient() as client:
                info = replace(transfer_info(provider, consumer, {"type": "folder", "path": str(folder)}),
                               credentials=(issuer.credential(7, consumer.did),))
                a = await provider.dataplane.start(info)
                assert a
                headers = {"Authorization": f"Bearer {token_of(a)}"}
                for _ in range(3):
                    assert (await client.get(a["endpoint"] + "/d.txt", headers=headers)).text == "members only"
                assert issuer.fetches == 1  # verified once, then served from the cache
                issuer.bits.set(7)  # the authority revokes the membership
                check.forget(issuer.url)  # as when its ttl runs out
                r = await client.get(a["endpoint"] + "/d.txt", headers=headers)
                assert r.status_code == 403 and r.json()["code"] == "credentials_revoked"
                assert "MembershipCredential urn:cred:7 was revoked by its issuer" in r.json()["detail"]
                await provider.dataplane.drain()
                assert suspended and suspended[0][0] == "agr-1"
                r = await client.get(a["endpoint"] + "/d.txt", headers=headers)  # tokens are gone too
                assert r.status_code == 401 and r.json()["code"] == "token_revoked"
            # a counterparty checked for the first time gets a fresh list, whatever the cache holds
            fetched = issuer.fetches
            assert "was revoked" in (await check("did:example:newcomer", (issuer.credential(7, "x"),)) or "")
            assert issuer.fetches == fetched + 1
            assert await check("did:example:newcomer", (issuer.credential(8, "x"),)) is None
            assert issuer.fetches == fetched + 1  # then the cache serves it
            # a list from another issuer, or an unreachable one, is not trusted: fail closed
            other = dict(issuer.credential(3, consumer.did), issuer="did:example:someone-else")
            reason = await check(consumer.did, (other,))
            assert reason is not None and "not by did:example:someone-else" in reason
            gone = dict(issuer.credential(3, consumer.did))
            gone["credentialStatus"] = status_entry("http://127.0.0.1:1/status/9", 3)
            reason = await check(consumer.did, (gone,))
            assert reason is not None and reason.startswith("cannot check the status")
            assert await check(consumer.did, ({"type": ["VerifiableCredential"], "issuer": issuer.did},)) is None
        finally:
            await http.aclose()
            server.should_exit = True
            await task

    asyncio.run(scenario())
