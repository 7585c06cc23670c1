"""Connector configuration: one TOML file per connector, every key overridable by ``PACTUM_*`` variables.

Environment overrides use ``__`` between levels, so ``PACTUM_STORAGE__URL`` sets ``[storage] url`` and
``PACTUM_LISTEN__PROTOCOL`` sets ``[listen] protocol``. Values from the environment are parsed as TOML
values when they look like one (numbers, booleans, arrays), otherwise taken as strings.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from connector.errors import ConfigError
from identity.tls.settings import TlsFiles

ENV_PREFIX = "PACTUM_"
_TOP_KEYS = {"APPROVAL", "LOG_LEVEL", "TEST_HOOKS"}


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_hostport(value: str) -> str:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError("expected HOST:PORT with a port from 0 to 65535, e.g. 127.0.0.1:8181")
    return value


def _check_http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError("expected an absolute http(s) URL, e.g. https://connector.example.com")
    return value.rstrip("/")


HostPort = Annotated[str, Field(description="HOST:PORT to listen on")]


class Participant(_Section):
    """Who this connector speaks for."""

    name: str = Field(min_length=1)
    did: str | None = Field(default=None, description="the connector's DID; derived as did:web when empty")
    jurisdiction: str = Field(default="", description="ISO 3166 alpha-2 code of the participant's seat")
    bpn: str = Field(default="", description="business partner number, if the data space uses one")

    @field_validator("did")
    @classmethod
    def _did_shape(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith("did:"):
            raise ValueError("expected a DID such as did:web:connector.example.com")
        return value

    @field_validator("jurisdiction")
    @classmethod
    def _iso_code(cls, value: str) -> str:
        if value and (len(value) != 2 or not value.isalpha()):
            raise ValueError("expected an ISO 3166 alpha-2 country code such as DE")
        return value.upper()


class Listen(_Section):
    """Where each of the four servers listens; management stays on loopback unless you say otherwise."""

    protocol: HostPort = "127.0.0.1:8181"
    management: HostPort = "127.0.0.1:8182"
    data: HostPort = "127.0.0.1:8183"
    identity: HostPort = "127.0.0.1:8184"

    @field_validator("protocol", "management", "data", "identity")
    @classmethod
    def _hostport(cls, value: str) -> str:
        return _check_hostport(value)


class Public(_Section):
    """Addresses other parties use to reach this connector (they differ from listen addresses behind a proxy)."""

    protocol_url: str | None = None
    data_url: str | None = None
    identity_url: str | None = None

    @field_validator("protocol_url", "data_url", "identity_url")
    @classmethod
    def _urls(cls, value: str | None) -> str | None:
        return None if value is None else _check_http_url(value)


class Storage(_Section):
    url: str = "sqlite:///pactum.db"

    @field_validator("url")
    @classmethod
    def _supported(cls, value: str) -> str:
        scheme = value.split(":", 1)[0]
        if scheme not in ("sqlite", "postgresql", "postgresql+psycopg"):
            raise ValueError("expected sqlite:///PATH or postgresql://USER@HOST:PORT/DB")
        return value


class Keystore(_Section):
    path: str = "keystore.json"
    passphrase: str | None = Field(default=None, description="literal passphrase; prefer passphrase_env/file")
    passphrase_env: str | None = None
    passphrase_file: str | None = None
    algorithm: Literal["EdDSA", "ES256", "ES256K"] = "EdDSA"

    @model_validator(mode="after")
    def _one_source(self) -> Keystore:
        sources = [s for s in (self.passphrase, self.passphrase_env, self.passphrase_file) if s]
        if len(sources) > 1:
            raise ValueError("give only one of passphrase, passphrase_env, passphrase_file")
        return self


class Trust(_Section):
    """Which issuers this connector believes, per credential type (``*`` for any type)."""

    authority_url: str | None = None
    issuers: dict[str, list[str]] = Field(default_factory=dict)
    scope_format: Literal["dcp", "edc", "tractusx"] = "dcp"
    claims_cache_seconds: float = Field(
        default=10, ge=0, description="how long a counterparty's verified claims are reused; bounds how late a "
        "revocation is noticed on catalog and negotiation requests")

    @field_validator("authority_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return None if value is None else _check_http_url(value)


class DataSource(_Section):
    """A place the data plane may read from; assets refer to it by name."""

    name: str = Field(min_length=1)
    type: Literal["file", "folder", "http", "inline"]
    path: str | None = None
    url: str | None = None
    data: str | None = None

    @model_validator(mode="after")
    def _needs_location(self) -> DataSource:
        needed = {"file": "path", "folder": "path", "http": "url", "inline": "data"}[self.type]
        if getattr(self, needed) in (None, ""):
            raise ValueError(f"a data source of type {self.type!r} needs {needed!r}")
        return self


class Management(_Section):
    api_key: str | None = Field(default=None, description="X-Api-Key expected on the management API")
    api_key_env: str | None = None


class Limits(_Section):
    max_body_bytes: int = Field(default=1_048_576, gt=0)
    max_json_depth: int = Field(default=32, gt=0)


class Settings(_Section):
    """A connector's whole configuration, validated once at start-up."""

    participant: Participant
    listen: Listen = Listen()
    public: Public = Public()
    storage: Storage = Storage()
    keystore: Keystore = Keystore()
    trust: Trust = Trust()
    management: Management = Management()
    limits: Limits = Limits()
    tls: TlsFiles = TlsFiles()
    data_sources: list[DataSource] = Field(default_factory=list)
    approval: Literal["auto", "manual"] = "auto"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    test_hooks: bool = False

    @property
    def scheme(self) -> str:
        """``https`` when this connector serves TLS (``[tls] cert_file``), else ``http``."""
        return "https" if self.tls.serves_https else "http"

    @property
    def protocol_url(self) -> str:
        return self.public.protocol_url or f"{self.scheme}://{self.listen.protocol}"

    @property
    def data_url(self) -> str:
        return self.public.data_url or f"{self.scheme}://{self.listen.data}"

    @property
    def identity_url(self) -> str:
        return self.public.identity_url or f"{self.scheme}://{self.listen.identity}"

    @property
    def did(self) -> str:
        """The DID, derived from the identity address as did:web when not configured."""
        if self.participant.did:
            return self.participant.did
        host = urlsplit(self.identity_url).netloc.replace(":", "%3A")
        return f"did:web:{host}"


