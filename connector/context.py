"""Everything a request needs, built once per process and handed to every router factory.

WHY one object: the protocol, management, data-plane and identity apps share the database, the wallet, the
DID resolver, the trust list and one HTTP client; passing one context keeps each router a plain factory
(``create_router(ctx)``) that tests can build against a real database without starting the whole process.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from connector.config import Settings, keystore_passphrase
from connector.errors import ConfigError
from identity.credentials.status_list import HttpStatusFetcher
from identity.credentials.trust import TrustList
from identity.dcp.jti_store import JtiStore
from identity.dcp.verifier import DcpVerifier
from identity.dids.resolver import Resolver
from identity.dids.web import is_loopback_host
from identity.errors import IdentityError
from identity.tls import check_server_files, client_verify
from identity.wallet import KEYSTORE_FILE, WALLET_FILE, Wallet

if TYPE_CHECKING:
    from connector.outbox import Outbox
    from connector.policy_gate import PolicyGate
    from connector.trust import DcpTrust

CREDENTIAL_SERVICE_PATH = "/api/credentials"


@dataclass
class ConnectorContext:
    """Shared services of one connector process (see module docstring)."""

    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    wallet: Wallet
    resolver: Resolver
    trust_list: TrustList
    jti_store: JtiStore
    http: httpx.AsyncClient
    verifier: DcpVerifier
    trust: DcpTrust
    policy_gate: PolicyGate
    outbox: Outbox
    dataplane: Any | None = None  # G's connector.dataplane.DataPlane, attached by connector.app
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def did(self) -> str:
        return self.wallet.did

    @property
    def credential_service_url(self) -> str:
        return self.settings.identity_url + CREDENTIAL_SERVICE_PATH

    async def aclose(self) -> None:
        """Release network and database resources; safe to call twice."""
        await self.http.aclose()
        self.wallet.close()
        self.jti_store.close()
        self.engine.dispose()


def loopback_http_hosts(settings: Settings) -> tuple[str, ...]:
    """Hosts where plain http is acceptable: loopback only, and only when this connector itself runs there.

    WHY: a local demo or test runs every party on 127.0.0.1 over http; production resolution stays https
    (and so does a connector that serves https itself, even on loopback).
    """
    hosts = {urlsplit(u).hostname or "" for u in (settings.identity_url, settings.protocol_url)
             if urlsplit(u).scheme == "http"}
    if any(is_loopback_host(h) for h in hosts):
        return ("127.0.0.1", "localhost", "::1")
    return ()


def open_wallet(settings: Settings) -> Wallet:
    """Open the wallet next to the keystore, creating it on first start with this connector's DID.

    The wallet folder is the keystore's folder (it holds ``keystore.json``, ``wallet.json`` and the
    credential database); the credential service endpoint is published in the DID document.
    """
    keystore = Path(settings.keystore.path)
    if keystore.name != KEYSTORE_FILE:
        raise ConfigError(f"keystore.path = {str(keystore)!r}: the wallet expects the file to be named "
                          f"{KEYSTORE_FILE} (its folder holds the wallet)")
    folder = keystore.parent
    passphrase = keystore_passphrase(settings)
    try:
        if (folder / WALLET_FILE).exists():
            wallet = Wallet.open(folder, passphrase)
        else:
            wallet = Wallet.init(folder, settings.did, passphrase, settings.keystore.algorithm)
        if not wallet.did.startswith("did:key:"):
            wanted = {"CredentialService": settings.identity_url + CREDENTIAL_SERVICE_PATH,
                      "DataService": settings.protocol_url}
            for service_type, url in wanted.items():
                if wallet.services.get(service_type) != url:
                    wallet.set_service(service_type, url)
    except IdentityError as exc:
        raise ConfigError(f"keystore: {exc}") from exc
    if wallet.did != settings.did:
        raise ConfigError(f"participant.did = {settings.did!r} but the wallet in {folder} belongs to {wallet.did}")
    return wallet


def build_context(settings: Settings) -> ConnectorContext:
    """Open the database (migrated), the wallet and the identity services; wire the adapters."""
    from connector import negotiation, transfer
    from connector.outbox import Outbox
    from connector.policy_gate import PolicyGate
    from connector.protocol.processing import ProcessLocks
    from connector.storage.db import open_database
    from connector.trust import DcpTrust

    try:
        check_server_files(settings.tls.cert_file, settings.tls.key_file)
        verify = client_verify(settings.tls.ca_file)  # DID resolution, DSP, DCP, data plane, status lists
    except IdentityError as exc:
        raise ConfigError(str(exc)) from exc
    engine, sessions = open_database(settings.storage.url)
    wallet = open_wallet(settings)
    allow_http = loopback_http_hosts(settings)
    # for DID documents, DCP presentation queries, status lists and catalog requests (the outbox sends through
    # connector.delivery); keep-alive so busy periods reuse connections instead of opening new ones
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=32)
    http = httpx.AsyncClient(timeout=httpx.Timeout(15.0), limits=limits, verify=verify)
    resolver = Resolver(allow_http_hosts=allow_http, http_client=http)
    resolver.add_document(wallet.did_document())
    trust_list = TrustList(settings.trust.issuers)
    jti_store = JtiStore(wallet.folder / "used_jti.db")
    verifier = DcpVerifier.for_wallet(wallet, resolver=resolver, jti_store=jti_store, trust=trust_list,
                                      http_client=http, allow_http_hosts=allow_http,
                                      cache_ttl=settings.trust.claims_cache_seconds,
                                      status_fetcher=HttpStatusFetcher(http, ttl=settings.trust.claims_cache_seconds,
                                                                       allow_http_hosts=allow_http))
    ctx = ConnectorContext(
        settings=settings, engine=engine, sessions=sessions, wallet=wallet, resolver=resolver,
        trust_list=trust_list, jti_store=jti_store, http=http, verifier=verifier,
        trust=None, policy_gate=PolicyGate(), outbox=None,  # type: ignore[arg-type]  # filled just below
    )
    ctx.trust = DcpTrust(ctx)
    ctx.outbox = Outbox(ctx)
    ctx.extras["locks"] = ProcessLocks()
    negotiation.register(ctx)
    transfer.register(ctx)
    return ctx
