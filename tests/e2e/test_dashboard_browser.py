"""The dashboard in a real browser: a real server on loopback, real tables and audit trail, headless Chromium."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI

from connector.audit import AuditLog
from connector.config import settings_from_mapping
from connector.dashboard import create_router
from connector.demo.processes import free_port
from connector.storage.db import open_database
from connector.storage.tables_protocol import AgreementRow, NegotiationRow
from identity.wallet import Wallet
from tests.e2e.browser import dump_dom
from tests.e2e.test_dashboard_pages import KEY, DashboardContext


@pytest.fixture
def dashboard(tmp_path: Path) -> Iterator[tuple[str, Any]]:
    url = f"sqlite:///{tmp_path / 'pactum.db'}"
    settings = settings_from_mapping({"participant": {"name": "Schwarzwald Präzisionsteile GmbH",
                                                      "jurisdiction": "DE"},
                                      "storage": {"url": url}, "management": {"api_key": KEY}})
    engine, sessions = open_database(url)
    wallet = Wallet.init(tmp_path / "wallet", None, "pw", "EdDSA")
    ctx = DashboardContext(settings, engine, sessions, wallet)
    app = FastAPI()
    app.include_router(create_router(ctx), prefix="/dashboard")
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}/dashboard", ctx
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        wallet.close()
        engine.dispose()


def _seed(ctx: Any) -> None:
    now = datetime.now(UTC)
    kansai, atlantic = "did:web:127.0.0.1%3A8284", "did:web:127.0.0.1%3A8384"
    with ctx.sessions.begin() as session:
        session.add(NegotiationRow(id="neg-kansai", role="provider", state="FINALIZED", consumer_pid="c1",
                                   provider_pid="neg-kansai", counterparty_did=kansai,
                                   counterparty_address="http://127.0.0.1:8281", asset_id="quality-measurements",
                                   agreement_id="agr-quality-kansai", approval="auto", created_at=now,
                                   updated_at=now))
        session.add(NegotiationRow(id="neg-atlantic", role="provider", state="TERMINATED", consumer_pid="c2",
                                   provider_pid="neg-atlantic", counterparty_did=atlantic,
                                   counterparty_address="http://127.0.0.1:8381", asset_id="quality-measurements",
                                   approval="auto", error_code="policy_denied",
                                   error_reason="xb:certification hasPart DataSecurityCertification: not satisfied",
                                   created_at=now, updated_at=now))
        session.add(AgreementRow(id="agr-quality-kansai", negotiation_id="neg-kansai", role="provider",
                                 asset_id="quality-measurements", assigner=ctx.did, assignee=kansai,
                                 policy=json.dumps({"permission": [{"action": "use"}]}), policy_hash="ab" * 32,
                                 signed_at=now, counterparty_address="http://127.0.0.1:8281",
                                 counterparty_did=kansai))
    audit = AuditLog.for_wallet(ctx.sessions, ctx.wallet)
    audit.record("negotiation.decision", process_id="neg-kansai", counterparty=kansai, decision="permit",
                 summary="contract policy permits use by Kansai Motors K.K.")
    audit.record("negotiation.decision", process_id="neg-atlantic", counterparty=atlantic, decision="deny",
                 reasons=["xb:certification hasPart DataSecurityCertification: not satisfied",
                          "xb:jurisdiction isPartOf adequate: US is not in adequate"])
    audit.checkpoint()


def test_chromium_shows_agreements_and_refusals(dashboard: tuple[str, Any]) -> None:
    base, ctx = dashboard
    _seed(ctx)
    denied = dump_dom(f"{base}/agreements")
    assert "management API key" in denied and "agr-quality-kansai" not in denied
    agreements = dump_dom(f"{base}/login?key={KEY}&next=agreements")
    assert 'class="agreement"' in agreements and "agr-quality-kansai" in agreements
    assert 'data-state="TERMINATED"' in agreements and "DataSecurityCertification: not satisfied" in agreements
    decisions = dump_dom(f"{base}/login?key={KEY}&next=decisions")
    assert "US is not in adequate" in decisions and 'class="decision deny"' in decisions
    assert 'data-kind="negotiation.terminated"' in decisions and "policy_denied" in decisions
    assert 'data-kind="negotiation.finalized"' in decisions and "agr-quality-kansai" in decisions
    audit = dump_dom(f"{base}/login?key={KEY}&next=audit")
    assert 'data-ok="true"' in audit and "2 entries, 1 signed checkpoints" in audit
