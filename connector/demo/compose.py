"""Run ``deploy/docker-compose.yml`` without Docker: every service becomes a local process on loopback.

WHY: there is no container engine on a developer laptop or CI runner, but the compose file must still be
proven to describe a working data space. The launcher reads each service's command and environment as
written, and changes only what a container would have given it:

- addresses: every (service, container port) gets its own free loopback port; ``service:port``,
  ``service%3Aport`` (inside did:web) and ``0.0.0.0:port`` are rewritten to ``127.0.0.1:<that port>``;
- volumes: each service sees its mounts under its own folder (bind mounts as links to the host files,
  named volumes as folders shared by every service that mounts them), so relative paths in the configs
  resolve exactly as in the container;
- PostgreSQL services are replaced by real servers the caller starts (``postgres_urls``);
- the image's ``pactum`` entry point is this Python's ``-m connector.cli``.

TLS needs no special case: the compose file's one-shot ``certs`` service issues every certificate for its
service name and for ``127.0.0.1`` too, so after the rewriting each party serves a certificate valid for the
loopback address it is reached at, and every client (the story's too) trusts the CA from the ``tls`` volume.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from connector.config import load_settings
from connector.demo.errors import ComposeError, ProcessStartError
from connector.demo.processes import Supervisor, free_port
from connector.demo.space import REPO_ROOT, AuthorityEndpoint, Company, DataSpace, company_from_settings

IMAGE_WORKDIR = "/app"  # deploy/Dockerfile: WORKDIR /app holds scripts/ copied from the repository
ENTRYPOINT = [sys.executable, "-m", "connector.cli"]  # deploy/Dockerfile: ENTRYPOINT ["pactum"]


@dataclass
class Service:
    """One compose service, as far as the launcher needs it."""

    name: str
    image: str
    command: list[str]
    entrypoint: list[str] | None
    environment: dict[str, str]
    expose: list[int]
    volumes: list[str]
    depends_on: dict[str, str]
    one_shot: bool

    @property
    def is_postgres(self) -> bool:
        return self.image.split(":", 1)[0].rsplit("/", 1)[-1] == "postgres"


@dataclass
class ComposeProject:
    """The parsed compose file."""

    path: Path
    services: dict[str, Service]
    named_volumes: set[str] = field(default_factory=set)


def _as_list(value: Any, what: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return value.split()
    if isinstance(value, list) and all(isinstance(v, str | int) for v in value):
        return [str(v) for v in value]
    raise ComposeError(f"{what}: expected a list of strings")


def _environment(value: Any, what: str) -> dict[str, str]:
    if value is None:
        return {}
    if isinstance(value, dict):
        return {str(k): "" if v is None else str(v) for k, v in value.items()}
    if isinstance(value, list):
        out = {}
        for item in value:
            key, _, val = str(item).partition("=")
            out[key] = val
        return out
    raise ComposeError(f"{what}: expected a mapping or a list of KEY=VALUE")


def _depends_on(value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if isinstance(value, list):
        return {str(v): "service_started" for v in value}
    if isinstance(value, dict):
        return {str(k): str((v or {}).get("condition", "service_started")) for k, v in value.items()}
    raise ComposeError("depends_on: expected a list or a mapping")


def load_compose(path: Path) -> ComposeProject:
    """Parse a compose file (YAML anchors and merge keys included) into services."""
    try:
        data = yaml.safe_load(path.read_text("utf-8"))
    except OSError as exc:
        raise ComposeError(f"cannot read {path}: {exc.strerror or exc}") from exc
    except yaml.YAMLError as exc:
        raise ComposeError(f"{path} is not valid YAML: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("services"), dict):
        raise ComposeError(f"{path}: no 'services' mapping")
    services = {}
    for name, raw in data["services"].items():
        if not isinstance(raw, dict):
            raise ComposeError(f"{path}: service {name!r} is not a mapping")
        where = f"{path}: services.{name}"
        entrypoint = raw.get("entrypoint")
        services[name] = Service(
            name=name, image=str(raw.get("image", "")), command=_as_list(raw.get("command"), where + ".command"),
            entrypoint=_as_list(entrypoint, where + ".entrypoint") if entrypoint is not None else None,
            environment=_environment(raw.get("environment"), where + ".environment"),
            expose=[int(p) for p in _as_list(raw.get("expose"), where + ".expose")],
            volumes=_as_list(raw.get("volumes"), where + ".volumes"),
            depends_on=_depends_on(raw.get("depends_on")), one_shot=str(raw.get("restart", "")) == "no")
    for service in services.values():
        unknown = set(service.depends_on) - set(services)
        if unknown:
            raise ComposeError(f"{path}: {service.name} depends on unknown service(s) {', '.join(sorted(unknown))}")
    return ComposeProject(path, services, set((data.get("volumes") or {}).keys()))


class AddressMap:
    """Container addresses -> loopback addresses, and the rewriting of values that mention them."""

    def __init__(self, project: ComposeProject, postgres_urls: Mapping[str, str]) -> None:
        self.ports: dict[tuple[str, int], int] = {}
        for service in project.services.values():
            if not service.is_postgres:
                for port in service.expose:
                    self.ports[(service.name, port)] = free_port()
        self.postgres_urls = dict(postgres_urls)

    def host_port(self, service: str, port: int) -> int:
        try:
            return self.ports[(service, port)]
        except KeyError:
            raise ComposeError(f"service {service} does not expose port {port}") from None

    def rewrite(self, value: str, own: str, env_name: str = "") -> str:
        """``value`` as seen from the host, for service ``own``."""
        for db, url in self.postgres_urls.items():
            rest = url.split("://", 1)[1]
            value = re.sub(rf"(postgresql(?:\+\w+)?)://[^@/\s]*@{re.escape(db)}:\d+/[\w-]+",
                           rf"\g<1>://{rest}", value)
        for (service, port), host_port in self.ports.items():
            value = re.sub(rf"(?<![\w.-]){re.escape(service)}(:|%3A){port}(?!\d)", rf"127.0.0.1\g<1>{host_port}",
                           value)
            if service == own:
                value = re.sub(rf"\b0\.0\.0\.0:{port}(?!\d)", f"127.0.0.1:{host_port}", value)
                if env_name.endswith("PORT") and value == str(port):
                    value = str(host_port)
        if value == "0.0.0.0":
            value = "127.0.0.1"
        return value


class Filesystems:
    """Each service's view of its volumes under ``root/fs/<service>``; named volumes under ``root/volumes``."""

    def __init__(self, project: ComposeProject, root: Path) -> None:
        self.project = project
        self.root = root
        self.mounts: dict[str, list[tuple[str, Path]]] = {}
        for service in project.services.values():
            if not service.is_postgres:
                self.mounts[service.name] = [self._mount(service, spec) for spec in service.volumes]

    def _mount(self, service: Service, spec: str) -> tuple[str, Path]:
        parts = spec.split(":")
        if len(parts) < 2:
            raise ComposeError(f"{service.name}: volume {spec!r} has no container path")
        source, target = parts[0], parts[1]
        view = self.root / "fs" / service.name / target.lstrip("/")
        view.parent.mkdir(parents=True, exist_ok=True)
        if source.startswith((".", "/")):  # bind mount: a real folder of links, so '..' stays inside the view
            host = (self.project.path.parent / source).resolve()
            if not host.exists():
                raise ComposeError(f"{service.name}: bind mount source {host} does not exist")
            if host.is_dir():
                view.mkdir(exist_ok=True)
                for item in host.iterdir():
                    link = view / item.name
                    if not link.exists():
                        link.symlink_to(item)
            elif not view.exists():
                view.symlink_to(host)
        else:
            if source not in self.project.named_volumes:
                raise ComposeError(f"{service.name}: volume {source!r} is not declared under 'volumes'")
            shared = self.root / "volumes" / source
            shared.mkdir(parents=True, exist_ok=True)
            if not view.exists():
                view.symlink_to(shared, target_is_directory=True)
        return target.rstrip("/"), view

    def rewrite(self, value: str, service: str) -> str:
        for target, view in sorted(self.mounts.get(service, []), key=lambda m: -len(m[0])):
            if value == target or value.startswith(target + "/"):
                return str(view) + value[len(target):]
        if value.startswith(IMAGE_WORKDIR + "/"):
            return str(REPO_ROOT) + value[len(IMAGE_WORKDIR):]
        return value


