"""deploy/docker-compose.yml without Docker: each service a local process with its own environment, each
PostgreSQL service its own database on a real throwaway PostgreSQL server (tests/pg.py), then the demo story."""

from __future__ import annotations

import base64
import hashlib
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from connector.demo import run_story
from connector.demo.compose import Launched, launch_compose, load_compose
from connector.demo.narrate import Narrator, Outcome
from connector.demo.processes import Supervisor
from connector.demo.space import DataSpace, trusted_issuers
from tests.e2e.browser import dump_dom as chromium_dom
from tests.e2e.test_demo import processes_mentioning

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "deploy" / "docker-compose.yml"
IDENTITY_AND_CATALOG = ("authority DID document", "participants registered", "wallet and did:web", "credentials issued",
                        "publishes its catalog", "sees the supplier's catalog", "negotiates part-traceability",
                        "logistics negotiates quality", "transfers part-traceability", "receives the traceability",
                        "audit trail verifies")


@dataclass
class ComposeRun:
    space: DataSpace
    launched: Launched
    outcomes: list[Outcome]
    seconds: float


@pytest.fixture(scope="module")
def compose_run(postgres_server: str) -> Iterator[ComposeRun]:
    root = Path(tempfile.mkdtemp(prefix="pactum-compose-"))
    started = time.monotonic()
    urls = databases_for([s.name for s in load_compose(COMPOSE).services.values() if s.is_postgres],
                         postgres_server)
    with ExitStack() as stack:
        supervisor = stack.enter_context(Supervisor(root / "logs"))
        space, launched = launch_compose(COMPOSE, root, supervisor, postgres_urls=urls)
        narrator = Narrator(quiet=True)
        run_story(space, narrator)
        yield ComposeRun(space, launched, narrator.outcomes, time.monotonic() - started)
    assert not processes_mentioning(str(root)), "compose services left running"


def databases_for(names: list[str], server_url: str) -> dict[str, str]:
    """One fresh database per compose PostgreSQL service, on the session's real throwaway server."""
    import psycopg

    urls = {}
    with psycopg.connect(server_url, autocommit=True) as conn:
        for name in names:
            database = f"compose_{name.replace('-', '_')}_{uuid.uuid4().hex[:8]}"
            conn.execute(f"CREATE DATABASE {database}")
            urls[name] = server_url.rsplit("/", 1)[0] + "/" + database
    return urls


def _failed(outcomes: list[Outcome]) -> str:
    return "\n".join(f"{o.step}: expected {o.expected}, got {o.actual} ({o.reason[:300]})" for o in outcomes
                     if not o.ok)


@pytest.mark.slow
def test_services_run_with_their_compose_environment(compose_run: ComposeRun) -> None:
    env = compose_run.launched.env
    assert env["supplier"]["PACTUM_STORAGE__URL"].startswith("postgresql://pactum@127.0.0.1:")
    assert env["authority"]["PACTUM_AUTHORITY_DATABASE_URL"].startswith("postgresql+psycopg://pactum@127.0.0.1:")
    assert env["supplier"]["PACTUM_TRUST__ISSUERS"] == trusted_issuers(compose_run.space.authority.did)
    assert set(compose_run.space.companies) == {"supplier", "manufacturer", "logistics", "recycler"}
    assert compose_run.launched.argv["supplier"][-1].endswith("fs/supplier/srv/pactum/config/supplier.toml")


@pytest.mark.slow
def test_parties_speak_https_only_and_trust_the_data_space_ca(compose_run: ComposeRun) -> None:
    space = compose_run.space
    assert space.ca_file is not None and space.ca_file.is_file()
    assert space.authority.url.startswith("https://127.0.0.1:")
    supplier = space.company("supplier")
    assert all(url.startswith("https://") for url in (supplier.protocol_url, supplier.data_url,
                                                      supplier.identity_url, supplier.management_url))
    did_document = supplier.identity_url + "/.well-known/did.json"
    assert httpx.get(did_document, verify=space.verify, timeout=10).json()["id"] == supplier.did
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        httpx.get(did_document, timeout=10)  # the public CAs alone do not vouch for the data space's parties
    with pytest.raises(httpx.HTTPError):
        httpx.get(did_document.replace("https://", "http://"), timeout=10)  # no plain http on any port


@pytest.mark.slow
def test_identity_catalog_and_traceability_on_postgres(compose_run: ComposeRun) -> None:
    chosen = [o for o in compose_run.outcomes if any(word in o.step for word in IDENTITY_AND_CATALOG)]
    assert len(chosen) == 22, [o.step for o in chosen]
    assert all(o.ok for o in chosen), _failed(chosen)


@pytest.mark.slow
def test_whole_story_on_compose(compose_run: ComposeRun) -> None:
    assert all(o.ok for o in compose_run.outcomes), _failed(compose_run.outcomes)


def spki_pin(cert_file: Path) -> str:
    """Chromium's pin of a server's key: base64 of the SHA-256 of its SubjectPublicKeyInfo."""
    cert = x509.load_pem_x509_certificates(cert_file.read_bytes())[0]
    spki = cert.public_key().public_bytes(serialization.Encoding.DER,
                                          serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(hashlib.sha256(spki).digest()).decode()


@pytest.mark.slow
def test_dashboard_after_the_story_in_chromium(compose_run: ComposeRun) -> None:
    supplier = compose_run.space.company("supplier")
    assert supplier.dashboard_url.startswith("https://") and compose_run.space.ca_file is not None
    # Chromium has its own trust store: it is told the supplier's key (from the tls volume) instead
    pin = f"--ignore-certificate-errors-spki-list={spki_pin(compose_run.space.ca_file.parent / 'supplier.pem')}"

    def dump_dom(url: str) -> str:
        return chromium_dom(url, extra_args=[pin])

    login = f"{supplier.dashboard_url}login?key={supplier.api_key}&next="
    agreements = dump_dom(login + "agreements")
    assert 'class="agreement"' in agreements and "quality-measurements" in agreements
    assert 'data-state="TERMINATED"' in agreements  # the refused negotiations, with their reasons
    decisions = dump_dom(login + "decisions")
    # the newest decisions: the manufacturer's N permitted uses, use N+1 and the revoked member refused
    assert 'class="decision permit"' in decisions and 'class="decision deny"' in decisions
    assert 'class="why refusal"' in agreements and "xb:certification" in agreements  # the logistics refusal
    refusals = dump_dom(login + "refusals")  # behind the N permitted uses, every refusal is still listed
    assert 'class="decision permit"' not in refusals and 'data-kind="negotiation.terminated"' in refusals
    assert "xb:certification" in refusals
