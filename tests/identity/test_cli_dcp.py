"""CLI end to end: ``identity serve`` (a real process) receives what ``identity request`` asked the authority for."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from identity.authority.app import create_authority_app
from identity.cli import main
from tests.identity.test_authority_e2e import authority_settings
from tests.identity.test_dcp_support import free_port, loopback_did, serve

ROOT = Path(__file__).resolve().parents[2]


def test_request_delivers_to_served_wallet(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PACTUM_WALLET_PASSPHRASE", "pw")
    hport, aport = free_port(), free_port()
    wallet = str(tmp_path / "wallet")
    holder = loopback_did(hport)
    assert main(["identity", "init", "--dir", wallet, "--did", holder, "--credential-service",
                 f"http://127.0.0.1:{hport}"]) == 0
    env = {**os.environ, "PACTUM_WALLET_PASSPHRASE": "pw", "PACTUM_LOG_LEVEL": "warning", "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "identity.cli", "identity", "serve", "--dir", wallet, "--port",
                             str(hport), "--allow-http"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{hport}/.well-known/did.json").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, "credential service did not start"
            time.sleep(0.1)
        settings = authority_settings(tmp_path, aport, holder)
        with serve(create_authority_app(settings), aport) as authority_url:
            capsys.readouterr()
            code = main(["identity", "request", "--dir", wallet, "--issuer", authority_url, "--credential",
                         "membership", "--credential", "data-protection", "--json"])
            out = capsys.readouterr().out
            assert code == 0, out
            assert json.loads(out)["status"] == "ISSUED"
            code = main(["identity", "request", "--dir", wallet, "--issuer", authority_url, "--credential", "gold"])
            assert code == 1 and "does not offer gold" in capsys.readouterr().err
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert main(["identity", "credentials", "list", "--dir", wallet, "--json"]) == 0
    held = json.loads(capsys.readouterr().out)
    assert sorted(c["types"][1] for c in held) == ["DataProtectionCertification", "MembershipCredential"]
    assert all(c["issuer"] == settings.did for c in held)
