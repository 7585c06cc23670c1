"""DSP requests are authenticated with DCP: missing, foreign-audience and replayed tokens are refused."""

from __future__ import annotations

import httpx

from identity.dcp.tokens import create_si_token
from identity.dids import did_key_from_key
from identity.keys import generate_key
from tests.e2e.conftest import Dataspace

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
    # the first use passes the token checks (it then fails later: a did:key has no credential service)
    assert first.status_code == 401 and first.json()["code"] != "replayed"
    second = httpx.post(dataspace.provider.protocol_url + "/catalog/request", json=CATALOG_REQUEST, headers=headers)
    assert second.status_code == 401
    assert second.json()["code"] == "replayed"
