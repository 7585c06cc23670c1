"""The holder's credential service over real HTTP: queries with access tokens, rejections, credential storage."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from identity.credentials.jwt import decode_unverified, issue_vc_jwt
from identity.dcp.credential_service import CredentialServiceSettings, create_credential_service_app
from identity.dcp.errors import RemoteError
from identity.dcp.jti_store import JtiStore
from identity.dcp.presentation_client import query_presentations
from identity.dcp.schemas import DCP_CONTEXT
from identity.dids import Resolver
from identity.wallet import Wallet
from tests.identity.test_dcp_support import free_port, make_wallet, serve

MEMBERSHIP = "org.eclipse.dspace.dcp.vc.type:MembershipCredential:read"


def vc(issuer: Wallet, holder_did: str, ctype: str, profile: str = "vc20") -> str:
    now = datetime.now(UTC)
    if profile == "vc20":
        credential: dict[str, Any] = {
            "@context": ["https://www.w3.org/ns/credentials/v2"], "id": f"urn:uuid:{ctype}-{profile}",
            "type": ["VerifiableCredential", ctype], "issuer": issuer.did,
            "validFrom": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "validUntil": (now + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "credentialSubject": {"id": holder_did, "memberOf": "Test Space"},
        }
    else:
        credential = {
            "@context": ["https://www.w3.org/2018/credentials/v1"], "id": f"urn:uuid:{ctype}-{profile}",
            "type": ["VerifiableCredential", ctype], "issuer": issuer.did,
            "issuanceDate": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "expirationDate": (now + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "credentialSubject": {"id": holder_did, "memberOf": "Test Space"},
        }
    return issue_vc_jwt(credential, issuer.key, issuer.kid, profile)


class Space:
    """A holder with a running credential service, a verifier serving its DID document, an issuer (did:key)."""

    def __init__(self, tmp: Path, profile: str = "vc20") -> None:
        self.hport, self.vport = free_port(), free_port()
        self.holder = make_wallet(tmp / "holder", self.hport)
        self.verifier = make_wallet(tmp / "verifier", self.vport, with_cs=False)
        self.issuer = make_wallet(tmp / "issuer")
        resolver = Resolver(allow_http_hosts=["127.0.0.1"])
        self.holder_app = create_credential_service_app(
            self.holder, resolver=resolver, jti_store=JtiStore(tmp / "holder-jti.db"),
            settings=CredentialServiceSettings(profile=profile))  # type: ignore[arg-type]
        self.verifier_app = create_credential_service_app(
            self.verifier, resolver=resolver, jti_store=JtiStore(tmp / "verifier-jti.db"))


@pytest.fixture
def space(tmp_path: Path):  # type: ignore[no-untyped-def]
    s = Space(tmp_path)
    with serve(s.holder_app, s.hport) as holder_url, serve(s.verifier_app, s.vport):
        s.holder_url = holder_url  # type: ignore[attr-defined]
        yield s


def query(space: Space, scopes: list[str], granted: list[str] | None = None) -> list[Any]:
    access = space.holder.issue_access_token(space.verifier.did, granted if granted is not None else scopes)

    async def go() -> list[Any]:
        async with httpx.AsyncClient() as client:
            return await query_presentations(
                space.holder_url, verifier_key=space.verifier.key, verifier_did=space.verifier.did,  # type: ignore[attr-defined]
                verifier_kid=space.verifier.kid, holder_did=space.holder.did, holder_access_token=access,
                scopes=scopes, http_client=client)

    return asyncio.run(go())


def test_query_returns_vp_with_granted_credential_only(space: Space) -> None:
    space.holder.store_credential(vc(space.issuer, space.holder.did, "MembershipCredential"))
    space.holder.store_credential(vc(space.issuer, space.holder.did, "BusinessPartnerCredential"))
    presentations = query(space, [MEMBERSHIP])
    assert len(presentations) == 1
    header, payload = decode_unverified(presentations[0])
    assert header["typ"] == "vp+jwt" and header["kid"] == space.holder.kid
    assert payload["holder"] == space.holder.did and payload["aud"] == space.verifier.did
    inner = [decode_unverified(e["id"].split(",", 1)[1]).payload for e in payload["verifiableCredential"]]
    assert [c["type"][1] for c in inner] == ["MembershipCredential"]


def test_ungranted_scope_yields_fewer_presentations(space: Space) -> None:
    space.holder.store_credential(vc(space.issuer, space.holder.did, "BusinessPartnerCredential"))
    bpn = "org.eclipse.tractusx.vc.type:BusinessPartnerCredential:read"
    assert query(space, [bpn], granted=[MEMBERSHIP]) == []
    assert len(query(space, [bpn], granted=[bpn])) == 1


def test_vc11_profile(tmp_path: Path) -> None:
    s = Space(tmp_path, profile="vc11")
    s.holder.store_credential(vc(s.issuer, s.holder.did, "MembershipCredential", "vc11"))
    s.holder.store_credential(vc(s.issuer, s.holder.did, "MembershipCredential", "vc20"))
    with serve(s.holder_app, s.hport) as url, serve(s.verifier_app, s.vport):
        s.holder_url = url  # type: ignore[attr-defined]
        presentations = query(s, [MEMBERSHIP])
    assert len(presentations) == 1
    header, payload = decode_unverified(presentations[0])
    assert header["typ"] == "JWT" and len(payload["vp"]["verifiableCredential"]) == 1


def _post(space: Space, path: str, body: Any, token: str | None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.post(space.holder_url + path, json=body, headers=headers)  # type: ignore[attr-defined]


def _query_body(**extra: Any) -> dict[str, Any]:
    return {"@context": [DCP_CONTEXT], "type": "PresentationQueryMessage", **extra}


def test_replayed_and_misaddressed_tokens_rejected(space: Space) -> None:
    access = space.holder.issue_access_token(space.verifier.did, [MEMBERSHIP])
    token = space.verifier.sign_si_token(space.holder.did, token=access)
    assert _post(space, "/presentations/query", _query_body(scope=[MEMBERSHIP]), token).status_code == 200
    replay = _post(space, "/presentations/query", _query_body(scope=[MEMBERSHIP]), token)
    assert replay.status_code == 401 and replay.json()["code"] == "replayed"
    assert replay.headers["content-type"].startswith("application/problem+json")
    wrong = space.verifier.sign_si_token("did:web:elsewhere.example.com", token=access)
    answer = _post(space, "/presentations/query", _query_body(scope=[MEMBERSHIP]), wrong)
    assert answer.status_code == 401 and answer.json()["code"] == "audience_mismatch"
    assert _post(space, "/presentations/query", _query_body(scope=[MEMBERSHIP]), None).json()["code"] == (
        "token_missing")


def test_access_token_required_and_bound_to_caller(space: Space) -> None:
    bare = space.verifier.sign_si_token(space.holder.did)
    answer = _post(space, "/presentations/query", _query_body(scope=[MEMBERSHIP]), bare)
    assert answer.status_code == 401 and answer.json()["code"] == "access_token_missing"
    for_someone_else = space.holder.issue_access_token("did:web:other.example.com", [MEMBERSHIP])
    token = space.verifier.sign_si_token(space.holder.did, token=for_someone_else)
    answer = _post(space, "/presentations/query", _query_body(scope=[MEMBERSHIP]), token)
    assert answer.status_code == 401 and answer.json()["code"] == "audience_mismatch"


def test_scope_and_definition_400_unsupported_definition_501(space: Space) -> None:
    space.holder.store_credential(vc(space.issuer, space.holder.did, "MembershipCredential"))
    access = space.holder.issue_access_token(space.verifier.did, [MEMBERSHIP])
    definition = {"id": "pd", "input_descriptors": [{"id": "m", "constraints": {"fields": [
        {"path": ["$.type"], "filter": {"type": "string", "pattern": "^MembershipCredential$"}}]}}]}
    both = _post(space, "/presentations/query", _query_body(scope=[MEMBERSHIP], presentationDefinition=definition),
                 space.verifier.sign_si_token(space.holder.did, token=access))
    assert both.status_code == 400 and both.json()["code"] == "scope_and_definition"
    unsupported = {**definition, "submission_requirements": [{"rule": "all", "from": "A"}]}
    only_pd = _post(space, "/presentations/query", _query_body(presentationDefinition=unsupported),
                    space.verifier.sign_si_token(space.holder.did, token=access))
    assert only_pd.status_code == 501 and only_pd.json()["code"] == "presentation_definition_unsupported"
    supported = _post(space, "/presentations/query", _query_body(presentationDefinition=definition),
                      space.verifier.sign_si_token(space.holder.did, token=access))
    assert supported.status_code == 200, supported.text
    body = supported.json()
    assert len(body["presentation"]) == 1
    assert body["presentationSubmission"]["descriptor_map"] == [{
        "id": "m", "format": "jwt_vp", "path": "$.presentation[0]",
        "path_nested": {"id": "m", "format": "jwt_vc", "path": "$.verifiableCredential[0]"}}]
    empty = _post(space, "/presentations/query", _query_body(scope=[]),
                  space.verifier.sign_si_token(space.holder.did, token=access))
    assert empty.status_code == 400 and empty.json()["code"] == "schema_violation"


def test_client_reports_refusal(space: Space) -> None:
    with pytest.raises(RemoteError) as err:
        asyncio.run(_client_without_token(space))
    assert "access_token_missing" in str(err.value)


async def _client_without_token(space: Space) -> None:
    async with httpx.AsyncClient() as client:
        await query_presentations(space.holder_url, verifier_key=space.verifier.key,  # type: ignore[attr-defined]
                                  verifier_did=space.verifier.did, verifier_kid=space.verifier.kid,
                                  holder_did=space.holder.did, holder_access_token=None, scopes=[MEMBERSHIP],
                                  http_client=client)


def _credential_message(payload: str, ctype: str) -> dict[str, Any]:
    return {"@context": [DCP_CONTEXT], "type": "CredentialMessage", "issuerPid": "i-1", "holderPid": "h-1",
            "status": "ISSUED", "credentials": [{"credentialType": ctype, "payload": payload, "format": "jwt"}]}


def test_storage_requires_write_grant_and_matching_issuer(space: Space, tmp_path: Path) -> None:
    # the "issuer" here is the verifier wallet (it has a resolvable did:web)
    issuer = space.verifier
    credential = vc(issuer, space.holder.did, "MembershipCredential")
    write = space.holder.issue_access_token(issuer.did, ["org.eclipse.edc.vc.type:MembershipCredential:write"])
    read = space.holder.issue_access_token(issuer.did, [MEMBERSHIP])
    denied = _post(space, "/credentials", _credential_message(credential, "MembershipCredential"),
                   issuer.sign_si_token(space.holder.did, token=read))
    assert denied.status_code == 403 and denied.json()["code"] == "scope_not_granted"
    assert space.holder.credentials() == []
    forged = vc(space.issuer, space.holder.did, "MembershipCredential")  # issued by someone else
    mismatch = _post(space, "/credentials", _credential_message(forged, "MembershipCredential"),
                     issuer.sign_si_token(space.holder.did, token=write))
    assert mismatch.status_code == 403 and mismatch.json()["code"] == "issuer_mismatch"
    ok = _post(space, "/credentials", _credential_message(credential, "MembershipCredential"),
               issuer.sign_si_token(space.holder.did, token=write))
    assert ok.status_code == 200, ok.text
    assert [c.types for c in space.holder.credentials(["MembershipCredential"])] == [
        ("VerifiableCredential", "MembershipCredential")]


def test_storage_rejects_forged_signature(space: Space) -> None:
    issuer = space.verifier
    now = datetime.now(UTC)
    forged = issue_vc_jwt({
        "@context": ["https://www.w3.org/ns/credentials/v2"], "id": "urn:uuid:forged",
        "type": ["VerifiableCredential", "MembershipCredential"], "issuer": issuer.did,
        "validFrom": now.strftime("%Y-%m-%dT%H:%M:%SZ"), "credentialSubject": {"id": space.holder.did},
    }, space.issuer.key, issuer.kid)  # claims the issuer's kid, signed with another key
    write = space.holder.issue_access_token(issuer.did, ["org.eclipse.edc.vc.type:MembershipCredential:write"])
    answer = _post(space, "/credentials", _credential_message(forged, "MembershipCredential"),
                   issuer.sign_si_token(space.holder.did, token=write))
    assert answer.status_code == 400 and answer.json()["code"] == "credential_invalid"
    assert "signature_invalid" in answer.json()["detail"]
    assert space.holder.credentials() == []


def test_oversized_bodies_and_tokens_refused(space: Space) -> None:
    access = space.holder.issue_access_token(space.verifier.did, [MEMBERSHIP])
    huge = _query_body(scope=[MEMBERSHIP], padding="x" * (3 * 1024 * 1024))
    answer = _post(space, "/presentations/query", huge, space.verifier.sign_si_token(space.holder.did, token=access))
    assert answer.status_code == 413 and answer.json()["code"] == "body_too_large"
    answer = _post(space, "/presentations/query", _query_body(scope=[MEMBERSHIP]), "a." + "b" * 70000 + ".c")
    assert answer.status_code == 401 and answer.json()["code"] == "too_large"
    not_json = httpx.post(space.holder_url + "/presentations/query", content=b"{nope",  # type: ignore[attr-defined]
                          headers={"Authorization": "Bearer " + space.verifier.sign_si_token(space.holder.did,
                                                                                             token=access)})
    assert not_json.status_code == 400 and not_json.json()["code"] == "body_not_json"
