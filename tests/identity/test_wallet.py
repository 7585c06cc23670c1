"""The wallet: creation and reopening, DID documents, key rotation, credential storage and selection."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from identity.credentials.jwt import issue_vc_jwt
from identity.dcp.jws import parse_jws
from identity.keystore import WrongPassphrase
from identity.wallet import Wallet, WalletError, describe_credential
from tests.identity.test_dcp_support import FAST_SCRYPT


def _credential(issuer: Wallet, subject: str, ctype: str, profile: str = "vc20", days: int = 1) -> str:
    now = datetime.now(UTC).replace(microsecond=0)
    until = (now + timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")
    start = (now - timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    base = {"id": f"urn:uuid:{ctype}-{profile}-{days}", "type": ["VerifiableCredential", ctype],
            "issuer": issuer.did, "credentialSubject": {"id": subject}}
    if profile == "vc20":
        cred = {"@context": ["https://www.w3.org/ns/credentials/v2"], **base, "validFrom": start, "validUntil": until}
    else:
        cred = {"@context": ["https://www.w3.org/2018/credentials/v1"], **base, "issuanceDate": start,
                "expirationDate": until}
    return issue_vc_jwt(cred, issuer.key, issuer.kid, profile)


@pytest.fixture
def wallet(tmp_path: Path) -> Wallet:
    return Wallet.init(tmp_path / "w", "did:web:supplier.example.com", "pw", "ES256",
                       credential_service_url="https://supplier.example.com/cs/",
                       data_service_url="https://supplier.example.com/dsp", scrypt_params=FAST_SCRYPT)


def test_init_open_and_did_document(wallet: Wallet, tmp_path: Path) -> None:
    reopened = Wallet.open(tmp_path / "w", "pw")
    assert reopened.did == wallet.did and reopened.kid == "did:web:supplier.example.com#key-1"
    assert reopened.key.same_public_key(wallet.key) and reopened.key.alg == "ES256"
    doc = reopened.did_document()
    services = {s["type"]: s["serviceEndpoint"] for s in doc["service"]}
    assert services == {"CredentialService": "https://supplier.example.com/cs/",
                        "DataService": "https://supplier.example.com/dsp"}
    assert wallet.kid in doc["capabilityInvocation"] and wallet.kid in doc["authentication"]
    with pytest.raises(WrongPassphrase):
        Wallet.open(tmp_path / "w", "nope")
    with pytest.raises(WalletError):
        Wallet.open(tmp_path / "nowhere", "pw")
    with pytest.raises(WalletError):
        Wallet.init(tmp_path / "w", "did:web:x.example.com", "pw", scrypt_params=FAST_SCRYPT)
    with pytest.raises(WalletError):
        Wallet.init(tmp_path / "bad", "not-a-did", "pw", scrypt_params=FAST_SCRYPT)


def test_services_can_change(wallet: Wallet) -> None:
    wallet.set_service("CredentialService", "https://cs2.example.com/")
    wallet.set_service("DataService", None)
    doc = wallet.did_document()
    assert [(s["type"], s["serviceEndpoint"]) for s in doc["service"]] == [
        ("CredentialService", "https://cs2.example.com")]


def test_rotation_keeps_old_keys(wallet: Wallet, tmp_path: Path) -> None:
    old_kid = wallet.kid
    new_kid = wallet.rotate_key("EdDSA")
    assert new_kid != old_kid and Wallet.open(tmp_path / "w", "pw").kid == new_kid
    ids = [m["id"] for m in wallet.did_document()["verificationMethod"]]
    assert old_kid in ids and new_kid in ids
    assert parse_jws(wallet.sign_si_token("did:web:v.example.com")).header["kid"] == new_kid


def test_did_key_wallet(tmp_path: Path) -> None:
    w = Wallet.init(tmp_path / "k", None, "pw", scrypt_params=FAST_SCRYPT)
    assert w.did.startswith("did:key:z6Mk") and w.kid == f"{w.did}#{w.did.split(':')[2]}"
    assert w.did_document()["id"] == w.did
    with pytest.raises(WalletError):
        w.rotate_key()
    with pytest.raises(WalletError):
        w.set_service("CredentialService", "https://x.example.com")
    with pytest.raises(WalletError):
        Wallet.init(tmp_path / "k2", None, "pw", credential_service_url="https://x", scrypt_params=FAST_SCRYPT)


def test_store_select_and_replace_credentials(wallet: Wallet, tmp_path: Path) -> None:
    issuer = Wallet.init(tmp_path / "issuer", None, "pw", scrypt_params=FAST_SCRYPT)
    member = wallet.store_credential(_credential(issuer, wallet.did, "MembershipCredential"))
    assert member.profile == "vc20" and member.issuer == issuer.did and member.subject == wallet.did
    legacy = wallet.store_credential(_credential(issuer, wallet.did, "BpnCredential", "vc11"))
    assert legacy.profile == "vc11" and legacy.valid_until and legacy.valid_until.endswith("Z")
    expired = wallet.store_credential(_credential(issuer, wallet.did, "MembershipCredential", days=-1))
    assert expired.is_expired() and not member.is_expired()
    assert {c.id for c in wallet.credentials(["MembershipCredential"])} == {member.id, expired.id}
    assert [c.id for c in wallet.credentials(["BpnCredential"])] == [legacy.id]
    wallet.store_credential(_credential(issuer, wallet.did, "BpnCredential", "vc11"))  # same id: replaced
    assert len(wallet.credentials()) == 3
    assert wallet.remove_credential(legacy.id) and not wallet.remove_credential(legacy.id)


def test_json_ld_credentials_and_garbage(wallet: Wallet) -> None:
    held = wallet.store_credential({
        "@context": ["https://www.w3.org/ns/credentials/v2"], "id": "urn:uuid:1", "type": "VerifiableCredential",
        "issuer": {"id": "did:web:i.example.com"}, "credentialSubject": {"id": wallet.did},
        "proof": {"type": "DataIntegrityProof"},
    })
    assert held.format == "json-ld" and held.issuer == "did:web:i.example.com"
    assert isinstance(wallet.credentials()[0].payload, dict)
    for bad in ("not a jwt", {"type": "VerifiableCredential"}, 42):
        with pytest.raises(WalletError):
            describe_credential(bad)  # type: ignore[arg-type]