@dataclass
class Launched:
    """What the launcher started: the rewritten environment and argv per service."""

    env: dict[str, dict[str, str]] = field(default_factory=dict)
    argv: dict[str, list[str]] = field(default_factory=dict)


def _argv(service: Service, files: Filesystems) -> list[str]:
    if service.entrypoint is None:
        head = list(ENTRYPOINT)
    elif service.entrypoint and service.entrypoint[0] in ("python", "python3"):
        head = [sys.executable, *service.entrypoint[1:]]
    else:
        raise ComposeError(f"{service.name}: entrypoint {service.entrypoint} is not one the launcher knows")
    return [files.rewrite(a, service.name) for a in [*head, *service.command]]


def _order(project: ComposeProject) -> list[list[Service]]:
    """Services in waves: each wave depends only on earlier waves (PostgreSQL services left out)."""
    remaining = {n: s for n, s in project.services.items() if not s.is_postgres}
    done = {n for n, s in project.services.items() if s.is_postgres}
    waves = []
    while remaining:
        wave = [s for s in remaining.values() if set(s.depends_on) <= done]
        if not wave:
            raise ComposeError(f"dependency cycle among {', '.join(sorted(remaining))}")
        waves.append(wave)
        for service in wave:
            done.add(service.name)
            del remaining[service.name]
    return waves


