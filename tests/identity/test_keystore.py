"""Encrypted keystore: 0600 file, passphrase protection, tamper detection, rotation semantics."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from identity.keys import generate_key
from identity.keystore import Keystore, KeystoreError, UnknownKey, WrongPassphrase

FAST = {"n": 2**10, "r": 8, "p": 1}


def test_create_add_reopen_and_permissions(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "keys.json"
    store = Keystore.create(path, "s3cret", scrypt_params=FAST)
    key = generate_key("ES256")
    store.add(key, "key-1")
    store.save()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    raw = path.read_text()
    assert key.private_jwk()["d"] not in raw  # never in clear
    again = Keystore.open(path, "s3cret")
    kid, current = again.current()
    assert kid == "key-1" and current.alg == "ES256"
    assert current.verify(key.sign(b"m"), b"m")
    assert json.loads(raw)["kdf"]["name"] == "scrypt"


def test_wrong_passphrase_and_tampering_are_detected(tmp_path: Path) -> None:
    path = tmp_path / "ks.json"
    store = Keystore.create(path, "right", scrypt_params=FAST)
    store.rotate()
    store.save()
    with pytest.raises(WrongPassphrase):
        Keystore.open(path, "wrong")
    envelope = json.loads(path.read_text())
    ct = envelope["ciphertext"]
    envelope["ciphertext"] = ("A" if ct[0] != "A" else "B") + ct[1:]
    path.write_text(json.dumps(envelope))
    with pytest.raises(WrongPassphrase):
        Keystore.open(path, "right")


@pytest.mark.parametrize("content", ["", "{}", "[1]", '{"format": "pactum-keystore/1"}', "not json"])
def test_corrupt_files_raise_keystore_error(tmp_path: Path, content: str) -> None:
    path = tmp_path / "ks.json"
    path.write_text(content)
    with pytest.raises(KeystoreError):
        Keystore.open(path, "pw")


def test_missing_file_and_refuse_overwrite(tmp_path: Path) -> None:
    with pytest.raises(KeystoreError, match="does not exist"):
        Keystore.open(tmp_path / "nope.json", "pw")
    Keystore.create(tmp_path / "ks.json", "pw", scrypt_params=FAST)
    with pytest.raises(KeystoreError, match="already exists"):
        Keystore.create(tmp_path / "ks.json", "pw", scrypt_params=FAST)
    with pytest.raises(KeystoreError):
        Keystore.create(tmp_path / "other.json", "", scrypt_params=FAST)


def test_rotation_keeps_old_keys_until_removed(tmp_path: Path) -> None:
    store = Keystore.create(tmp_path / "ks.json", "pw", scrypt_params=FAST)
    first = store.rotate("EdDSA")
    old_key = store.get(first)
    second = store.rotate()
    assert store.current()[0] == second != first
    assert store.get(second).alg == "EdDSA"  # same alg as before by default
    third = store.rotate("ES256K")
    listed = {entry["id"]: entry for entry in store.list()}
    assert set(listed) == {first, second, third}
    assert listed[third]["current"] and not listed[first]["current"]
    assert "d" not in listed[first]["publicJwk"]
    with pytest.raises(KeystoreError, match="current"):
        store.remove(third)
    store.remove(first)
    store.save()
    reopened = Keystore.open(tmp_path / "ks.json", "pw")
    assert [k for k, _ in reopened.keys()] == [second, third]
    assert reopened.current()[0] == third
    with pytest.raises(UnknownKey):
        reopened.get(first)
    with pytest.raises(UnknownKey):
        reopened.remove(first)
    assert old_key.has_private


def test_add_validations(tmp_path: Path) -> None:
    store = Keystore.create(tmp_path / "ks.json", "pw", scrypt_params=FAST)
    with pytest.raises(UnknownKey):
        store.current()
    store.add(generate_key(), "key-1")
    with pytest.raises(KeystoreError, match="already exists"):
        store.add(generate_key(), "key-1")
    for bad in ("", "a#b", "has space"):
        with pytest.raises(KeystoreError):
            store.add(generate_key(), bad)
    with pytest.raises(KeystoreError, match="private"):
        store.add(generate_key().public_only(), "key-9")


@pytest.mark.parametrize("kdf", [{"n": 3}, {"n": 2**30}, {"r": 0}, {"p": 100}, {"n": "x"}])
def test_tampered_kdf_parameters_are_refused(tmp_path: Path, kdf: dict[str, object]) -> None:
    path = tmp_path / "ks.json"
    Keystore.create(path, "pw", scrypt_params=FAST)
    envelope = json.loads(path.read_text())
    envelope["kdf"].update(kdf)
    path.write_text(json.dumps(envelope))
    with pytest.raises(KeystoreError):
        Keystore.open(path, "pw")
    with pytest.raises(KeystoreError):
        Keystore.create(tmp_path / "other.json", "pw", scrypt_params={**FAST, **kdf})  # type: ignore[dict-item]