def _parse_env_value(raw: str) -> Any:
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw


def apply_env_overrides(data: dict[str, Any], environ: Mapping[str, str]) -> dict[str, Any]:
    """Overlay ``PACTUM_A__B=value`` variables onto the nested TOML data (keys are case-insensitive)."""
    merged: dict[str, Any] = {k: (dict(v) if isinstance(v, dict) else v) for k, v in data.items()}
    for name, raw in environ.items():
        if not name.startswith(ENV_PREFIX):
            continue
        rest = name[len(ENV_PREFIX):]
        if "__" not in rest and rest not in _TOP_KEYS:
            continue  # e.g. PACTUM_SUPPLIER_PASSPHRASE: someone else's variable, not a config key
        path = [p.lower() for p in rest.split("__")]
        node = merged
        for key in path[:-1]:
            child = node.get(key)
            if not isinstance(child, dict):
                child = {}
                node[key] = child
            node = child
        node[path[-1]] = _parse_env_value(raw)
    return merged


def _describe(error: Any, data: Mapping[str, Any]) -> str:
    loc = [str(p) for p in error["loc"]]
    key = ".".join(loc)
    value: Any = data
    for part in error["loc"]:
        if isinstance(value, Mapping) and part in value:
            value = value[part]
        elif isinstance(value, list) and isinstance(part, int) and part < len(value):
            value = value[part]
        else:
            value = None
            break
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "missing":
        return f"{key}: missing; this key is required"
    if error["type"] == "extra_forbidden":
        return f"{key}: unknown key (check the spelling; see docs/configuration.md)"
    return f"{key} = {value!r}: {message}"


def settings_from_mapping(data: Mapping[str, Any], *, source: str = "configuration") -> Settings:
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        more = len(exc.errors()) - 1
        suffix = f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""
        raise ConfigError(f"{source}: {_describe(first, data)}{suffix}") from exc


def load_settings(path: str | os.PathLike[str], environ: Mapping[str, str] | None = None) -> Settings:
    """Read, overlay the environment, validate; relative paths are taken relative to the file."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{file}: cannot read the configuration file ({exc.strerror})") from exc
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{file}: not valid TOML: {exc}") from exc
    data = apply_env_overrides(data, os.environ if environ is None else environ)
    data = _resolve_paths(data, file.parent.resolve())
    return settings_from_mapping(data, source=str(file))


def _resolve_paths(data: dict[str, Any], base: Path) -> dict[str, Any]:
    """Make file paths in the config relative to the config file, so a config works from any cwd."""
    def rel(p: str) -> str:
        return p if os.path.isabs(p) else str(base / p)

    out = dict(data)
    storage = out.get("storage")
    if isinstance(storage, dict) and isinstance(storage.get("url"), str) and storage["url"].startswith("sqlite:///"):
        db_path = storage["url"][len("sqlite:///"):]
        if db_path and db_path != ":memory:":
            out["storage"] = {**storage, "url": "sqlite:///" + rel(db_path)}
    keystore = out.get("keystore")
    if isinstance(keystore, dict):
        ks = dict(keystore)
        for key in ("path", "passphrase_file"):
            if isinstance(ks.get(key), str):
                ks[key] = rel(ks[key])
        out["keystore"] = ks
    tls = out.get("tls")
    if isinstance(tls, dict):
        out["tls"] = {k: rel(v) if k.endswith("_file") and isinstance(v, str) and v else v for k, v in tls.items()}
    sources = out.get("data_sources")
    if isinstance(sources, list):
        out["data_sources"] = [
            {**s, "path": rel(s["path"])} if isinstance(s, dict) and isinstance(s.get("path"), str) else s
            for s in sources
        ]
    return out


def keystore_passphrase(settings: Settings, environ: Mapping[str, str] | None = None) -> str:
    """Find the keystore passphrase from the one source the config names."""
    env = os.environ if environ is None else environ
    ks = settings.keystore
    if ks.passphrase:
        return ks.passphrase
    if ks.passphrase_env:
        value = env.get(ks.passphrase_env)
        if not value:
            raise ConfigError(f"keystore.passphrase_env: environment variable {ks.passphrase_env} is not set")
        return value
    if ks.passphrase_file:
        try:
            return Path(ks.passphrase_file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"keystore.passphrase_file = {ks.passphrase_file!r}: {exc.strerror}") from exc
    raise ConfigError("keystore: no passphrase source; set passphrase_env, passphrase_file or passphrase")


def management_api_key(settings: Settings, environ: Mapping[str, str] | None = None) -> str | None:
    env = os.environ if environ is None else environ
    if settings.management.api_key_env:
        return env.get(settings.management.api_key_env)
    return settings.management.api_key