def launch_compose(compose_file: Path, root: Path, supervisor: Supervisor, *,
                   postgres_urls: Mapping[str, str], timeout: float = 60.0) -> tuple[DataSpace, Launched]:
    """Start every service of ``compose_file`` as local processes; return the data space they form."""
    project = load_compose(compose_file)
    missing = [s.name for s in project.services.values() if s.is_postgres and s.name not in postgres_urls]
    if missing:
        raise ComposeError(f"no PostgreSQL server given for {', '.join(missing)}")
    addresses = AddressMap(project, postgres_urls)
    files = Filesystems(project, root)
    launched = Launched()
    base_env = {k: v for k, v in os.environ.items() if not k.startswith("PACTUM_")}
    base_env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH", "")]))
    for wave in _order(project):
        for service in wave:
            env = {k: files.rewrite(addresses.rewrite(v, service.name, k), service.name)
                   for k, v in service.environment.items()}
            argv = _argv(service, files)
            launched.env[service.name], launched.argv[service.name] = env, argv
            supervisor.start(service.name, argv, env={**base_env, **env}, cwd=root)
        for service in wave:
            if service.one_shot:
                party = supervisor.parties[service.name]
                try:
                    code = party.popen.wait(timeout=timeout)
                except Exception as exc:  # noqa: BLE001 - a timeout becomes one clear error
                    raise ProcessStartError(f"{service.name} did not finish in {timeout:.0f} s") from exc
                if code != 0:
                    raise ProcessStartError(f"{service.name} exited with code {code}:\n{party.log_tail()}")
            else:
                supervisor.wait_ports(service.name, [f"127.0.0.1:{addresses.host_port(service.name, p)}"
                                                     for p in service.expose], timeout=timeout)
    return _data_space(project, launched, root, supervisor), launched


def _config_arg(argv: list[str]) -> Path:
    for flag in ("--config", "-c"):
        if flag in argv and argv.index(flag) + 1 < len(argv):
            return Path(argv[argv.index(flag) + 1])
    raise ComposeError(f"command {' '.join(argv)} has no --config")


def _data_space(project: ComposeProject, launched: Launched, root: Path, supervisor: Supervisor) -> DataSpace:
    authority: AuthorityEndpoint | None = None
    ca_file: Path | None = None
    companies: dict[str, Company] = {}
    for name, argv in launched.argv.items():
        env = launched.env[name]
        if argv[3:5] == ["authority", "serve"]:
            authority = AuthorityEndpoint(env.get("PACTUM_AUTHORITY_BASE_URL", ""),
                                          env.get("PACTUM_AUTHORITY_DID", ""),
                                          env.get("PACTUM_AUTHORITY_ADMIN_KEY", ""))
            ca = env.get("PACTUM_AUTHORITY_TLS__CA_FILE")
            ca_file = Path(ca) if ca else None  # the data space's CA: what an operator's clients trust
        elif argv[3:5] == ["connector", "serve"]:
            settings = load_settings(_config_arg(argv), environ=env)
            companies[name] = company_from_settings(name, settings, env, _config_arg(argv))
    if authority is None or not authority.url or not authority.admin_key:
        raise ComposeError(f"{project.path}: no authority service with base URL and admin key")
    return DataSpace(authority, companies, root, supervisor, ca_file)
