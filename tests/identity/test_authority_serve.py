"""``pactum authority serve`` as a real process: configuration from TOML + environment, HTTP on loopback."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.identity.test_dcp_support import free_port

ROOT = Path(__file__).resolve().parents[2]


def test_serve_process(tmp_path: Path) -> None:
    port = free_port()
    config = tmp_path / "authority.toml"
    config.write_text(
        f'did = "did:web:127.0.0.1%3A{port}"\nbase_url = "http://127.0.0.1:{port}"\n'
        'keystore = "keys.json"\ndatabase_url = "sqlite:///authority.db"\n'
        '[listen]\nport = 1\n'
    )
    env = {**os.environ, "PACTUM_AUTHORITY_PASSPHRASE": "pw", "PACTUM_AUTHORITY_LISTEN__PORT": str(port),
           "PACTUM_AUTHORITY_ADMIN_KEY": "k", "PACTUM_LOG_LEVEL": "warning", "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "identity.cli", "authority", "serve", "--config", str(config)],
                            env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 20
        while True:
            try:
                if httpx.get(base + "/health").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
            assert time.monotonic() < deadline, "authority did not start"
            time.sleep(0.1)
        doc = httpx.get(base + "/.well-known/did.json").json()
        assert doc["id"] == f"did:web:127.0.0.1%3A{port}"
        registered = httpx.post(base + "/admin/participants", headers={"X-Admin-Key": "k"},
                                json={"did": "did:web:s.example.com", "name": "S", "bpn": "BPNL7"})
        assert registered.status_code == 201
        issued = httpx.post(base + "/admin/issue", headers={"X-Admin-Key": "k"},
                            json={"holderDid": "did:web:s.example.com", "credential": "bpn"})
        assert issued.status_code == 201 and issued.json()["type"] == "BusinessPartnerCredential"
        bad = httpx.post(base + "/admin/issue", headers={"X-Admin-Key": "k"}, json={"holder": "x"})
        assert bad.status_code == 400 and bad.json()["code"] == "body_invalid"
        assert httpx.get(base + "/nowhere").headers["content-type"].startswith("application/problem+json")
        assert (tmp_path / "keys.json").exists() and (tmp_path / "authority.db").exists()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
