"""DSP requests are authenticated with DCP: missing, foreign-audience, forged and replayed tokens are refused;
a valid token that grants nothing to read is a caller without claims."""

from __future__ import annotations

import time

import httpx
import pytest

from connector.config import Trust
from identity.dcp.jws import parse_jws, sign_jws
from identity.dcp.tokens import create_si_token
from identity.dids import did_key_from_key
from identity.keys import generate_key
from tests.e2e.conftest import Connector, Dataspace, make_connector
from tests.e2e.flows import EDC, MEMBERS_ONLY, negotiate, publish

CATALOG_REQUEST = {"@context": ["https://w3id.org/dspace/2025/1/context.jsonld"], "@type": "CatalogRequestMessage"}


def test_met_01_01_version_metadata_is_public(dataspace: Dataspace) -> None:
    r = httpx.get(dataspace.provider.protocol_url + "/.well-known/dspace-version")
    assert r.status_code == 200
    versions = r.json()["protocolVersions"]
    assert versions[0]["version"] == "2025-1" and versions[0]["binding"] == "HTTPS"
    assert versions[0]["serviceId"].split("#")[0] == dataspace.provider.did


def test_request_without_token_is_401(dataspace: Dataspace) -> None:
    r = httpx.post(dataspace.provider.protocol_url + "/catalog/request", json=CATALOG_REQUEST)
    assert r.status_code == 401
    assert r.json()["@type"] == "CatalogError" and r.json()["code"] == "token_missing"


def _si_token(audience: str) -> str:
    key = generate_key("EdDSA")
    did = did_key_from_key(key)
    return create_si_token(key, did=did, kid=f"{did}#{key.public_multibase()}", audience=audience)


def test_token_for_another_audience_is_refused(dataspace: Dataspace) -> None:
    token = _si_token(dataspace.consumer.did)  # addressed to the consumer, presented to the provider
    r = httpx.post(dataspace.provider.protocol_url + "/catalog/request", json=CATALOG_REQUEST,
                   headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 401
    assert r.json()["code"] == "audience_mismatch" and dataspace.provider.did in r.json()["reason"][0]


def test_replayed_token_is_refused(dataspace: Dataspace) -> None:
    token = _si_token(dataspace.provider.did)
    headers = {"Authorization": f"Bearer {token}"}
    first = httpx.post(dataspace.provider.protocol_url + "/catalog/request", json=CATALOG_REQUEST, headers=headers)
    # the first use is a valid token granting nothing to read: a caller without claims, answered
    assert first.status_code == 200 and first.json()["@type"] == "Catalog", first.text
    second = httpx.post(dataspace.provider.protocol_url + "/catalog/request", json=CATALOG_REQUEST, headers=headers)
    assert second.status_code == 401
    assert second.json()["code"] == "replayed"


def test_forged_token_is_401(dataspace: Dataspace) -> None:
    claims = parse_jws(_si_token(dataspace.provider.did)).payload
    forged = sign_jws(claims, generate_key("EdDSA"), kid=f"{claims['iss']}#{claims['iss'].split(':')[-1]}")
    r = httpx.post(dataspace.provider.protocol_url + "/catalog/request", json=CATALOG_REQUEST,
                   headers={"Authorization": f"Bearer {forged}"})
    assert r.status_code == 401 and r.json()["code"] == "signature_invalid", r.text


def _catalog_ids(consumer: Connector, provider: Connector) -> set[str]:
    r = consumer.mgmt("POST", "/v3/catalog/request", json={
        "@context": EDC, "@type": "CatalogRequest", "counterPartyAddress": provider.protocol_url,
        "counterPartyId": provider.did, "protocol": "dataspace-protocol-http:2025-1"})
    assert r.status_code == 200, r.text
    datasets = r.json().get("dataset") or []
    return {d["@id"] for d in (datasets if isinstance(datasets, list) else [datasets])}


def test_participants_without_credentials_see_open_offers_and_are_refused_by_policy(
        dataspace: Dataspace, tmp_path_factory: pytest.TempPathFactory) -> None:
    """No credentials: authenticated without claims (no 401); a revoked member is still refused outright."""
    provider, authority = dataspace.provider, dataspace.authority
    base = tmp_path_factory.mktemp("trust")
    newcomer = make_connector(base, "newcomer", authority, credentials=())
    revoked = make_connector(base, "revoked", authority)
    authority.revoke(revoked.credential_ids[0])
    open_access = publish(provider)  # anyone may see it; the contract needs a membership
    members_only = publish(provider, access=MEMBERS_ONLY)
    for connector in (newcomer, revoked):
        connector.launch()
    try:
        for connector in (newcomer, revoked):
            connector.wait_ready()
        seen = _catalog_ids(newcomer, provider)
        assert open_access in seen and members_only not in seen
        assert {open_access, members_only} <= _catalog_ids(dataspace.consumer, provider)

        negotiation = negotiate(newcomer, provider, open_access)
        assert negotiation["state"] == "TERMINATED", negotiation
        assert "contract policy not satisfied" in str(negotiation.get("errorDetail")), negotiation

        # the provider may hold the authority's status list from just before the revocation: it notices the
        # revocation within the documented cache bound (trust.claims_cache_seconds), not necessarily at once
        deadline = time.monotonic() + Trust().claims_cache_seconds + 5
        while True:
            r = revoked.mgmt("POST", "/v3/catalog/request", json={
                "@context": EDC, "@type": "CatalogRequest", "counterPartyAddress": provider.protocol_url,
                "counterPartyId": provider.did, "protocol": "dataspace-protocol-http:2025-1"})
            if r.status_code != 200 or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert r.status_code != 200 and "revoked" in r.text, r.text[:500]
    finally:
        newcomer.stop()
        revoked.stop()
