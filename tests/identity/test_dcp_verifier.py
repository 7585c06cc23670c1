"""The DCP verifier flow (DcpVerifier.fetch_verified_claims) against a real credential service."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.responses import JSONResponse

from identity.credentials.jwt import issue_vc_jwt, issue_vp_jwt
from identity.credentials.trust import TrustList
from identity.dcp.credential_service import create_credential_service_app
from identity.dcp.errors import DcpError, TokenError
from identity.dcp.http import did_document_path
from identity.dcp.jti_store import JtiStore
from identity.dcp.jws import parse_jws, sign_jws
from identity.dcp.presentation_client import query_presentations
from identity.dcp.schemas import DCP_CONTEXT
from identity.dcp.scopes import type_scope
from identity.dcp.verifier import DcpVerifier, PresentationRejected, VerifiedParty
from identity.dids import Resolver
from identity.wallet import Wallet
from tests.identity.test_dcp_support import free_port, make_wallet, serve

LOOPBACK = ["127.0.0.1"]
MEMBERSHIP = type_scope("MembershipCredential")


def _vc(issuer: Wallet, subject: str, ctype: str, until: datetime, cid: str) -> str:
    now = datetime.now(UTC) - timedelta(minutes=1)
    return issue_vc_jwt({
        "@context": ["https://www.w3.org/ns/credentials/v2"], "id": cid,
        "type": ["VerifiableCredential", ctype], "issuer": issuer.did,
        "validFrom": now.strftime("%Y-%m-%dT%H:%M:%SZ"), "validUntil": until.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "credentialSubject": {"id": subject},
    }, issuer.key, issuer.kid)


class Setup:
    def __init__(self, tmp: Path) -> None:
        self.hport, self.vport = free_port(), free_port()
        self.holder = make_wallet(tmp / "holder", self.hport)
        self.verifier = make_wallet(tmp / "verifier", self.vport, with_cs=False)
        self.issuer = make_wallet(tmp / "issuer")  # did:key: resolvable offline
        self.tmp = tmp
        resolver = Resolver(allow_http_hosts=LOOPBACK)
        self.apps = [
            (create_credential_service_app(self.holder, resolver=resolver, jti_store=JtiStore(tmp / "h.db")),
             self.hport),
            (create_credential_service_app(self.verifier, resolver=resolver, jti_store=JtiStore(tmp / "v.db")),
             self.vport),
        ]
        self.until = (datetime.now(UTC) + timedelta(hours=2)).replace(microsecond=0)
        self.holder.store_credential(_vc(self.issuer, self.holder.did, "MembershipCredential", self.until,
                                         "urn:uuid:m1"))

    def token(self, scopes: list[str], caller: Wallet | None = None) -> str:
        caller = caller or self.holder
        access = self.holder.issue_access_token(self.verifier.did, scopes)
        return caller.sign_si_token(self.verifier.did, token=access)

    async def fetch(self, token: str, scopes: list[str], trust: dict[str, list[str]] | None = None,
                    allow_http: bool = True, verifier: DcpVerifier | None = None) -> VerifiedParty:
        async with httpx.AsyncClient() as client:
            verifier = verifier or self.make_verifier(client, trust, allow_http)
            return await verifier.fetch_verified_claims(token, scopes)

    def make_verifier(self, client: httpx.AsyncClient, trust: dict[str, list[str]] | None = None,
                      allow_http: bool = True) -> DcpVerifier:
        return DcpVerifier.for_wallet(
            self.verifier, resolver=Resolver(allow_http_hosts=LOOPBACK), jti_store=JtiStore(self.tmp / "vj.db"),
            trust=TrustList(trust if trust is not None else {"MembershipCredential": [self.issuer.did]}),
            http_client=client, allow_http_hosts=LOOPBACK if allow_http else ())


@pytest.fixture
def setup(tmp_path: Path):  # type: ignore[no-untyped-def]
    s = Setup(tmp_path)
    with serve(*s.apps[0]), serve(*s.apps[1]):
        yield s


def test_verified_claims_and_cache_bound_by_expiry(setup: Setup) -> None:
    async def go() -> tuple[VerifiedParty, VerifiedParty]:
        async with httpx.AsyncClient() as client:
            verifier = setup.make_verifier(client)
            first = await verifier.fetch_verified_claims(setup.token([MEMBERSHIP]), [MEMBERSHIP])
            verifier.cache_ttl = 10**6  # the credential expiry must now bound the cache entry
            verifier.forget()
            second = await verifier.fetch_verified_claims(setup.token([MEMBERSHIP]), [MEMBERSHIP])
            third = await verifier.fetch_verified_claims(setup.token([MEMBERSHIP]), [MEMBERSHIP])
            assert not second.from_cache and third.from_cache
            return first, second

    first, second = asyncio.run(go())
    assert first.did == setup.holder.did
    assert [c["id"] for c in first.credentials_of_type("MembershipCredential")] == ["urn:uuid:m1"]
    assert first.expires_at <= datetime.now(UTC).timestamp() + 300
    assert second.expires_at == setup.until.timestamp()


def test_untrusted_issuer_rejected(setup: Setup) -> None:
    with pytest.raises(PresentationRejected) as err:
        asyncio.run(setup.fetch(setup.token([MEMBERSHIP]), [MEMBERSHIP], trust={"MembershipCredential": []}))
    assert err.value.code == "issuer_untrusted"


def test_credential_about_someone_else_rejected(setup: Setup) -> None:
    setup.holder.store_credential(_vc(setup.issuer, "did:web:victim.example.com", "MembershipCredential",
                                      setup.until, "urn:uuid:stolen"))
    with pytest.raises(PresentationRejected) as err:
        asyncio.run(setup.fetch(setup.token([MEMBERSHIP]), [MEMBERSHIP]))
    assert err.value.code == "holder_mismatch"


def test_caller_checks(setup: Setup, tmp_path: Path) -> None:
    token = setup.token([MEMBERSHIP])
    asyncio.run(setup.fetch(token, [MEMBERSHIP]))
    with pytest.raises(TokenError) as err:
        asyncio.run(setup.fetch(token, [MEMBERSHIP]))
    assert err.value.code == "replayed"
    with pytest.raises(DcpError) as err2:
        asyncio.run(setup.fetch(setup.token([MEMBERSHIP]), [MEMBERSHIP], allow_http=False))
    assert err2.value.code == "insecure_credential_service"
    keyonly = make_wallet(tmp_path / "keyonly")
    granted = keyonly.issue_access_token(setup.verifier.did, [MEMBERSHIP])
    with pytest.raises(DcpError) as err3:  # it grants reading, but publishes nowhere to read from
        asyncio.run(setup.fetch(keyonly.sign_si_token(setup.verifier.did, token=granted), [MEMBERSHIP]))
    assert err3.value.code == "no_credential_service"
    with pytest.raises(DcpError) as err4:
        asyncio.run(setup.fetch(setup.token([MEMBERSHIP]), ["presentation1"]))
    assert err4.value.code == "invalid_scope"


def test_scope_not_granted_gives_no_credentials(setup: Setup) -> None:
    party = asyncio.run(setup.fetch(setup.token([type_scope("BpnCredential")]), [MEMBERSHIP]))
    assert party.credentials == []


def test_query_presentations_holder_from_access_token(setup: Setup) -> None:
    access = setup.holder.issue_access_token(setup.verifier.did, [MEMBERSHIP])

    async def go() -> list[Any]:
        async with httpx.AsyncClient() as client:
            return await query_presentations(f"http://127.0.0.1:{setup.hport}", verifier_key=setup.verifier.key,
                                             verifier_did=setup.verifier.did, verifier_kid=setup.verifier.kid,
                                             holder_access_token=access, scopes=[MEMBERSHIP], http_client=client)

    assert len(asyncio.run(go())) == 1


def test_caller_granting_nothing_is_authenticated_without_claims(setup: Setup, tmp_path: Path) -> None:
    """No access token in a valid SI token: the DID is proven, no credential is read (none can be)."""
    keyonly = make_wallet(tmp_path / "no-credentials")  # did:key: no credential service at all
    token = keyonly.sign_si_token(setup.verifier.did)
    party = asyncio.run(setup.fetch(token, [MEMBERSHIP]))
    assert (party.did, party.credentials, party.presentations) == (keyonly.did, [], [])
    with pytest.raises(TokenError) as err:  # the token itself is still checked in full
        asyncio.run(setup.fetch(token, [MEMBERSHIP]))
    assert err.value.code == "replayed"
    intruder = make_wallet(tmp_path / "intruder")
    forged = sign_jws(parse_jws(keyonly.sign_si_token(setup.verifier.did)).payload, intruder.key, kid=keyonly.kid)
    with pytest.raises(TokenError) as err2:
        asyncio.run(setup.fetch(forged, [MEMBERSHIP]))
    assert err2.value.code == "signature_invalid"


def test_empty_holder_signed_presentation_gives_no_claims(tmp_path: Path) -> None:
    """A credential service that answers with a valid VP holding no credential: authenticated, no claims."""
    hport, vport = free_port(), free_port()
    holder = make_wallet(tmp_path / "holder", hport)
    verifier = make_wallet(tmp_path / "verifier", vport, with_cs=False)
    holder_app = FastAPI()

    @holder_app.get(did_document_path(holder.did))
    async def did_document() -> JSONResponse:
        return JSONResponse(holder.did_document())

    @holder_app.post("/presentations/query")
    async def presentations() -> JSONResponse:
        empty = issue_vp_jwt(holder.did, [], holder.key, holder.kid, verifier.did)
        return JSONResponse({"@context": [DCP_CONTEXT], "type": "PresentationResponseMessage",
                             "presentation": [empty]})

    async def go() -> VerifiedParty:
        async with httpx.AsyncClient() as client:
            dcp = DcpVerifier.for_wallet(
                verifier, resolver=Resolver(allow_http_hosts=LOOPBACK), jti_store=JtiStore(tmp_path / "vj.db"),
                trust=TrustList({"MembershipCredential": ["did:web:issuer.example"]}), http_client=client,
                allow_http_hosts=LOOPBACK)
            access = holder.issue_access_token(verifier.did, [MEMBERSHIP])
            return await dcp.fetch_verified_claims(holder.sign_si_token(verifier.did, token=access), [MEMBERSHIP])

    with serve(holder_app, hport):
        party = asyncio.run(go())
    assert party.did == holder.did and party.credentials == [] and len(party.presentations) == 1
