"""Authority settings: a TOML file validated with pydantic, every key overridable by environment variables.

``PACTUM_AUTHORITY_<KEY>`` overrides a top-level key (``PACTUM_AUTHORITY_DATABASE_URL``), and ``__`` reaches
into tables (``PACTUM_AUTHORITY_LISTEN__PORT``). Values are parsed as TOML literals when they look like one
(numbers, booleans, arrays), otherwise taken as strings, so ``PACTUM_AUTHORITY_LISTEN__PORT=9000`` is an int.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from identity.authority.errors import SettingsError
from identity.tls.settings import TlsFiles

ENV_PREFIX = "PACTUM_AUTHORITY_"

Profile = Literal["vc20", "vc11"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Listen(_Model):
    """Where ``pactum authority serve`` binds."""

    host: str = "127.0.0.1"
    port: int = Field(default=8190, ge=0, le=65535)


class CredentialDefinition(_Model):
    """One credential the authority offers (an entry of the DCP ``credentialsSupported`` list)."""

    id: str = Field(min_length=1, description="the CredentialObject id holders put in a CredentialRequestMessage")
    credential_type: str = Field(min_length=1, description="e.g. MembershipCredential")
    profile: Profile | None = Field(default=None, description="overrides the authority's default profile")
    validity_days: int | None = Field(default=None, ge=1)
    claims: dict[str, Any] = Field(
        default_factory=dict, description="fixed credentialSubject claims, e.g. contractVersion for a framework"
    )


class SeedParticipant(_Model):
    """A participant registered at start-up (deployments and demos)."""

    did: str
    name: str = Field(min_length=1)
    bpn: str = ""
    jurisdiction: str = ""
    credentials: list[str] = Field(default_factory=list, description="credential definition ids it may request")


def _default_credentials() -> list[CredentialDefinition]:
    return [
        CredentialDefinition(id="membership", credential_type="MembershipCredential"),
        CredentialDefinition(id="bpn", credential_type="BusinessPartnerCredential"),
        CredentialDefinition(
            id="framework-data-exchange-governance",
            credential_type="DataExchangeGovernanceCredential",
            claims={"contractTemplate": "https://example.org/data-exchange-governance.pdf",
                    "contractVersion": "1.0"},
        ),
        CredentialDefinition(id="data-protection", credential_type="DataProtectionCertification"),
    ]


class AuthoritySettings(_Model):
    """Everything an authority needs; paths are relative to the config file's folder."""

    name: str = "Data Space Authority"
    did: str = Field(description="the authority's did:web, e.g. did:web:authority.example.com")
    base_url: str = Field(description="public base URL; status lists and the issuer service live under it")
    keystore: Path = Field(description="the authority's encrypted keystore file")
    passphrase: str = Field(default="", description="keystore passphrase (prefer PACTUM_AUTHORITY_PASSPHRASE)")
    key_alg: Literal["EdDSA", "ES256", "ES256K"] = "EdDSA"
    database_url: str = Field(description="SQLAlchemy URL, e.g. sqlite:///authority.db or postgresql+psycopg://...")
    admin_key: str = Field(default="", description="secret for /admin endpoints; empty disables them")
    profile: Profile = "vc20"
    validity_days: int = Field(default=365, ge=1)
    status_list_length: int = Field(default=131072, ge=8)
    auto_approve: bool = Field(default=True, description="issue for directory members without a manual step")
    allow_http: bool = Field(default=False, description="resolve did:web over plain http (loopback tests)")
    listen: Listen = Field(default_factory=Listen)
    tls: TlsFiles = Field(default_factory=TlsFiles, description="serve https; trust the data space's CA")
    credentials: list[CredentialDefinition] = Field(default_factory=_default_credentials)
    participants: list[SeedParticipant] = Field(default_factory=list)
    trusted_issuers: dict[str, list[str]] = Field(
        default_factory=dict, description="other issuers per credential type to publish in the trust list"
    )

    @field_validator("did")
    @classmethod
    def _did(cls, value: str) -> str:
        if not value.startswith("did:"):
            raise ValueError("expected a DID such as did:web:authority.example.com")
        return value

    @field_validator("base_url")
    @classmethod
    def _url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("expected an absolute http(s) URL, e.g. https://authority.example.com")
        return value.rstrip("/")

    def definition(self, credential_id: str) -> CredentialDefinition | None:
        """The credential definition with this id, if offered."""
        return next((d for d in self.credentials if d.id == credential_id), None)


def _parse_env_value(raw: str) -> Any:
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw


def apply_env(data: dict[str, Any], environ: Mapping[str, str]) -> dict[str, Any]:
    """Return a copy of ``data`` with every ``PACTUM_AUTHORITY_*`` variable applied."""
    merged: dict[str, Any] = {k: (dict(v) if isinstance(v, dict) else v) for k, v in data.items()}
    for name, raw in environ.items():
        if not name.startswith(ENV_PREFIX) or len(name) == len(ENV_PREFIX):
            continue
        path = [part.lower() for part in name[len(ENV_PREFIX):].split("__")]
        target = merged
        for part in path[:-1]:
            nxt = target.get(part)
            if not isinstance(nxt, dict):
                nxt = {}
                target[part] = nxt
            target = nxt
        target[path[-1]] = _parse_env_value(raw)
    return merged


def _resolve_paths(settings: AuthoritySettings, base: Path) -> AuthoritySettings:
    keystore = settings.keystore if settings.keystore.is_absolute() else base / settings.keystore
    url = settings.database_url
    if url.startswith("sqlite:///") and not url.startswith("sqlite:////") and ":memory:" not in url:
        url = f"sqlite:///{(base / url[len('sqlite:///'):]).resolve()}"
    tls = settings.tls.model_copy(update={
        k: str(base / v) for k, v in settings.tls.model_dump().items() if v and not Path(v).is_absolute()})
    return settings.model_copy(update={"keystore": keystore, "database_url": url, "tls": tls})


def settings_from_mapping(
    data: Mapping[str, Any], *, base: Path | None = None, environ: Mapping[str, str] | None = None
) -> AuthoritySettings:
    """Validate a settings mapping (after env overrides); relative paths resolve against ``base``."""
    merged = apply_env(dict(data), os.environ if environ is None else environ)
    try:
        settings = AuthoritySettings.model_validate(merged)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(root)"
        raise SettingsError(f"invalid authority settings at {where}: {first['msg']}") from None
    return _resolve_paths(settings, base or Path.cwd())


def load_authority_settings(path: str | Path, *, environ: Mapping[str, str] | None = None) -> AuthoritySettings:
    """Read and validate an authority TOML file."""
    p = Path(path)
    try:
        data = tomllib.loads(p.read_text("utf-8"))
    except FileNotFoundError:
        raise SettingsError(f"authority config {p} does not exist") from None
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise SettingsError(f"cannot read authority config {p}: {exc}") from None
    return settings_from_mapping(data, base=p.parent.resolve(), environ=environ)
