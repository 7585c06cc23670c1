"""Configuration: one TOML file, PACTUM_* overrides, one clear error naming key, value and expectation."""

from __future__ import annotations

from pathlib import Path

import pytest

from connector.config import keystore_passphrase, load_settings
from connector.errors import ConfigError

GOOD = """
[participant]
name = "Supplier EU"
jurisdiction = "de"
bpn = "BPNL000000000001"

[listen]
protocol = "127.0.0.1:9181"

[storage]
url = "sqlite:///var/supplier.db"

[keystore]
path = "var/keystore.json"
passphrase_env = "SUPPLIER_PASSPHRASE"

[trust.issuers]
MembershipCredential = ["did:web:authority.example"]

[[data_sources]]
name = "quality"
type = "folder"
path = "data/quality"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "connector.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_good_config_is_validated_and_paths_are_relative_to_the_file(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, GOOD), environ={})
    assert settings.participant.jurisdiction == "DE"
    assert settings.storage.url == f"sqlite:///{tmp_path / 'var/supplier.db'}"
    assert settings.keystore.path == str(tmp_path / "var/keystore.json")
    assert settings.data_sources[0].path == str(tmp_path / "data/quality")
    assert settings.did == "did:web:127.0.0.1%3A8184"
    assert settings.protocol_url == "http://127.0.0.1:9181"


def test_environment_overrides_every_level(tmp_path: Path) -> None:
    env = {
        "PACTUM_STORAGE__URL": "postgresql://pactum@db:5432/pactum",
        "PACTUM_LISTEN__PROTOCOL": "0.0.0.0:8181",
        "PACTUM_LIMITS__MAX_BODY_BYTES": "2048",
        "PACTUM_APPROVAL": "manual",
        "PACTUM_PUBLIC__PROTOCOL_URL": "https://supplier.example/api/dsp",
        "SUPPLIER_PASSPHRASE": "s3cret",
    }
    settings = load_settings(write(tmp_path, GOOD), environ=env)
    assert settings.storage.url == "postgresql://pactum@db:5432/pactum"
    assert settings.listen.protocol == "0.0.0.0:8181"
    assert settings.limits.max_body_bytes == 2048
    assert settings.approval == "manual"
    assert settings.protocol_url == "https://supplier.example/api/dsp"
    assert keystore_passphrase(settings, env) == "s3cret"


@pytest.mark.parametrize(
    ("replace", "by", "expected"),
    [
        ('protocol = "127.0.0.1:9181"', 'protocol = "127.0.0.1:99999"',
         r"listen\.protocol = '127\.0\.0\.1:99999': expected HOST:PORT"),
        ('url = "sqlite:///var/supplier.db"', 'url = "mysql://x/y"',
         r"storage\.url = 'mysql://x/y': expected sqlite:///PATH or postgresql://"),
        ('jurisdiction = "de"', 'jurisdiction = "Germany"',
         r"participant\.jurisdiction = 'Germany': expected an ISO 3166 alpha-2"),
        ('name = "quality"', 'nme = "quality"', r"data_sources\.0\.name: missing"),
        ('[listen]', '[lisen]', r"lisen: unknown key"),
    ],
)
def test_bad_config_names_key_value_and_expectation(tmp_path: Path, replace: str, by: str, expected: str) -> None:
    with pytest.raises(ConfigError, match=expected):
        load_settings(write(tmp_path, GOOD.replace(replace, by)), environ={})


def test_bad_environment_value_is_reported_like_a_file_value(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"limits\.max_body_bytes = -1"):
        load_settings(write(tmp_path, GOOD), environ={"PACTUM_LIMITS__MAX_BODY_BYTES": "-1"})


def test_broken_toml_and_missing_file_are_one_line_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(write(tmp_path, "[participant\nname="), environ={})
    with pytest.raises(ConfigError, match="cannot read the configuration file"):
        load_settings(tmp_path / "nope.toml", environ={})


def test_missing_passphrase_variable_is_explained(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, GOOD), environ={})
    with pytest.raises(ConfigError, match="SUPPLIER_PASSPHRASE is not set"):
        keystore_passphrase(settings, {})
