"""Shared set-up for the data-plane tests: a provider and a consumer, each a real DataPlane with its own
database, did:key identity and uvicorn server on a free loopback port, all in the test's event loop."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from connector.audit import AuditLog
from connector.config import DataSource
from connector.dataplane import AssetInfo, DataPlane, TransferInfo, create_data_app
from connector.storage.db import open_database
from identity.dids import Resolver, did_key_from_key
from identity.keys import KeyPair, generate_key
from policies import Policy, parse_policy

ODRL_CONTEXT = "http://www.w3.org/ns/odrl.jsonld"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_policy(constraints: list[dict[str, Any]] | None = None, duties: list[dict[str, Any]] | None = None,
                uid: str = "urn:agreement:1", target: str = "urn:asset:1") -> Policy:
    permission: dict[str, Any] = {"@id": uid + "#use", "action": "use", "target": target}
    if constraints:
        permission["constraint"] = constraints
    if duties:
        permission["duty"] = duties
    return parse_policy({"@context": ODRL_CONTEXT, "@id": uid, "@type": "Agreement", "permission": [permission]})


class DictStates:
    """The transfer state machine's answer, held in a dict the test changes (E's real table in production)."""

    def __init__(self) -> None:
        self.states: dict[str, str] = {}

    def state_of(self, transfer_id: str) -> str | None:
        return self.states.get(transfer_id)


@dataclass
class Party:
    key: KeyPair
    did: str
    kid: str
    dataplane: DataPlane
    audit: AuditLog
    url: str
    folder: Path
    http: httpx.AsyncClient
    server: uvicorn.Server | None = None
    task: asyncio.Task[Any] | None = None
    states: DictStates = field(default_factory=DictStates)


def make_party(name: str, database_url: str, tmp: Path, **overrides: Any) -> Party:
    key = generate_key("EdDSA")
    did = did_key_from_key(key)
    kid = f"{did}#{key.public_multibase()}"
    _engine, sessions = open_database(database_url)
    audit = AuditLog(sessions, signer=key, kid=kid, did=did, checkpoint_every=50)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    resolver = Resolver()
    http = httpx.AsyncClient(timeout=30)
    folder = tmp / name
    folder.mkdir(parents=True, exist_ok=True)
    states = DictStates()

    async def resolve_key(k: str) -> KeyPair:
        return await resolver.verification_key(k, "assertionMethod")

    kwargs: dict[str, Any] = dict(sessions=sessions, key=key, kid=kid, did=did, data_url=url, audit=audit, http=http,
                                  data_folder=folder / "received", states=states, key_resolver=resolve_key)
    kwargs.update(overrides)
    dp = DataPlane(**kwargs)
    return Party(key, did, kid, dp, audit, url, folder, http, states=states)


@contextlib.asynccontextmanager
async def serving(*parties: Party) -> AsyncIterator[None]:
    """Run each party's data app on its port inside the current loop."""
    for party in parties:
        port = int(party.url.rsplit(":", 1)[1])
        party.server = uvicorn.Server(uvicorn.Config(create_data_app(party.dataplane), host="127.0.0.1", port=port,
                                                     log_level="warning", lifespan="off"))
        party.task = asyncio.create_task(party.server.serve())
    for party in parties:
        for _ in range(500):
            if party.server and party.server.started:
                break
            await asyncio.sleep(0.01)
    try:
        yield
    finally:
        for party in parties:
            await party.dataplane.drain()
            if party.server:
                party.server.should_exit = True
        for party in parties:
            if party.task:
                await party.task
            await party.http.aclose()


def transfer_info(provider: Party, consumer: Party, data_address: dict[str, Any], *, policy: Policy | None = None,
                  transfer_id: str = "tp-1", agreement_id: str = "agr-1", properties: dict[str, Any] | None = None,
                  agreement_time: datetime | None = None, transfer_type: str = "HttpData-PULL",
                  consumer_address: dict[str, Any] | None = None, consumer_pid: str | None = None) -> TransferInfo:
    provider.states.states[transfer_id] = "STARTED"
    return TransferInfo(
        transfer_id=transfer_id, agreement_id=agreement_id, policy=policy or make_policy(),
        agreement_time=agreement_time or datetime.now(UTC) - timedelta(minutes=1),
        asset=AssetInfo("urn:asset:1", data_address, properties or {}), consumer_did=consumer.did,
        transfer_type=transfer_type, consumer_data_address=consumer_address, consumer_pid=consumer_pid)


def token_of(address: dict[str, Any]) -> str:
    return next(p["value"] for p in address["endpointProperties"] if p["name"] == "authorization")


def file_source(tmp: Path, name: str = "source", content: bytes = b"hello data plane\n" * 1000
                ) -> tuple[Path, DataSource]:
    folder = tmp / name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "data.bin").write_bytes(content)
    return folder, DataSource(name=name, type="folder", path=str(folder))
