"""End to end over real HTTP: authority issues to a holder's credential service (DCP issuance protocol), a
verifier runs the full DCP flow against the holder, and a revocation shows up through the status list."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest

from identity.authority.app import create_authority_app
from identity.authority.settings import settings_from_mapping
from identity.credentials.status_list import HttpStatusFetcher, StatusList
from identity.credentials.trust import TrustList
from identity.credentials.verify import verify_credential
from identity.dcp.credential_service import CredentialServiceSettings, create_credential_service_app
from identity.dcp.errors import DcpError
from identity.dcp.issuance import request_credentials, wait_for_issuance
from identity.dcp.jti_store import JtiStore
from identity.dcp.scopes import type_scope
from identity.dcp.verifier import DcpVerifier, PresentationRejected
from identity.dids import Resolver
from tests.identity.test_dcp_support import free_port, loopback_did, make_wallet, serve

ADMIN = "admin-secret"
LOOPBACK = ["127.0.0.1"]


def authority_settings(tmp: Path, port: int, holder_did: str, **extra: Any):  # type: ignore[no-untyped-def]
    data = {
        "name": "Test Space Authority", "did": loopback_did(port), "base_url": f"http://127.0.0.1:{port}",
        "keystore": "authority-keys.json", "passphrase": "authority-pw", "database_url": "sqlite:///authority.db",
        "admin_key": ADMIN, "allow_http": True,
        "participants": [{"did": holder_did, "name": "Holder Ltd", "bpn": "BPNL000000000001",
                          "jurisdiction": "de"}],
        **extra,
    }
    return settings_from_mapping(data, base=tmp, environ={})


class World:
    def __init__(self, tmp: Path, holder_profile: str = "vc20", **authority_extra: Any) -> None:
        self.aport, self.hport, self.vport = free_port(), free_port(), free_port()
        self.holder = make_wallet(tmp / "holder", self.hport)
        self.verifier_wallet = make_wallet(tmp / "verifier", self.vport, with_cs=False)
        resolver = Resolver(allow_http_hosts=LOOPBACK)
        self.settings = authority_settings(tmp, self.aport, self.holder.did, **authority_extra)
        self.authority_app = create_authority_app(self.settings)
        self.holder_app = create_credential_service_app(
            self.holder, resolver=resolver, jti_store=JtiStore(tmp / "holder-jti.db"),
            settings=CredentialServiceSettings(profile=holder_profile))  # type: ignore[arg-type]
        self.verifier_app = create_credential_service_app(self.verifier_wallet, resolver=resolver,
                                                          jti_store=JtiStore(tmp / "v-jti.db"))
        self.tmp = tmp


@pytest.fixture
def world(tmp_path: Path):  # type: ignore[no-untyped-def]
    w = World(tmp_path)
    with serve(w.authority_app, w.aport) as a, serve(w.holder_app, w.hport), serve(w.verifier_app, w.vport):
        w.authority_url = a  # type: ignore[attr-defined]
        yield w


async def _issue(world: World, ids: list[str]) -> str:
    async with httpx.AsyncClient() as client:
        request = await request_credentials(world.holder, world.authority_url, ids,  # type: ignore[attr-defined]
                                            http_client=client)
        assert request.location.startswith(world.authority_url + "/requests/")  # type: ignore[attr-defined]
        return await wait_for_issuance(world.holder, request, http_client=client, timeout=20)


def test_issue_present_verify_revoke(world: World) -> None:
    status = asyncio.run(_issue(world, ["membership", "bpn", "data-protection"]))
    assert status == "ISSUED"
    held = {c.types[1]: c for c in world.holder.credentials()}
    assert set(held) == {"MembershipCredential", "BusinessPartnerCredential", "DataProtectionCertification"}
    assert all(c.issuer == world.settings.did and c.subject == world.holder.did for c in held.values())

    scopes = [type_scope("MembershipCredential"), type_scope("DataProtectionCertification", form="tractusx")]

    async def verify_once() -> Any:
        async with httpx.AsyncClient() as client:
            trust = TrustList((await client.get(world.authority_url + "/trust-list")).json())  # type: ignore[attr-defined]
            verifier = DcpVerifier.for_wallet(
                world.verifier_wallet, resolver=Resolver(allow_http_hosts=LOOPBACK),
                jti_store=JtiStore(world.tmp / "verifier-jti.db"), trust=trust, http_client=client,
                status_fetcher=HttpStatusFetcher(client, ttl=0, allow_http_hosts=LOOPBACK),
                allow_http_hosts=LOOPBACK)
            # the holder (as a DSP client would) hands the verifier an SI token with an access token inside
            access = world.holder.issue_access_token(world.verifier_wallet.did, scopes)
            party = await verifier.fetch_verified_claims(world.holder.sign_si_token(world.verifier_wallet.did,
                                                                                    token=access), scopes)
            again = await verifier.fetch_verified_claims(world.holder.sign_si_token(world.verifier_wallet.did,
                                                                                    token=access), scopes)
            return party, again

    party, again = asyncio.run(verify_once())
    assert party.did == world.holder.did and not party.from_cache and again.from_cache
    by_type = {c["type"][1]: c for c in party.credentials}
    assert set(by_type) == {"MembershipCredential", "DataProtectionCertification"}
    assert by_type["DataProtectionCertification"]["credentialSubject"]["jurisdiction"] == "DE"
    assert by_type["MembershipCredential"]["credentialSubject"]["holderIdentifier"] == "BPNL000000000001"

    # revoke the membership through the admin endpoint: the status list shows it, verification fails
    membership_id = held["MembershipCredential"].id
    denied = httpx.post(world.authority_url + "/admin/revoke", json={"credentialId": membership_id})  # type: ignore[attr-defined]
    assert denied.status_code == 401 and denied.json()["code"] == "admin_unauthorized"
    answer = httpx.post(world.authority_url + "/admin/revoke", json={"credentialId": membership_id},  # type: ignore[attr-defined]
                        headers={"X-Admin-Key": ADMIN})
    assert answer.status_code == 200, answer.text
    status_jwt = httpx.get(answer.json()["statusList"])
    assert status_jwt.headers["content-type"].startswith("application/vc+jwt")

    async def check_revoked() -> None:
        async with httpx.AsyncClient() as client:
            resolver = Resolver(allow_http_hosts=LOOPBACK)
            result = await verify_credential(
                held["MembershipCredential"].payload, resolver=resolver, trust=world.authority_app.state.authority
                .trust_list(), status_fetcher=HttpStatusFetcher(client, ttl=0, allow_http_hosts=LOOPBACK))
            assert result.error_code == "revoked"
            ok = await verify_credential(
                held["BusinessPartnerCredential"].payload, resolver=resolver, trust=None,
                status_fetcher=HttpStatusFetcher(client, ttl=0, allow_http_hosts=LOOPBACK))
            assert ok.ok, ok.checks

    asyncio.run(check_revoked())
    with pytest.raises(PresentationRejected) as err:
        asyncio.run(verify_once())
    assert err.value.code == "revoked"


def test_status_list_bits(world: World) -> None:
    authority = world.authority_app.state.authority
    record = authority.issue(world.holder.did, "membership")
    authority.revoke(record.id)
    from identity.credentials.jwt import decode_unverified

    _, payload = decode_unverified(httpx.get(world.authority_url + "/status/vc20-revocation").text)  # type: ignore[attr-defined]
    bits = StatusList.decode(payload["credentialSubject"]["encodedList"])
    assert bits.size == 131072 and bits.set_indexes() == [record.status_index]


def test_directory_trust_list_metadata_and_did(world: World) -> None:
    base = world.authority_url  # type: ignore[attr-defined]
    directory = httpx.get(base + "/directory").json()
    assert directory == [{"did": world.holder.did, "name": "Holder Ltd", "bpn": "BPNL000000000001",
                          "jurisdiction": "DE", "registeredAt": directory[0]["registeredAt"]}]
    trust = httpx.get(base + "/trust-list").json()
    assert trust["MembershipCredential"] == [world.settings.did]
    metadata = httpx.get(base + "/metadata").json()
    assert {c["id"] for c in metadata["credentialsSupported"]} >= {"membership", "bpn", "data-protection"}
    did_doc = httpx.get(base + "/.well-known/did.json").json()
    assert did_doc["id"] == world.settings.did
    assert any(s["type"] == "IssuerService" for s in did_doc["service"])
    registered = httpx.post(base + "/admin/participants", headers={"X-Admin-Key": ADMIN},
                            json={"did": "did:web:new.example.com", "name": "New", "jurisdiction": "fr"})
    assert registered.status_code == 201 and registered.json()["jurisdiction"] == "FR"
    assert httpx.get(base + "/directory/did:web:new.example.com").json()["name"] == "New"
    missing = httpx.get(base + "/directory/did:web:nobody.example.com")
    assert missing.status_code == 403 and missing.json()["code"] == "unknown_participant"


def test_requests_refused_for_strangers_replays_and_unknown_credentials(world: World, tmp_path: Path) -> None:
    base = world.authority_url  # type: ignore[attr-defined]
    stranger_port = free_port()
    stranger = make_wallet(tmp_path / "stranger", stranger_port)
    stranger_app = create_credential_service_app(stranger, resolver=Resolver(allow_http_hosts=LOOPBACK),
                                                 jti_store=JtiStore(tmp_path / "s.db"))

    async def ask(holder: Any, ids: list[str]) -> Any:
        async with httpx.AsyncClient() as client:
            return await request_credentials(holder, base, ids, http_client=client)

    with serve(stranger_app, stranger_port):
        with pytest.raises(DcpError) as err:
            asyncio.run(ask(stranger, ["membership"]))
        assert "unknown_participant" in str(err.value)
    with pytest.raises(DcpError) as err:
        asyncio.run(ask(world.holder, ["gold-card"]))
    assert err.value.code == "unknown_credential"
    body = {"@context": ["https://w3id.org/dspace-dcp/v1.0/dcp.jsonld"], "type": "CredentialRequestMessage",
            "holderPid": "h", "credentials": [{"id": "membership"}]}
    token = world.holder.sign_si_token(world.settings.did,
                                       token=world.holder.issue_access_token(world.settings.did, []))
    first = httpx.post(base + "/credentials", json=body, headers={"Authorization": f"Bearer {token}"})
    assert first.status_code == 201
    replay = httpx.post(base + "/credentials", json=body, headers={"Authorization": f"Bearer {token}"})
    assert replay.status_code == 401 and replay.json()["code"] == "replayed"
    other_holder_status = httpx.get(first.headers["location"], headers={
        "Authorization": f"Bearer {world.verifier_wallet.sign_si_token(world.settings.did)}"})
    assert other_holder_status.status_code in (401, 403)


def test_rejected_when_participant_lacks_bpn(tmp_path: Path) -> None:
    w = World(tmp_path)
    authority = w.authority_app.state.authority
    from identity.authority.storage import ParticipantRecord

    authority.register(ParticipantRecord(w.holder.did, "No BPN Inc"))
    with serve(w.authority_app, w.aport) as a, serve(w.holder_app, w.hport):
        w.authority_url = a  # type: ignore[attr-defined]
        assert asyncio.run(_issue(w, ["membership", "bpn"])) == "REJECTED"
    assert w.holder.credentials() == []


def test_vc11_profile_with_status_list_2021(tmp_path: Path) -> None:
    w = World(tmp_path, holder_profile="vc11", profile="vc11")
    with serve(w.authority_app, w.aport) as a, serve(w.holder_app, w.hport), serve(w.verifier_app, w.vport):
        w.authority_url = a  # type: ignore[attr-defined]
        assert asyncio.run(_issue(w, ["membership"])) == "ISSUED"
        (held,) = w.holder.credentials()
        assert held.profile == "vc11"
        from identity.credentials.jwt import decode_unverified

        payload = decode_unverified(str(held.payload)).payload
        assert payload["vc"]["credentialStatus"]["type"] == "StatusList2021Entry"
        scopes = [type_scope("MembershipCredential", form="edc")]

        async def fetch() -> Any:
            async with httpx.AsyncClient() as client:
                verifier = DcpVerifier.for_wallet(
                    w.verifier_wallet, resolver=Resolver(allow_http_hosts=LOOPBACK),
                    jti_store=JtiStore(tmp_path / "vj.db"), trust=TrustList(w.authority_app.state.authority
                                                                            .trust_list()),
                    http_client=client, status_fetcher=HttpStatusFetcher(client, ttl=0, allow_http_hosts=LOOPBACK),
                    allow_http_hosts=LOOPBACK)
                access = w.holder.issue_access_token(w.verifier_wallet.did, scopes)
                return await verifier.fetch_verified_claims(
                    w.holder.sign_si_token(w.verifier_wallet.did, token=access), scopes)

        party = asyncio.run(fetch())
        assert [c["type"] for c in party.credentials] == [["VerifiableCredential", "MembershipCredential"]]
        status = httpx.get(a + "/status/vc11-revocation")
        assert status.headers["content-type"].startswith("application/jwt")
        assert decode_unverified(status.text).payload["vc"]["type"][1] == "StatusList2021Credential"
        w.authority_app.state.authority.revoke(held.id)
        with pytest.raises(PresentationRejected) as err:
            asyncio.run(fetch())
        assert err.value.code == "revoked"


def test_manual_approval_rejection_and_key_rotation(tmp_path: Path) -> None:
    from identity.credentials.jwt import decode_unverified
    from identity.dcp.issuance import request_status

    w = World(tmp_path, auto_approve=False)
    admin = {"X-Admin-Key": ADMIN}
    authority = w.authority_app.state.authority
    with serve(w.authority_app, w.aport) as a, serve(w.holder_app, w.hport):

        async def ask(ids: list[str]) -> Any:
            async with httpx.AsyncClient() as client:
                request = await request_credentials(w.holder, a, ids, http_client=client)
                return request, await request_status(w.holder, request, http_client=client)

        async def until_done(request: Any) -> str:
            async with httpx.AsyncClient() as client:
                return await wait_for_issuance(w.holder, request, http_client=client, timeout=10, interval=0.05)

        def approve(request: Any) -> str:
            pid = request.location.rsplit("/", 1)[1]
            assert httpx.post(a + f"/admin/requests/{pid}/approve", headers=admin).status_code == 202
            return pid

        first, status = asyncio.run(ask(["membership"]))
        assert status == "RECEIVED" and w.holder.credentials() == []
        pending = httpx.get(a + "/admin/requests?status=RECEIVED", headers=admin).json()
        assert [p["holder"] for p in pending] == [w.holder.did]
        pid = approve(first)
        assert asyncio.run(until_done(first)) == "ISSUED"
        again = httpx.post(a + f"/admin/requests/{pid}/approve", headers=admin)
        assert again.status_code == 409 and again.json()["code"] == "request_closed"

        # rotation: the holder's credential service cached the old DID document, yet accepts the new key
        old_kid = authority.kid
        new_kid = authority.rotate_key()
        second, _ = asyncio.run(ask(["bpn"]))
        approve(second)
        assert asyncio.run(until_done(second)) == "ISSUED"
        kids = {c.types[1]: decode_unverified(str(c.payload)).header["kid"] for c in w.holder.credentials()}
        assert kids == {"MembershipCredential": old_kid, "BusinessPartnerCredential": new_kid}
        doc = httpx.get(a + "/.well-known/did.json").json()
        assert {old_kid, new_kid} <= {m["id"] for m in doc["verificationMethod"]}

        third, _ = asyncio.run(ask(["data-protection"]))
        third_pid = third.location.rsplit("/", 1)[1]
        rejected = httpx.post(a + f"/admin/requests/{third_pid}/reject", headers=admin,
                              json={"reason": "paperwork missing"})
        assert rejected.status_code == 200
        assert asyncio.run(until_done(third)) == "REJECTED"
        assert authority.store.request(third_pid).rejection_reason == "paperwork missing"
        assert len(w.holder.credentials()) == 2
