"""identity.tls: the data-space CA and server certificates, and did:web resolution over real https on loopback
with that CA trusted (and refused without it, or for a name the certificate does not cover)."""

from __future__ import annotations

import asyncio
import json
import os
import stat
import subprocess
import sys
from contextlib import AbstractContextManager
from pathlib import Path

import httpx
import pytest
from cryptography import x509

from identity.dids.errors import DidResolutionError
from identity.dids.resolver import Resolver
from identity.keys import KeyPair, generate_key
from identity.tls import TlsError, check_server_files, client_verify, ensure_certificates
from tests.identity.loopback_server import StaticSite, serve

ROOT = Path(__file__).resolve().parents[2]


def _sans(cert_file: Path) -> set[str]:
    cert = x509.load_pem_x509_certificates(cert_file.read_bytes())[0]
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return {str(n.value) for n in names}


def test_ca_and_certificates_are_created_once_and_kept(tmp_path: Path) -> None:
    made = ensure_certificates(tmp_path / "tls", ["authority", "supplier"], also=["localhost", "127.0.0.1"])
    assert made.ca_created and set(made.servers) == {"authority", "supplier"}
    supplier = made.servers["supplier"]
    assert supplier.issued and _sans(supplier.cert_file) == {"supplier", "localhost", "127.0.0.1"}
    assert stat.S_IMODE(supplier.key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "tls" / "ca-key.pem").stat().st_mode) == 0o600
    chain = x509.load_pem_x509_certificates(supplier.cert_file.read_bytes())
    ca = x509.load_pem_x509_certificate(made.ca_file.read_bytes())
    chain[0].verify_directly_issued_by(ca)
    assert chain[1] == ca  # the server sends its chain; the CA is what parties trust
    before = {p.name: p.read_bytes() for p in (tmp_path / "tls").iterdir()}

    again = ensure_certificates(tmp_path / "tls", ["authority", "supplier"], also=["localhost", "127.0.0.1"])
    assert not again.ca_created and not any(c.issued for c in again.servers.values())
    assert {p.name: p.read_bytes() for p in (tmp_path / "tls").iterdir()} == before

    # a name added later: that certificate is re-issued under the same CA, the others are kept
    more = ensure_certificates(tmp_path / "tls", ["authority", "supplier", "recycler"],
                               also=["localhost", "127.0.0.1", "::1"])
    assert not more.ca_created and more.ca_file.read_bytes() == before["ca.pem"]
    assert all(c.issued for c in more.servers.values())
    assert "::1" in _sans(more.servers["recycler"].cert_file)


def test_a_certificate_of_another_ca_is_replaced(tmp_path: Path) -> None:
    ensure_certificates(tmp_path / "a", ["supplier"])
    ensure_certificates(tmp_path / "b", ["supplier"])
    for name in ("supplier.pem", "supplier-key.pem"):
        (tmp_path / "a" / name).write_bytes((tmp_path / "b" / name).read_bytes())
    assert ensure_certificates(tmp_path / "a", ["supplier"]).servers["supplier"].issued


def test_bad_input_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(TlsError, match="neither a host name nor an IP") as bad:
        ensure_certificates(tmp_path, ["bad name"])
    assert bad.value.code == "tls_name_invalid"
    with pytest.raises(TlsError, match="at least one host"):
        ensure_certificates(tmp_path, [])
    orphan = tmp_path / "orphan"
    orphan.mkdir()
    (orphan / "ca-key.pem").write_text("x")
    with pytest.raises(TlsError, match="exists without ca.pem"):
        ensure_certificates(orphan, ["supplier"])
    (orphan / "ca.pem").write_text("not pem")
    with pytest.raises(TlsError, match="not readable PEM") as broken:
        ensure_certificates(orphan, ["supplier"])
    assert broken.value.code == "tls_ca_invalid"
    with pytest.raises(TlsError) as missing:
        client_verify(tmp_path / "missing.pem")
    assert missing.value.code == "tls_ca_unreadable"
    with pytest.raises(TlsError) as garbage:
        client_verify(orphan / "ca.pem")
    assert garbage.value.code == "tls_ca_invalid"
    with pytest.raises(TlsError) as no_cert:
        check_server_files(str(tmp_path / "nope.pem"), str(tmp_path / "nope-key.pem"))
    assert no_cert.value.code == "tls_cert_unreadable"
    assert client_verify(None) is True  # no CA configured: httpx's default trust, as before


def https_site(site: StaticSite, cert_file: Path, key_file: Path) -> AbstractContextManager[int]:
    """``site`` served over https on a free loopback port with the given certificate."""
    return serve(site, ssl_certfile=str(cert_file), ssl_keyfile=str(key_file))


