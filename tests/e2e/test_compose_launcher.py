"""The compose-to-local-processes launcher's pieces: parsing, address rewriting, volume views, ordering."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from connector.demo.compose import AddressMap, Filesystems, _order, load_compose
from connector.demo.errors import ComposeError

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "deploy" / "docker-compose.yml"


def test_compose_file_has_the_data_space() -> None:
    project = load_compose(COMPOSE)
    postgres = {s.name for s in project.services.values() if s.is_postgres}
    assert postgres == {"authority-db", "supplier-db", "manufacturer-db", "logistics-db", "recycler-db"}
    assert project.services["supplier"].command == ["connector", "serve", "--config",
                                                    "/srv/pactum/config/supplier.toml"]
    assert project.services["authority"].command[:2] == ["authority", "serve"]
    assert project.services["demo-data"].one_shot
    # every company uses its own database service
    for company in ("supplier", "manufacturer", "logistics", "recycler"):
        env = project.services[company].environment
        assert f"@{company}-db:5432/" in env["PACTUM_STORAGE__URL"]
        assert f"{company}-db" in project.services[company].depends_on
    waves = [[s.name for s in wave] for wave in _order(project)]
    assert waves[0] == ["certs", "demo-data"]  # the CA and certificates exist before any party starts
    assert waves[1] == ["authority"]
    assert sorted(waves[2]) == ["logistics", "manufacturer", "recycler", "supplier"]


def test_every_party_serves_https_with_a_certificate_for_its_service_name() -> None:
    project = load_compose(COMPOSE)
    certs = project.services["certs"]
    assert certs.one_shot and certs.command[:2] == ["authority", "certs"]
    named = {certs.command[i + 1] for i, arg in enumerate(certs.command) if arg == "--name"}
    assert named == {"authority", "supplier", "manufacturer", "logistics", "recycler"}
    authority = project.services["authority"].environment
    assert authority["PACTUM_AUTHORITY_BASE_URL"] == "https://authority:8190"
    assert authority["PACTUM_AUTHORITY_ALLOW_HTTP"] == "false"
    assert authority["PACTUM_AUTHORITY_TLS__CERT_FILE"] == "/srv/pactum/tls/authority.pem"
    for company in ("supplier", "manufacturer", "logistics", "recycler"):
        service = project.services[company]
        assert service.depends_on["certs"] == "service_completed_successfully"
        env = service.environment
        assert env["PACTUM_TLS__CERT_FILE"] == f"/srv/pactum/tls/{company}.pem"
        assert env["PACTUM_TLS__CA_FILE"] == "/srv/pactum/tls/ca.pem"
        assert env["PACTUM_TRUST__AUTHORITY_URL"] == "https://authority:8190"
        assert all(v.startswith(f"https://{company}:") for k, v in env.items() if k.startswith("PACTUM_PUBLIC__"))
        assert "tls:/srv/pactum/tls:ro" in service.volumes
    assert not any("http://" in v for s in project.services.values() for v in s.environment.values())


def test_configs_are_the_deploy_files() -> None:
    project = load_compose(COMPOSE)
    for name in ("authority", "supplier", "manufacturer", "logistics", "recycler"):
        service = project.services[name]
        assert "./config:/srv/pactum/config:ro" in service.volumes
        config = service.command[service.command.index("--config") + 1]
        assert (ROOT / "deploy" / "config" / Path(config).name).is_file()


def test_addresses_are_rewritten_to_loopback() -> None:
    project = load_compose(COMPOSE)
    urls = {s.name: f"postgresql://pactum@127.0.0.1:{5500 + i}/pactum"
            for i, s in enumerate(project.services.values()) if s.is_postgres}
    amap = AddressMap(project, urls)
    auth = amap.host_port("authority", 8190)
    supplier_protocol = amap.host_port("supplier", 8181)
    assert amap.rewrite("http://authority:8190", "supplier") == f"http://127.0.0.1:{auth}"
    assert amap.rewrite('{ "*" = ["did:web:authority%3A8190"] }', "supplier") == \
        f'{{ "*" = ["did:web:127.0.0.1%3A{auth}"] }}'
    assert amap.rewrite("0.0.0.0:8181", "supplier") == f"127.0.0.1:{supplier_protocol}"
    assert amap.rewrite("0.0.0.0:8181", "manufacturer") != f"127.0.0.1:{supplier_protocol}"
    assert amap.rewrite("8190", "authority", "PACTUM_AUTHORITY_LISTEN__PORT") == str(auth)
    assert amap.rewrite("0.0.0.0", "authority") == "127.0.0.1"
    assert amap.rewrite("postgresql+psycopg://pactum:pactum@authority-db:5432/pactum", "authority") == \
        f"postgresql+psycopg://pactum@127.0.0.1:{urls['authority-db'].split(':')[2]}"
    assert amap.rewrite("http://supplier-db:5432", "x") == "http://supplier-db:5432"  # not a service port


def test_volume_views_keep_relative_paths(tmp_path: Path) -> None:
    project = load_compose(COMPOSE)
    files = Filesystems(project, tmp_path)
    config = Path(files.rewrite("/srv/pactum/config/supplier.toml", "supplier"))
    assert config.is_symlink() and config.resolve() == (ROOT / "deploy/config/supplier.toml").resolve()
    state = (config.parent.resolve() / "../state").resolve()
    assert state == (tmp_path / "volumes" / "supplier-state").resolve()
    data_writer = Path(files.rewrite("/srv/pactum/data", "demo-data")).resolve()
    data_reader = (config.parent.resolve() / "../data").resolve()
    assert data_writer == data_reader  # the named volume is shared
    assert files.rewrite("/app/scripts/generate_demo_data.py", "demo-data") == \
        str(ROOT / "scripts/generate_demo_data.py")


def test_broken_compose_files_are_clear_errors(tmp_path: Path) -> None:
    bad = tmp_path / "compose.yml"
    bad.write_text("services: [1, 2]\n")
    with pytest.raises(ComposeError, match="no 'services' mapping"):
        load_compose(bad)
    bad.write_text("services:\n  a:\n    image: x\n    depends_on: [b]\n")
    with pytest.raises(ComposeError, match="unknown service"):
        load_compose(bad)
    bad.write_text("services: {a: {image: x\n")
    with pytest.raises(ComposeError, match="not valid YAML"):
        load_compose(bad)


def test_docker_compose_config_is_valid() -> None:
    binary = shutil.which("docker-compose")
    if binary is None:
        pytest.skip("docker-compose is not installed (Debian package docker-compose); the file is still "
                    "checked by the launcher tests")
    done = subprocess.run([binary, "-f", str(COMPOSE), "config", "-q"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
