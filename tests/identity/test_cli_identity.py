"""``pactum identity`` and ``pactum authority`` through the real entry point (identity.cli.main)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from identity.cli import main
from identity.credentials.jwt import decode_unverified
from identity.credentials.status_list import StatusList
from identity.credentials.verify import verify_credential
from identity.dids import Resolver

VECTORS = Path(__file__).resolve().parents[1] / "data" / "vectors" / "generated-here"
VECTOR_ISSUER = "did:key:z6MkrJVnaZkeFzdQyMZu1cgjg7k1pZZ6pvBQ7XJPt4swbTQ2"
JWT_VECTORS = ["out-vc2-jose.jwt", "out-vc11-eddsa.jwt", "out-didkit-vc11.jwt"]
JSON_VECTORS = ["out-eddsa-rdfc-2022.json", "out-eddsa-jcs-2022.json", "out-didkit-ed25519signature2018.json"]


@pytest.fixture(autouse=True)
def _passphrase(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PACTUM_WALLET_PASSPHRASE", "cli-pw")


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize("name", JWT_VECTORS)
def test_verify_jwt_vectors(capsys: pytest.CaptureFixture[str], name: str) -> None:
    code, out, _ = run(capsys, "identity", "verify", str(VECTORS / name))
    assert code == 0, out
    assert "ok   signature" in out and "verdict: VALID" in out
    assert VECTOR_ISSUER in out
    code, out, _ = run(capsys, "identity", "verify", str(VECTORS / name), "--json")
    report = json.loads(out)
    assert code == 0 and report["valid"] and report["issuer"] == VECTOR_ISSUER
    assert [c["name"] for c in report["checks"]][:4] == ["format", "alg", "key", "signature"]


@pytest.mark.parametrize("name", JSON_VECTORS)
def test_verify_json_ld_vectors_matches_library(capsys: pytest.CaptureFixture[str], name: str) -> None:
    code, out, err = run(capsys, "identity", "verify", str(VECTORS / name), "--json")
    report = json.loads(out)
    expected = asyncio.run(verify_credential(json.loads((VECTORS / name).read_text()), resolver=Resolver(),
                                             trust=None))
    assert report["valid"] == expected.ok and report["error"] == expected.error_code
    assert code == (0 if expected.ok else 1)
    if not expected.ok:
        assert err.count("\n") == 1 and err.startswith("error:")


def test_verify_as_of_and_trust(capsys: pytest.CaptureFixture[str]) -> None:
    vector = str(VECTORS / "out-vc11-eddsa.jwt")  # nbf 1700000000 = 2023-11-14
    code, out, err = run(capsys, "identity", "verify", vector, "--at", "2023-01-01T00:00:00Z")
    assert code == 1 and "not_yet_valid" in out and "INVALID" in err
    code, out, _ = run(capsys, "identity", "verify", vector, "--trust", "did:web:someone-else.example.com")
    assert code == 1 and "issuer_untrusted" in out
    code, out, _ = run(capsys, "identity", "verify", vector, "--trust", VECTOR_ISSUER)
    assert code == 0 and "ok   trust" in out
    code, _, err = run(capsys, "identity", "verify", vector, "--at", "yesterday")
    assert code == 1 and err.startswith("error:") and "ISO 8601" in err


def test_wallet_lifecycle_with_offline_did_web(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    wallet = str(tmp_path / "w")
    code, out, _ = run(capsys, "identity", "init", "--dir", wallet, "--web", "https://issuer.example.com",
                       "--credential-service", "https://issuer.example.com/cs", "--json")
    assert code == 0
    did = json.loads(out)["did"]
    assert did == "did:web:issuer.example.com"
    code, out, _ = run(capsys, "identity", "did", "--dir", wallet)
    document = json.loads(out)
    assert document["id"] == did and document["service"][0]["type"] == "CredentialService"
    (tmp_path / "did.json").write_text(out)
    cred = tmp_path / "member.jwt"
    code, _, _ = run(capsys, "identity", "issue", "--dir", wallet, "--subject", did, "--type",
                     "MembershipCredential", "--claims", '{"memberOf": "Space"}', "-o", str(cred))
    assert code == 0
    # did:web cannot be fetched here: without --did-doc verification fails, with it the credential is valid
    code, out, _ = run(capsys, "identity", "verify", str(cred))
    assert code == 1 and "kid_unresolvable" in out
    code, out, _ = run(capsys, "identity", "verify", str(cred), "--did-doc", str(tmp_path / "did.json"),
                       "--trust", did)
    assert code == 0 and "verdict: VALID" in out
    # a bare public JWK works too: the DID comes from the credential's kid
    jwk = document["verificationMethod"][0]["publicKeyJwk"]
    (tmp_path / "key.jwk").write_text(json.dumps(jwk))
    code, out, _ = run(capsys, "identity", "verify", str(cred), "--did-doc", str(tmp_path / "key.jwk"))
    assert code == 0, out
    # store, list, present, verify the presentation offline
    assert run(capsys, "identity", "credentials", "add", str(cred), "--dir", wallet)[0] == 0
    code, out, _ = run(capsys, "identity", "credentials", "list", "--dir", wallet, "--json")
    assert [c["types"] for c in json.loads(out)] == [["VerifiableCredential", "MembershipCredential"]]
    vp = tmp_path / "vp.jwt"
    assert run(capsys, "identity", "present", "--dir", wallet, "--audience", "did:web:v.example.com",
               "-o", str(vp))[0] == 0
    assert decode_unverified(vp.read_text().strip()).header["typ"] == "vp+jwt"
    code, out, _ = run(capsys, "identity", "verify", str(vp), "--did-doc", str(tmp_path / "did.json"),
                       "--audience", "did:web:v.example.com", "--json")
    report = json.loads(out)
    assert code == 0 and report["kind"] == "presentation" and report["credentials"][0]["valid"]
    # rotation keeps old credentials verifiable with the new document
    code, out, _ = run(capsys, "identity", "rotate-key", "--dir", wallet, "--json")
    assert json.loads(out)["kid"] == f"{did}#key-2"
    (tmp_path / "did2.json").write_text(run(capsys, "identity", "did", "--dir", wallet)[1])
    assert run(capsys, "identity", "verify", str(cred), "--did-doc", str(tmp_path / "did2.json"))[0] == 0


def test_json_ld_issue_with_did_key(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    wallet = str(tmp_path / "k")
    code, out, _ = run(capsys, "identity", "init", "--dir", wallet, "--json")
    did = json.loads(out)["did"]
    assert did.startswith("did:key:z6Mk")
    signed = tmp_path / "cred.json"
    assert run(capsys, "identity", "issue", "--dir", wallet, "--subject", did, "--type", "MembershipCredential",
               "--format", "json-ld", "-o", str(signed))[0] == 0
    code, out, _ = run(capsys, "identity", "verify", str(signed))
    assert code == 0, out
    code, out, _ = run(capsys, "identity", "resolve", did)
    assert json.loads(out)["id"] == did


def test_user_errors_are_one_line(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    wallet = str(tmp_path / "w")
    assert run(capsys, "identity", "init", "--dir", wallet)[0] == 0
    code, _, err = run(capsys, "identity", "init", "--dir", wallet)
    assert code == 1 and "already holds a wallet" in err and err.count("\n") == 1
    monkeypatch.setenv("PACTUM_WALLET_PASSPHRASE", "wrong")
    code, _, err = run(capsys, "identity", "did", "--dir", wallet)
    assert code == 1 and "passphrase" in err and err.count("\n") == 1
    code, _, err = run(capsys, "identity", "verify", str(tmp_path / "missing.jwt"))
    assert code == 1 and err.startswith("error: cannot read")
    (tmp_path / "junk.jwt").write_text("junk")
    code, _, err = run(capsys, "identity", "verify", str(tmp_path / "junk.jwt"))
    assert code == 1 and err.count("\n") == 1


@pytest.mark.parametrize("command", [["identity"], ["identity", "verify"], ["identity", "init"], ["authority"],
                                     ["authority", "serve"], ["authority", "revoke"], ["identity", "credentials"]])
def test_help_has_examples(capsys: pytest.CaptureFixture[str], command: list[str]) -> None:
    code, out, _ = run(capsys, *command, "--help")
    assert code == 0 and "Example" in out


def test_authority_cli(capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "authority.toml"
    config.write_text(
        'name = "CLI Authority"\ndid = "did:web:authority.example.com"\nbase_url = "https://authority.example.com"\n'
        'keystore = "keys.json"\ndatabase_url = "sqlite:///authority.db"\n'
    )
    code, _, err = run(capsys, "authority", "directory", "-c", str(config))
    assert code == 1 and "passphrase" in err
    monkeypatch.setenv("PACTUM_AUTHORITY_PASSPHRASE", "authority-pw")
    holder = "did:web:supplier.example.com"
    code, out, _ = run(capsys, "authority", "directory", "-c", str(config), "--add", holder, "--name", "Supplier",
                       "--bpn", "BPNL000000000042", "--jurisdiction", "de", "--json")
    assert code == 0 and json.loads(out)[0]["jurisdiction"] == "DE"
    code, out, _ = run(capsys, "authority", "issue", "-c", str(config), "--holder", holder, "--credential", "bpn",
                       "--json")
    issued = json.loads(out)
    payload = decode_unverified(issued["credential"]).payload
    assert payload["credentialSubject"]["bpn"] == "BPNL000000000042"
    assert payload["credentialStatus"]["type"] == "BitstringStatusListEntry"
    code, out, _ = run(capsys, "authority", "revoke", "-c", str(config), "--credential-id", issued["id"], "--json")
    assert code == 0 and json.loads(out)["revoked"]
    from identity.authority.issuer import Authority
    from identity.authority.settings import load_authority_settings

    status_jwt = Authority(load_authority_settings(config)).status_list_credential("vc20-revocation")
    bits = StatusList.decode(decode_unverified(status_jwt).payload["credentialSubject"]["encodedList"])
    assert bits.get(int(payload["credentialStatus"]["statusListIndex"]))
    code, _, err = run(capsys, "authority", "revoke", "-c", str(config), "--credential-id", "urn:uuid:nope")
    assert code == 1 and "no credential" in err
    code, _, err = run(capsys, "authority", "issue", "-c", str(config), "--holder", "did:web:x.example.com",
                       "--credential", "membership")
    assert code == 1 and "not a registered participant" in err
