"""The EDC/Tractus-X EDR management API over a real consumer data plane and a real provider."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
from fastapi import FastAPI

from connector.config import settings_from_mapping
from connector.http_errors import install_error_handlers
from connector.management.edrs import create_router
from tests.connector.test_dataplane_support import make_party, serving, transfer_info


def test_edr_query_dataaddress_auto_refresh_and_delete(database_url: str, tmp_path: Path) -> None:
    folder = tmp_path / "src"
    folder.mkdir()
    (folder / "d.txt").write_text("edr data")

    async def scenario() -> None:
        provider = make_party("provider", database_url, tmp_path, token_lifetime=2)
        consumer = make_party("consumer", f"sqlite:///{tmp_path / 'c.db'}", tmp_path)
        settings = settings_from_mapping({"participant": {"name": "consumer"}})
        ctx: Any = SimpleNamespace(settings=settings, sessions=consumer.dataplane.sessions,
                                   dataplane=consumer.dataplane, extras={})
        app = FastAPI()
        install_error_handlers(app)
        app.include_router(create_router(ctx), prefix="/management")
        async with serving(provider, consumer):
            a = await provider.dataplane.start(transfer_info(provider, consumer,
                                                             {"type": "folder", "path": str(folder)}))
            assert a
            consumer.dataplane.store_edr("c-1", a, agreement_id="agr-1", provider_did=provider.did,
                                         asset_id="urn:asset:1")
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://mgmt") as mgmt, \
                    httpx.AsyncClient() as client:
                r = await mgmt.post("/management/v3/edrs/request", json={
                    "@context": {"@vocab": "https://w3id.org/edc/v0.0.1/ns/"}, "@type": "QuerySpec",
                    "filterExpression": [{"operandLeft": "agreementId", "operator": "=", "operandRight": "agr-1"}]})
                assert r.status_code == 200, r.text
                entries = r.json()
                assert [e["transferProcessId"] for e in entries] == ["c-1"]
                assert entries[0]["@type"] == "EndpointDataReferenceEntry" and entries[0]["assetId"] == "urn:asset:1"
                r = await mgmt.post("/management/v3/edrs/request", json={
                    "filterExpression": [{"operandLeft": "agreementId", "operator": "=", "operandRight": "other"}]})
                assert r.json() == []
                r = await mgmt.post("/management/v3/edrs/request", json={
                    "filterExpression": [{"operandLeft": "nope", "operator": "=", "operandRight": "x"}]})
                assert r.status_code == 400
                first = (await mgmt.get("/management/v3/edrs/c-1/dataaddress")).json()
                assert first["endpoint"] == a["endpoint"] and first["authType"] == "bearer"
                assert first["endpointType"] == "https://w3id.org/idsa/v4.1/HTTP"
                got = await client.get(first["endpoint"] + "/d.txt",
                                       headers={"Authorization": first["authorization"]})
                assert got.text == "edr data"
                time.sleep(2.1)  # the 2-second token has expired
                got = await client.get(first["endpoint"] + "/d.txt",
                                       headers={"Authorization": first["authorization"]})
                assert got.status_code == 401 and got.json()["code"] == "token_expired"
                fresh = (await mgmt.get("/management/v3/edrs/c-1/dataaddress?auto_refresh=true")).json()
                assert fresh["authorization"] != first["authorization"]
                got = await client.get(fresh["endpoint"] + "/d.txt",
                                       headers={"Authorization": f"Bearer {fresh['authorization']}"})
                assert got.text == "edr data"
                assert (await mgmt.get("/management/v3/edrs/nope/dataaddress")).status_code == 404
                assert (await mgmt.delete("/management/v3/edrs/c-1")).status_code == 204
                assert (await mgmt.get("/management/v3/edrs/c-1/dataaddress")).status_code == 404

    asyncio.run(scenario())


def test_edr_pull_and_early_delete_with_fulfilment_report(database_url: str, tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from tests.connector.test_duties import _delete_policy

    folder = tmp_path / "src"
    folder.mkdir()
    (folder / "d.txt").write_text("keep only a while")
    policy = _delete_policy(3600)

    async def scenario() -> None:
        provider = make_party("provider", database_url, tmp_path)
        consumer = make_party("consumer", f"sqlite:///{tmp_path / 'c.db'}", tmp_path)
        settings = settings_from_mapping({"participant": {"name": "consumer"}})
        ctx: Any = SimpleNamespace(settings=settings, sessions=consumer.dataplane.sessions,
                                   dataplane=consumer.dataplane, extras={})
        app = FastAPI()
        install_error_handlers(app)
        app.include_router(create_router(ctx), prefix="/management")
        now = datetime.now(UTC)
        async with serving(provider, consumer):
            a = await provider.dataplane.start(transfer_info(provider, consumer,
                                                             {"type": "folder", "path": str(folder)},
                                                             policy=policy, agreement_time=now))
            assert a
            consumer.dataplane.store_edr("c-1", a, agreement_id="agr-1", provider_did=provider.did,
                                         policy=policy, agreement_time=now)
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://mgmt") as mgmt:
                r = await mgmt.post("/management/v3/edrs/c-1/delete")
                assert r.status_code == 404 and r.json()["code"] == "duty_not_found"
                r = await mgmt.post("/management/v3/edrs/c-1/pull", json={"path": "d.txt", "fileName": "../x"})
                assert r.status_code == 403
                r = await mgmt.post("/management/v3/edrs/c-1/pull", json={"sink": "nope"})
                assert r.status_code == 400
                r = await mgmt.post("/management/v3/edrs/c-1/pull", json={"path": "d.txt"})
                assert r.status_code == 200, r.text
                pulled = r.json()
                copy = Path(pulled["location"])
                assert copy.read_text() == "keep only a while" and pulled["size"] == len("keep only a while")
                assert pulled["digest"].startswith("sha-256=") and pulled["receipt"].count(".") == 2
                r = await mgmt.post("/management/v3/edrs/c-1/delete")
                assert r.status_code == 200, r.text
                answer = r.json()
                assert (answer["state"], answer["reported"]) == ("fulfilled", True)
                assert not copy.exists()
                assert (await mgmt.post("/management/v3/edrs/c-1/delete")).status_code == 404
            fulfilled = [e for e in provider.audit.entries() if e.kind == "duty.fulfilled"]
            assert len(fulfilled) == 1 and fulfilled[0].fields["duties_updated"] == 1
            assert any(e.action == "delete" for e in provider.dataplane.events("agr-1"))

    asyncio.run(scenario())
