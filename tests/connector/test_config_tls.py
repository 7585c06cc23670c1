"""The connector's [tls] section: https addresses and DID, paths relative to the config file, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from connector.config import load_settings, settings_from_mapping
from connector.context import build_context, loopback_http_hosts
from connector.errors import ConfigError

BASE = {"participant": {"name": "supplier"}, "listen": {"identity": "127.0.0.1:8184", "protocol": "127.0.0.1:8181"}}


def test_without_tls_nothing_changes() -> None:
    settings = settings_from_mapping(BASE)
    assert settings.scheme == "http" and settings.identity_url == "http://127.0.0.1:8184"
    assert loopback_http_hosts(settings) == ("127.0.0.1", "localhost", "::1")


def test_tls_makes_every_derived_address_https_and_forbids_plain_http_did_web() -> None:
    settings = settings_from_mapping({**BASE, "tls": {"cert_file": "/t/s.pem", "key_file": "/t/s-key.pem"}})
    assert settings.scheme == "https"
    assert (settings.protocol_url, settings.data_url, settings.identity_url) == (
        "https://127.0.0.1:8181", "https://127.0.0.1:8183", "https://127.0.0.1:8184")
    assert settings.did == "did:web:127.0.0.1%3A8184"  # did:web itself always means https
    assert loopback_http_hosts(settings) == ()


def test_tls_paths_are_relative_to_the_config_file_and_env_overrides_work(tmp_path: Path) -> None:
    config = tmp_path / "conf" / "supplier.toml"
    config.parent.mkdir()
    config.write_text('[participant]\nname = "supplier"\n[tls]\nca_file = "../tls/ca.pem"\n')
    settings = load_settings(config, environ={"PACTUM_TLS__CERT_FILE": "/srv/tls/supplier.pem",
                                              "PACTUM_TLS__KEY_FILE": "/srv/tls/supplier-key.pem"})
    assert settings.tls.ca_file == str(tmp_path / "conf" / ".." / "tls" / "ca.pem")
    assert settings.tls.cert_file == "/srv/tls/supplier.pem" and settings.tls.serves_https


@pytest.mark.parametrize("tls, message", [
    ({"cert_file": "/t/s.pem"}, "give both cert_file and key_file"),
    ({"ca": "/t/ca.pem"}, "unknown key"),
])
def test_bad_tls_sections_are_clear_errors(tls: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        settings_from_mapping({**BASE, "tls": tls})


def test_missing_tls_files_stop_the_start_with_one_clear_line(tmp_path: Path) -> None:
    base = {**BASE, "storage": {"url": f"sqlite:///{tmp_path / 'db.sqlite'}"},
            "keystore": {"path": str(tmp_path / "wallet" / "keystore.json"), "passphrase": "x"}}
    with pytest.raises(ConfigError, match="does not exist"):
        build_context(settings_from_mapping({**base, "tls": {"cert_file": str(tmp_path / "no.pem"),
                                                             "key_file": str(tmp_path / "no-key.pem")}}))
    with pytest.raises(ConfigError, match="cannot read it"):
        build_context(settings_from_mapping({**base, "tls": {"ca_file": str(tmp_path / "ca.pem")}}))