def publish_did(site: StaticSite, did: str) -> KeyPair:
    """A fresh Ed25519 key, published as ``did``'s document on ``site``; returns the key."""
    key = generate_key("EdDSA")
    site.put("/.well-known/did.json", json.dumps({
        "@context": ["https://www.w3.org/ns/did/v1"], "id": did,
        "verificationMethod": [{"id": f"{did}#key-1", "type": "JsonWebKey2020", "controller": did,
                                "publicKeyJwk": key.public_jwk()}],
        "assertionMethod": [f"{did}#key-1"]}))
    return key


def test_did_web_resolves_over_https_with_the_data_space_ca(tmp_path: Path) -> None:
    made = ensure_certificates(tmp_path, ["supplier"], also=["127.0.0.1"])
    check_server_files(str(made.servers["supplier"].cert_file), str(made.servers["supplier"].key_file))
    site = StaticSite()
    with https_site(site, made.servers["supplier"].cert_file, made.servers["supplier"].key_file) as port:
        did = f"did:web:127.0.0.1%3A{port}"
        publish_did(site, did)

        trusted = asyncio.run(Resolver(verify=client_verify(made.ca_file)).resolve(did))
        assert trusted["id"] == did
        with pytest.raises(DidResolutionError, match="CERTIFICATE_VERIFY_FAILED"):
            asyncio.run(Resolver().resolve(did))  # public CAs only: the data space's parties are unknown
        # even with plain http allowed for loopback, an https party is not reachable over http
        with pytest.raises(DidResolutionError):
            asyncio.run(Resolver(allow_http_hosts=["127.0.0.1"]).resolve(did))

        # the certificate names the service: right name passes, another service's name does not
        verify = client_verify(made.ca_file)
        url = f"https://127.0.0.1:{port}/.well-known/did.json"
        with httpx.Client(verify=verify) as client:  # one client per name: a pooled connection skips the check
            assert client.get(url, extensions={"sni_hostname": "supplier"}).status_code == 200
        with httpx.Client(verify=verify) as client, pytest.raises(httpx.ConnectError, match="match"):
            client.get(url, extensions={"sni_hostname": "manufacturer"})


def test_cli_creates_certificates_and_explains_bad_names(tmp_path: Path) -> None:
    cli = [sys.executable, "-m", "connector.cli", "authority", "certs", "--out", str(tmp_path / "tls")]
    done = subprocess.run([*cli, "--name", "authority", "--name", "supplier", "--also", "localhost", "--json"],
                          capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["caCreated"] and set(summary["certificates"]) == {"authority", "supplier"}
    assert Path(summary["certificates"]["supplier"]["cert"]).is_file()
    bad = subprocess.run([*cli, "--name", "no/slashes"], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert bad.returncode == 1 and bad.stderr.strip().startswith("error:") and "no/slashes" in bad.stderr


def test_cli_verify_trusts_the_data_space_ca_only_when_given(tmp_path: Path) -> None:
    from identity.credentials.jwt import issue_vc_jwt

    made = ensure_certificates(tmp_path / "tls", ["authority"], also=["127.0.0.1"])
    site = StaticSite()
    with https_site(site, made.servers["authority"].cert_file, made.servers["authority"].key_file) as port:
        did = f"did:web:127.0.0.1%3A{port}"
        key = publish_did(site, did)
        credential = {"@context": ["https://www.w3.org/ns/credentials/v2"],
                      "type": ["VerifiableCredential", "MembershipCredential"], "issuer": did,
                      "validFrom": "2026-01-01T00:00:00Z", "credentialSubject": {"id": "did:web:member.example"}}
        jwt_file = tmp_path / "membership.jwt"
        jwt_file.write_text(issue_vc_jwt(credential, key, f"{did}#key-1"))
        cli = [sys.executable, "-m", "connector.cli", "identity", "verify", str(jwt_file), "--trust", did,
               "--no-status", "--json"]
        env = {k: v for k, v in os.environ.items() if k != "PACTUM_TLS__CA_FILE"}

        trusted = subprocess.run([*cli, "--ca-file", str(made.ca_file)], capture_output=True, text=True,
                                 timeout=60, cwd=ROOT, env=env)
        assert trusted.returncode == 0, trusted.stderr
        assert json.loads(trusted.stdout)["valid"] is True

        public_only = subprocess.run(cli, capture_output=True, text=True, timeout=60, cwd=ROOT, env=env)
        assert public_only.returncode == 1
        assert json.loads(public_only.stdout)["valid"] is False and "CERTIFICATE_VERIFY_FAILED" in public_only.stdout
