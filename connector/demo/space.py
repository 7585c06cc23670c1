"""The data space the story runs against: where each party answers, and how to start it locally.

WHY a description object: the story only needs addresses, DIDs and secrets; whether the parties were started
from ``deploy/config`` on free loopback ports (``pactum demo``) or from ``deploy/docker-compose.yml``
(the compose launcher) does not matter to it.
"""

from __future__ import annotations

import os
import secrets
import shutil
import ssl
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from connector.config import Settings, load_settings
from connector.demo.datagen import DEFAULT_SEED, generate
from connector.demo.errors import DemoError
from connector.demo.processes import Supervisor, free_port
from identity.tls import client_verify

REPO_ROOT = Path(__file__).resolve().parents[2]
DEPLOY_DIR = REPO_ROOT / "deploy"
CONFIG_DIR = DEPLOY_DIR / "config"
COMPANIES = ("supplier", "manufacturer", "logistics", "recycler")
PYTHON_CLI = [sys.executable, "-m", "connector.cli"]
CREDENTIAL_TYPES = ("MembershipCredential", "BusinessPartnerCredential", "DataExchangeGovernanceCredential",
                    "DataProtectionCertification", "DataSecurityCertification")


@dataclass(frozen=True)
class AuthorityEndpoint:
    """The data space authority: base URL, DID and the operator's admin key."""

    url: str
    did: str
    admin_key: str


@dataclass(frozen=True)
class Company:
    """One company's connector as its operator sees it."""

    key: str
    name: str
    jurisdiction: str
    bpn: str
    did: str
    protocol_url: str
    management_url: str
    data_url: str
    identity_url: str
    api_key: str
    wallet_dir: Path
    wallet_passphrase: str
    config_path: Path
    env: Mapping[str, str] = field(default_factory=dict, repr=False)

    @property
    def dashboard_url(self) -> str:
        return self.management_url + "/dashboard/"


@dataclass
class DataSpace:
    """Everything the story talks to."""

    authority: AuthorityEndpoint
    companies: dict[str, Company]
    workdir: Path
    supervisor: Supervisor
    ca_file: Path | None = None  # the data space's CA when the parties serve https (docker compose)

    @property
    def verify(self) -> ssl.SSLContext | bool:
        """The TLS verification setting of every client the story uses."""
        return client_verify(self.ca_file)

    def company(self, key: str) -> Company:
        try:
            return self.companies[key]
        except KeyError:
            raise DemoError(f"the data space has no company {key!r} (has {', '.join(self.companies)})") from None


def link_configs(source: Path, target: Path) -> dict[str, Path]:
    """Put the deploy configs into ``target`` as symlinks, so relative paths in them point into the workdir.

    The files stay the very same files (``deploy/config`` is the single source of truth); only the folder
    they are seen from changes, which moves ``../state`` and ``../data`` into the demo's working directory.
    """
    if not source.is_dir():
        raise DemoError(f"configuration folder {source} not found (run pactum demo from a Pactum checkout)")
    target.mkdir(parents=True, exist_ok=True)
    linked = {}
    for path in sorted(source.glob("*.toml")):
        link = target / path.name
        if link.is_symlink() or link.exists():
            link.unlink()
        try:
            link.symlink_to(path)
        except OSError:
            shutil.copyfile(path, link)
        linked[path.stem] = link
    missing = [name for name in ("authority", *COMPANIES) if name not in linked]
    if missing:
        raise DemoError(f"{source} lacks the configuration of: {', '.join(missing)}")
    return linked


