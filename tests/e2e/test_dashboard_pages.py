"""The dashboard router on a real database and wallet: pages render what the tables hold, the audit status
reflects tampering, and access needs the management API key."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

from connector.audit import AuditLog
from connector.config import Settings, settings_from_mapping
from connector.dashboard import create_router
from connector.storage.db import open_database
from identity.wallet import Wallet

KEY = "dashboard-test-key"


@dataclass
class DashboardContext:
    """The parts of the connector context the dashboard reads (all real: settings, database, wallet)."""

    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    wallet: Wallet

    @property
    def did(self) -> str:
        return self.wallet.did


@pytest.fixture
def ctx(database_url: str, tmp_path: Path) -> Any:
    settings = settings_from_mapping({
        "participant": {"name": "Schwarzwald Präzisionsteile GmbH", "jurisdiction": "DE", "bpn": "BPNL00000001SWPT"},
        "storage": {"url": database_url}, "management": {"api_key": KEY}})
    engine, sessions = open_database(database_url)
    wallet = Wallet.init(tmp_path / "wallet", None, "pw", "EdDSA")
    yield DashboardContext(settings, engine, sessions, wallet)
    wallet.close()
    engine.dispose()


@pytest.fixture
def client(ctx: Any) -> TestClient:
    app = FastAPI()
    app.include_router(create_router(ctx), prefix="/dashboard")
    return TestClient(app)


def test_pages_need_the_key(client: TestClient) -> None:
    assert client.get("/dashboard/").status_code >= 400
    assert client.get("/dashboard/login", params={"key": "wrong"}, follow_redirects=False).status_code >= 400
    answer = client.get("/dashboard/login", params={"key": KEY}, follow_redirects=False)
    assert answer.status_code == 303
    assert client.get("/dashboard/").status_code == 200  # the cookie from login
    assert TestClient(client.app).get("/dashboard/audit", headers={"X-Api-Key": KEY}).status_code == 200


def test_decisions_show_the_policy_explanation(client: TestClient, ctx: Any) -> None:
    audit = AuditLog.for_wallet(ctx.sessions, ctx.wallet)
    audit.record("negotiation.decision", process_id="neg-1", counterparty="did:web:kansai.example",
                 decision="permit", summary="offer matches; contract policy permits use")
    audit.record("negotiation.decision", process_id="neg-2", counterparty="did:web:atlantic.example",
                 decision="deny", reasons=["xb:certification hasPart DataSecurityCertification: not satisfied",
                                           "xb:jurisdiction isPartOf adequate: US is not adequate"])
    audit.checkpoint()
    headers = {"X-Api-Key": KEY}
    page = client.get("/dashboard/decisions", headers=headers).text
    assert "DataSecurityCertification: not satisfied" in page and "US is not adequate" in page
    assert 'data-kind="negotiation.decision"' in page and "did:web:atlantic.example" in page
    overview = client.get("/dashboard/", headers=headers).text
    assert 'id="count-refusals">1<' in overview
    audit_page = client.get("/dashboard/audit", headers=headers).text
    assert 'data-ok="true"' in audit_page and "2 entries, 1 signed checkpoints" in audit_page


def test_refusals_stay_visible_behind_many_permitted_requests(client: TestClient, ctx: Any) -> None:
    audit = AuditLog.for_wallet(ctx.sessions, ctx.wallet)
    audit.record("negotiation.decision", process_id="neg-9", counterparty="did:web:atlantic.example",
                 decision="deny", reasons=["xb:jurisdiction isPartOf adequate: US is not adequate"])
    for use in range(2100):  # more than the newest rows the full page reads
        audit.record("data.pull", process_id="tp-1", decision="permit", uses=use + 1)
    headers = {"X-Api-Key": KEY}
    everything = client.get("/dashboard/decisions", headers=headers).text
    assert "US is not adequate" not in everything and 'class="decision permit"' in everything
    refusals = client.get("/dashboard/refusals", headers=headers).text
    assert "US is not adequate" in refusals and 'class="decision permit"' not in refusals
    assert "Every decision" in refusals
    overview = client.get("/dashboard/", headers=headers).text
    assert 'id="count-refusals">1<' in overview


def test_tampering_shows_as_broken(client: TestClient, ctx: Any) -> None:
    audit = AuditLog.for_wallet(ctx.sessions, ctx.wallet)
    audit.record("negotiation.decision", process_id="neg-1", decision="permit", summary="ok")
    audit.record("transfer.suspended", process_id="tp-1", decision="deny", reason="membership revoked")
    with ctx.engine.begin() as conn:
        conn.execute(text("UPDATE audit_entries SET body = replace(body, 'revoked', 'renewed') WHERE seq = 2"))
    page = client.get("/dashboard/audit", headers={"X-Api-Key": KEY}).text
    assert 'data-ok="false"' in page and "entry 2" in page


def test_catalog_shows_assets_offers_and_policies(client: TestClient, ctx: Any) -> None:
    from connector.storage.tables_catalog import AssetRow, ContractDefinitionRow, PolicyDefinitionRow

    with ctx.sessions.begin() as session:
        session.add(AssetRow(id="quality-measurements", properties={"https://w3id.org/edc/v0.0.1/ns/name":
                                                                    "Production quality measurements"},
                             private_properties={}, data_address={"type": "File"}, data_class="important",
                             jurisdiction="DE", created_at=1, updated_at=1))
        session.add(PolicyDefinitionRow(id="quality-contract", policy={"permission": [{"action": "use"}]},
                                        policy_uid="https://w3id.org/pactum/library/important-certified",
                                        policy_hash="cd" * 32, private_properties={}, created_at=1, updated_at=1))
        session.add(ContractDefinitionRow(id="quality-offer", access_policy_id="quality-access",
                                          contract_policy_id="quality-contract", assets_selector=[],
                                          approval="auto", private_properties={}, created_at=1, updated_at=1))
    page = client.get("/dashboard/catalog", headers={"X-Api-Key": KEY}).text
    assert 'data-asset="quality-measurements"' in page and "Production quality measurements" in page
    assert "quality-offer" in page and "important-certified" in page
    overview = client.get("/dashboard/", headers={"X-Api-Key": KEY}).text
    assert 'id="count-offers">1<' in overview


def test_catalog_and_agreements_render_even_when_empty(client: TestClient) -> None:
    headers = {"X-Api-Key": KEY}
    for path in ("catalog", "agreements", "transfers"):
        answer = client.get(f"/dashboard/{path}", headers=headers)
        assert answer.status_code == 200 and "Schwarzwald Präzisionsteile GmbH" in answer.text
        assert "Traceback" not in answer.text
