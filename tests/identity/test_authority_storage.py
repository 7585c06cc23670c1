"""Authority settings (TOML + environment overrides) and storage on every supported database."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from identity.authority.errors import SettingsError, UnknownCredential, UnknownParticipant
from identity.authority.settings import load_authority_settings, settings_from_mapping
from identity.authority.storage import AuthorityStore, ParticipantRecord
from identity.dcp.jti_store import JtiStore

MINIMAL = """
did = "did:web:authority.example.com"
base_url = "https://authority.example.com/"
keystore = "keys/authority.json"
database_url = "sqlite:///data/authority.db"

[listen]
port = 8190

[[participants]]
did = "did:web:supplier.example.com"
name = "Supplier"
jurisdiction = "DE"
"""


def test_toml_with_env_overrides(tmp_path: Path) -> None:
    path = tmp_path / "authority.toml"
    path.write_text(MINIMAL)
    env = {"PACTUM_AUTHORITY_LISTEN__PORT": "9100", "PACTUM_AUTHORITY_PASSPHRASE": "from-env",
           "PACTUM_AUTHORITY_PROFILE": "vc11", "PACTUM_AUTHORITY_AUTO_APPROVE": "false", "OTHER": "x"}
    settings = load_authority_settings(path, environ=env)
    assert settings.listen.port == 9100 and settings.passphrase == "from-env" and settings.profile == "vc11"
    assert settings.auto_approve is False
    assert settings.base_url == "https://authority.example.com"
    assert settings.keystore == tmp_path / "keys" / "authority.json"
    assert settings.database_url == f"sqlite:///{tmp_path / 'data' / 'authority.db'}"
    assert settings.definition("membership") is not None and settings.definition("nope") is None
    assert settings.participants[0].name == "Supplier"


@pytest.mark.parametrize("env,fragment", [
    ({"PACTUM_AUTHORITY_LISTEN__PORT": "99999"}, "listen.port"),
    ({"PACTUM_AUTHORITY_PROFILE": "vc30"}, "profile"),
    ({"PACTUM_AUTHORITY_DID": "authority.example.com"}, "did"),
    ({"PACTUM_AUTHORITY_SURPRISE": "1"}, "surprise"),
])
def test_invalid_settings_name_the_key(tmp_path: Path, env: dict[str, str], fragment: str) -> None:
    path = tmp_path / "authority.toml"
    path.write_text(MINIMAL)
    with pytest.raises(SettingsError) as err:
        load_authority_settings(path, environ=env)
    assert fragment in str(err.value)


def test_missing_and_broken_files(tmp_path: Path) -> None:
    with pytest.raises(SettingsError):
        load_authority_settings(tmp_path / "absent.toml", environ={})
    (tmp_path / "broken.toml").write_text("did = ")
    with pytest.raises(SettingsError):
        load_authority_settings(tmp_path / "broken.toml", environ={})
    with pytest.raises(SettingsError):
        settings_from_mapping({"did": "did:web:a"}, environ={})


def test_store_on_each_database(database_url: str) -> None:
    store = AuthorityStore(database_url)
    store.upsert_participant(ParticipantRecord("did:web:a.example.com", "A", "BPNL1", "DE", ("membership",)))
    store.upsert_participant(ParticipantRecord("did:web:a.example.com", "A renamed", "BPNL1", "FR"))
    entry = store.participant("did:web:a.example.com")
    assert (entry.name, entry.jurisdiction, entry.allowed_credentials) == ("A renamed", "FR", ())
    with pytest.raises(UnknownParticipant):
        store.participant("did:web:b.example.com")
    request = store.add_request("holder-1", "did:web:a.example.com", ["membership"], "token")
    store.set_request_status(request.issuer_pid, "ISSUED")
    assert store.request(request.issuer_pid).status == "ISSUED"
    with pytest.raises(UnknownCredential):
        store.revoke("urn:uuid:missing")
    jti = JtiStore(store.engine)
    assert jti.claim("did:web:a|1", time.time() + 60) and not jti.claim("did:web:a|1", time.time() + 60)
    assert jti.claim("did:web:a|2", time.time() - 10)
    assert jti.claim("did:web:a|2", time.time() + 60)  # the expired entry was purged, so it can be claimed again
    store.close()
