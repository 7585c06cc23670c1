"""The connector process: four servers in one loop, the identity surface, clean shutdown on SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from connector.app import run
from connector.context import build_context
from connector.errors import ConfigError
from tests.connector.test_protocol_support import make_settings

ROOT = Path(__file__).resolve().parents[2]


def test_run_serves_four_ports_and_stops_on_the_event(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    stop = asyncio.Event()
    ready = threading.Event()
    loop_holder: list[asyncio.AbstractEventLoop] = []

    async def main() -> None:
        loop_holder.append(asyncio.get_running_loop())
        await run(settings, stop=stop, ready=lambda ctx: ready.set())

    thread = threading.Thread(target=asyncio.run, args=(main(),), daemon=True)
    thread.start()
    assert ready.wait(60), "connector did not become ready"
    try:
        for surface in ("protocol", "management", "data", "identity"):
            hostport = getattr(settings.listen, surface)
            assert httpx.get(f"http://{hostport}/health").status_code == 200
        doc = httpx.get(f"http://{settings.listen.identity}/.well-known/did.json").json()
        assert doc["id"] == settings.did
        services = {s["type"]: s["serviceEndpoint"] for s in doc["service"]}
        assert services["CredentialService"] == settings.identity_url + "/api/credentials"
        assert services["DataService"] == settings.protocol_url
        version = httpx.get(f"http://{settings.listen.protocol}/.well-known/dspace-version").json()
        assert version["protocolVersions"][0]["serviceId"] == f"{settings.did}#dataservice"
        unauthorised = httpx.post(f"http://{settings.listen.management}/management/v3/contractnegotiations/request")
        assert unauthorised.status_code == 401
    finally:
        loop_holder[0].call_soon_threadsafe(stop.set)
        thread.join(timeout=30)
    assert not thread.is_alive()
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"http://{settings.listen.protocol}/health", timeout=1)


def test_wallet_of_another_did_is_a_config_error(tmp_path: Path) -> None:
    make_settings(tmp_path)  # the wallet is created for the loopback did:web
    settings = make_settings(tmp_path, participant={"name": "X", "did": "did:web:elsewhere.example"})
    with pytest.raises(ConfigError, match="belongs to"):
        build_context(settings)


def test_serve_process_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    config = tmp_path / "connector.toml"
    listen = "\n".join(f'{k} = "{getattr(settings.listen, k)}"' for k in ("protocol", "management", "data",
                                                                          "identity"))
    config.write_text(f'[participant]\nname = "T"\n[listen]\n{listen}\n[storage]\nurl = "sqlite:///c.db"\n'
                      f'[keystore]\npath = "wallet/keystore.json"\npassphrase = "pw"\n')
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "connector.cli", "connector", "serve", "--config", str(config)],
                            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"http://{settings.listen.identity}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, proc.stdout.read() if proc.stdout else ""
            time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        output = proc.stdout.read().decode() if proc.stdout else ""
        assert "stopped" in output
    finally:
        if proc.poll() is None:
            proc.kill()
