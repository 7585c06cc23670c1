"""deploy/: every configuration validates as written and with each compose service's overrides; the Dockerfile
copies what exists; secrets stay out of the files."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from connector.config import load_settings
from connector.demo.compose import load_compose
from identity.authority.settings import load_authority_settings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
COMPANIES = ("supplier", "manufacturer", "logistics", "recycler")


@pytest.mark.parametrize("name", COMPANIES)
def test_company_configs_validate(name: str) -> None:
    settings = load_settings(DEPLOY / "config" / f"{name}.toml", environ={"PACTUM_WALLET_PASSPHRASE": "x"})
    assert settings.participant.jurisdiction and settings.participant.bpn.startswith("BPNL")
    assert settings.keystore.passphrase is None and settings.keystore.passphrase_env == "PACTUM_WALLET_PASSPHRASE"
    assert settings.management.api_key is None and settings.management.api_key_env
    assert Path(settings.keystore.path).name == "keystore.json"  # the wallet's folder layout
    db = Path(settings.storage.url.removeprefix("sqlite:///")).resolve()
    assert settings.storage.url.startswith("sqlite:///") and db.is_relative_to(DEPLOY / "state")  # git-ignored
    assert set(settings.trust.issuers) >= {"MembershipCredential", "DataSecurityCertification"}


def test_authority_config_validates() -> None:
    settings = load_authority_settings(DEPLOY / "config" / "authority.toml", environ={})
    assert settings.passphrase == "" and settings.admin_key == ""  # secrets only from the environment
    offered = {d.credential_type for d in settings.credentials}
    assert {"MembershipCredential", "DataSecurityCertification", "DataProtectionCertification"} <= offered
    trusted = set(load_settings(DEPLOY / "config" / "supplier.toml", environ={}).trust.issuers)
    assert trusted <= offered, "connectors ask for a credential type the authority does not issue"


@pytest.mark.parametrize("name", COMPANIES)
def test_compose_overrides_validate(name: str) -> None:
    service = load_compose(DEPLOY / "docker-compose.yml").services[name]
    settings = load_settings(DEPLOY / "config" / f"{name}.toml", environ=service.environment)
    assert settings.storage.url.startswith("postgresql://") and f"@{name}-db:5432/" in settings.storage.url
    assert settings.did == f"did:web:{name}%3A8184"
    assert settings.identity_url == f"https://{name}:8184" and settings.tls.serves_https
    assert settings.tls.ca_file == "/srv/pactum/tls/ca.pem"
    assert settings.listen.protocol == "0.0.0.0:8181"
    assert all(issuers == ["did:web:authority%3A8190"] for issuers in settings.trust.issuers.values())


def test_compose_authority_overrides_validate() -> None:
    service = load_compose(DEPLOY / "docker-compose.yml").services["authority"]
    settings = load_authority_settings(DEPLOY / "config" / "authority.toml", environ=service.environment)
    assert settings.did == "did:web:authority%3A8190" and settings.base_url == "https://authority:8190"
    assert not settings.allow_http and settings.tls.cert_file == "/srv/pactum/tls/authority.pem"
    assert settings.database_url.startswith("postgresql+psycopg://") and settings.listen.port == 8190


def test_dockerfile_copies_existing_paths() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    for source in re.findall(r"^COPY (?!--from)(\S+)", text, flags=re.M):
        assert (ROOT / source).exists(), f"Dockerfile copies missing {source}"
    assert 'ENTRYPOINT ["pactum"]' in text


def test_no_secrets_in_config_files() -> None:
    for path in (DEPLOY / "config").glob("*.toml"):
        data = tomllib.loads(path.read_text())
        flat = repr(data).lower()
        for key in ("'passphrase': '", "'api_key': '", "'admin_key': '"):
            assert key not in flat or f"{key}'" in flat, f"{path.name} holds a secret ({key})"
