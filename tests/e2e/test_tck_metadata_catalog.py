"""DSP 2025-1 conformance, metadata and catalog (TCK ids MET, CAT): the scripted peer asks the CUT."""

from __future__ import annotations

import re
import uuid
from typing import Any

import httpx
import pytest

from connector.protocol.schemas import validate_message
from tests.e2e.conftest import Authority
from tests.e2e.flows import publish
from tests.e2e.tck_peer import Tck, dsp, shared_tck


@pytest.fixture(scope="session")
def tck(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, authority: Authority) -> Tck:
    return shared_tck(request, tmp_path_factory, authority)


def _dataset_ids(catalog: dict[str, Any]) -> list[str]:
    datasets = catalog.get("dataset") or []
    return [d["@id"] for d in (datasets if isinstance(datasets, list) else [datasets])]


def _catalog(tck: Tck, message: dict[str, Any], query: str = "") -> httpx.Response:
    return tck.peer.send(tck.cut, "/catalog/request" + query, message)


def test_met_01_01_version_metadata_is_public_and_conformant(tck: Tck) -> None:
    r = httpx.get(tck.cut.protocol_url + "/.well-known/dspace-version", timeout=10)
    assert r.status_code == 200
    body = r.json()
    # the version document has no @type of its own; the validator selects the schema by it
    validate_message({"@type": "VersionResponse", **body}, "VersionResponse")
    entry = next(v for v in body["protocolVersions"] if v["version"] == "2025-1")
    assert entry["binding"] == "HTTPS" and entry["path"].startswith("/")
    assert entry["serviceId"].split("#")[0] == tck.cut.did  # tells the caller which DID to address tokens to


def test_cat_01_01_catalog_request_answers_a_conformant_catalog(tck: Tck) -> None:
    asset_id = publish(tck.cut)
    r = _catalog(tck, dsp("CatalogRequestMessage"))
    assert r.status_code == 200, r.text
    catalog = validate_message(r.json(), "Catalog")
    assert catalog["participantId"] == tck.cut.did
    assert asset_id in _dataset_ids(catalog)
    found = next(d for d in catalog["dataset"] if d["@id"] == asset_id)
    offers = found["hasPolicy"]
    assert offers and all(o["@type"] == "Offer" and o["@id"] for o in offers)


def test_cat_01_02_dataset_request_answers_a_conformant_dataset(tck: Tck) -> None:
    asset_id = publish(tck.cut)
    r = tck.peer.send(tck.cut, f"/catalog/datasets/{asset_id}", method="GET")
    assert r.status_code == 200, r.text
    found = validate_message(r.json(), "Dataset")
    assert found["@id"] == asset_id and found["hasPolicy"]


def test_cat_01_03_unknown_dataset_is_404_with_a_catalog_error(tck: Tck) -> None:
    r = tck.peer.send(tck.cut, f"/catalog/datasets/urn:uuid:{uuid.uuid4()}", method="GET")
    assert r.status_code == 404
    error = validate_message(r.json(), "CatalogError")
    assert error["code"] and error["reason"]


def test_cat_01_04_filter_selects_datasets(tck: Tck) -> None:
    wanted, other = publish(tck.cut), publish(tck.cut)
    criterion = {"operandLeft": "https://w3id.org/edc/v0.0.1/ns/id", "operator": "=", "operandRight": wanted}
    r = _catalog(tck, dsp("CatalogRequestMessage", filter=[criterion]))
    assert r.status_code == 200, r.text
    ids = _dataset_ids(validate_message(r.json(), "Catalog"))
    assert ids == [wanted] and other not in ids


def test_cat_01_05_unsupported_filter_is_400(tck: Tck) -> None:
    r = _catalog(tck, dsp("CatalogRequestMessage", filter=["not a criterion"]))
    assert r.status_code == 400, r.text
    validate_message(r.json(), "CatalogError")


def test_cat_01_06_pagination_links_walk_the_whole_catalog(tck: Tck) -> None:
    for _ in range(3):
        publish(tck.cut)
    everything = _dataset_ids(_catalog(tck, dsp("CatalogRequestMessage")).json())
    assert len(everything) >= 3
    seen: list[str] = []
    query: str | None = "?limit=2"
    pages = 0
    while query is not None:
        r = _catalog(tck, dsp("CatalogRequestMessage"), query or "")
        assert r.status_code == 200, r.text
        page = _dataset_ids(validate_message(r.json(), "Catalog"))
        assert 0 < len(page) <= 2
        seen.extend(page)
        pages += 1
        nxt = re.search(r'<([^>]+)>;\s*rel="next"', r.headers.get("link", ""))
        query = "?" + nxt.group(1).split("?", 1)[1] if nxt else None
        if pages > 1:
            assert 'rel="previous"' in r.headers["link"]
    assert seen == everything and pages == -(-len(everything) // 2)


def test_cat_01_07_catalog_request_without_token_is_refused(tck: Tck) -> None:
    r = httpx.post(tck.cut.protocol_url + "/catalog/request", json=dsp("CatalogRequestMessage"), timeout=10)
    assert r.status_code == 401
    validate_message(r.json(), "CatalogError")


def test_cat_01_08_malformed_catalog_request_is_400(tck: Tck) -> None:
    r = tck.peer.send(tck.cut, "/catalog/request", {"@context": ["https://w3id.org/dspace/2025/1/context.jsonld"],
                                                   "@type": "DatasetRequestMessage"}, validate=False)
    assert r.status_code == 400, r.text
    validate_message(r.json(), "CatalogError")


def test_cat_01_09_datasets_the_access_policy_hides_are_not_disclosed(tck: Tck) -> None:
    hidden_access = {"@context": "http://www.w3.org/ns/odrl.jsonld", "@type": "Set", "permission": [{
        "action": "use", "constraint": [{"leftOperand": "https://w3id.org/catenax/policy/FrameworkAgreement",
                                         "operator": "eq", "rightOperand": "pcf:1.0"}]}]}
    hidden = publish(tck.cut, access=hidden_access)
    criterion = {"operandLeft": "https://w3id.org/edc/v0.0.1/ns/id", "operator": "=", "operandRight": hidden}
    r = _catalog(tck, dsp("CatalogRequestMessage", filter=[criterion]))
    assert r.status_code == 200 and _dataset_ids(r.json()) == []
    r = tck.peer.send(tck.cut, f"/catalog/datasets/{hidden}", method="GET")
    assert r.status_code == 404  # the same answer as for a dataset that does not exist