def company_from_settings(key: str, settings: Settings, env: Mapping[str, str], config_path: Path) -> Company:
    """The operator's view of a connector from its validated settings and its environment."""
    api_key_env = settings.management.api_key_env
    api_key = (env.get(api_key_env, "") if api_key_env else settings.management.api_key) or ""
    passphrase_env = settings.keystore.passphrase_env
    passphrase = (env.get(passphrase_env, "") if passphrase_env else settings.keystore.passphrase) or ""
    return Company(
        key=key, name=settings.participant.name, jurisdiction=settings.participant.jurisdiction,
        bpn=settings.participant.bpn, did=settings.did, protocol_url=settings.protocol_url,
        management_url=f"{settings.scheme}://{settings.listen.management}".replace("0.0.0.0", "127.0.0.1"),
        data_url=settings.data_url, identity_url=settings.identity_url, api_key=api_key,
        wallet_dir=Path(settings.keystore.path).parent, wallet_passphrase=passphrase, config_path=config_path,
        env={k: v for k, v in env.items() if k.startswith("PACTUM_")},
    )


def trusted_issuers(authority_did: str) -> str:
    """``[trust.issuers]`` as a TOML inline table: every credential type of the data space, from the authority."""
    return "{ " + ", ".join(f'{t} = ["{authority_did}"]' for t in CREDENTIAL_TYPES) + " }"


def _loopback(port: int) -> str:
    return f"127.0.0.1:{port}"


def start_local(workdir: Path, supervisor: Supervisor, *, seed: int = DEFAULT_SEED,
                config_dir: Path = CONFIG_DIR, timeout: float = 40.0) -> DataSpace:
    """Start the authority and every company as processes on free loopback ports; wait until all answer."""
    configs = link_configs(config_dir, workdir / "config")
    base_env = {k: v for k, v in os.environ.items() if not k.startswith("PACTUM_")}
    base_env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH", "")]))

    auth_port = free_port()
    auth_url = f"http://127.0.0.1:{auth_port}"
    auth_did = f"did:web:127.0.0.1%3A{auth_port}"
    admin_key = secrets.token_urlsafe(24)
    auth_env = {**base_env, "PACTUM_AUTHORITY_DID": auth_did, "PACTUM_AUTHORITY_BASE_URL": auth_url,
                "PACTUM_AUTHORITY_LISTEN__HOST": "127.0.0.1", "PACTUM_AUTHORITY_LISTEN__PORT": str(auth_port),
                "PACTUM_AUTHORITY_PASSPHRASE": secrets.token_urlsafe(24), "PACTUM_AUTHORITY_ADMIN_KEY": admin_key,
                "PACTUM_LOG_LEVEL": "warning"}
    supervisor.start("authority", [*PYTHON_CLI, "authority", "serve", "--config", str(configs["authority"])],
                     env=auth_env, cwd=workdir, die_with_parent=not supervisor.keep)

    companies: dict[str, Company] = {}
    for key in COMPANIES:
        ports = [free_port() for _ in range(4)]
        env = {**base_env,
               "PACTUM_LISTEN__PROTOCOL": _loopback(ports[0]), "PACTUM_LISTEN__MANAGEMENT": _loopback(ports[1]),
               "PACTUM_LISTEN__DATA": _loopback(ports[2]), "PACTUM_LISTEN__IDENTITY": _loopback(ports[3]),
               "PACTUM_TRUST__AUTHORITY_URL": auth_url, "PACTUM_TRUST__ISSUERS": trusted_issuers(auth_did),
               "PACTUM_WALLET_PASSPHRASE": secrets.token_urlsafe(24),
               "PACTUM_MANAGEMENT_API_KEY": secrets.token_urlsafe(24), "PACTUM_LOG_LEVEL": "WARNING"}
        settings = load_settings(configs[key], environ=env)
        companies[key] = company_from_settings(key, settings, env, configs[key])
        supervisor.start(key, [*PYTHON_CLI, "connector", "serve", "--config", str(configs[key])], env=env,
                         cwd=workdir, die_with_parent=not supervisor.keep)

    generate(workdir / "data", seed=seed)  # while the parties start: they read data only when asked for it
    supervisor.wait_http("authority", auth_url + "/health", timeout=timeout)
    for key, company in companies.items():
        supervisor.wait_http(key, company.management_url + "/health", timeout=timeout)
    return DataSpace(AuthorityEndpoint(auth_url, auth_did, admin_key), companies, workdir, supervisor)
