"""Real processes for the end-to-end and conformance tests: an authority and connectors on loopback ports.

Each connector runs as ``python -m connector.cli connector serve --config ...`` with its own SQLite
database and wallet (its MembershipCredential issued by the authority beforehand), and is stopped with
SIGTERM at the end (SIGKILL if it does not stop). ``dataspace`` gives a provider and a consumer that trust
the authority; tests talk to them over their management APIs and DSP endpoints only.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from identity.wallet import Wallet

ROOT = Path(__file__).resolve().parents[2]
FAST_SCRYPT = {"n": 2**10, "r": 8, "p": 1}
API_KEY = "e2e-management-key"
PASSPHRASE = "e2e-wallet-passphrase"
ADMIN_KEY = "e2e-admin-key"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PACTUM_")}
    env["PYTHONPATH"] = str(ROOT)
    return env


def _wait_healthy(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode}: {log.read_text()[-3000:]}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{url} not healthy after {timeout}s: {log.read_text()[-3000:]}")
        time.sleep(0.05)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


@dataclass
class Authority:
    url: str
    did: str
    proc: subprocess.Popen[bytes]

    def admin(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return httpx.request(method, self.url + path, headers={"X-Admin-Key": ADMIN_KEY}, timeout=20, **kwargs)

    def register(self, did: str, name: str) -> None:
        r = self.admin("POST", "/admin/participants", json={"did": did, "name": name, "bpn": f"BPNL{name.upper()}"})
        assert r.status_code in (200, 201, 409), r.text

    def issue(self, holder_did: str, credential: str = "membership") -> dict[str, Any]:
        r = self.admin("POST", "/admin/issue", json={"holderDid": holder_did, "credential": credential})
        assert r.status_code == 201, r.text
        body: dict[str, Any] = r.json()
        return body

    def revoke(self, credential_id: str) -> None:
        r = self.admin("POST", "/admin/revoke", json={"credentialId": credential_id})
        assert r.status_code == 200, r.text


@dataclass
class Connector:
    name: str
    folder: Path
    config: Path
    ports: dict[str, int]
    did: str
    proc: subprocess.Popen[bytes] | None = None
    log: Path = field(default=Path("/dev/null"))
    credential_ids: list[str] = field(default_factory=list)

    @property
    def protocol_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['protocol']}"

    @property
    def management_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['management']}/management"

    def mgmt(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"X-Api-Key": API_KEY, **kwargs.pop("headers", {})}
        return httpx.request(method, self.management_url + path, headers=headers, timeout=30, **kwargs)

    def launch(self) -> None:
        """Start the process without waiting (several connectors boot in parallel)."""
        self.log = self.folder / f"{self.name}.log"
        out = self.log.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "connector.cli", "connector", "serve", "--config", str(self.config)],
            cwd=self.folder, env=_env(), stdout=out, stderr=subprocess.STDOUT)

    def wait_ready(self) -> None:
        assert self.proc is not None
        for surface in ("protocol", "management", "identity"):
            _wait_healthy(f"http://127.0.0.1:{self.ports[surface]}/health", self.proc, self.log, timeout=60)

    def start(self) -> None:
        self.launch()
        self.wait_ready()

    def stop(self) -> None:
        if self.proc is not None:
            _stop(self.proc)
            self.proc = None

    def kill(self) -> None:
        """A crash: SIGKILL, no clean shutdown."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(timeout=5)
            self.proc = None

    def negotiation(self, negotiation_id: str) -> dict[str, Any]:
        r = self.mgmt("GET", f"/v3/contractnegotiations/{negotiation_id}")
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body

    def transfer(self, transfer_id: str) -> dict[str, Any]:
        r = self.mgmt("GET", f"/v3/transferprocesses/{transfer_id}")
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body

    def wait_state(self, kind: str, process_id: str, *states: str, timeout: float = 20) -> dict[str, Any]:
        """Poll the management API (test side only) until the process reaches one of ``states``."""
        read: Callable[[str], dict[str, Any]] = self.negotiation if kind == "negotiation" else self.transfer
        deadline = time.monotonic() + timeout
        while True:
            current = read(process_id)
            if current["state"] in states:
                return current
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.name} {kind} {process_id} is {current['state']}, wanted {states}: "
                                     f"{current}\n{self.log.read_text()[-4000:]}")
            time.sleep(0.05)


def make_connector(base: Path, name: str, authority: Authority, *, approval: str = "auto",
                   credentials: tuple[str, ...] = ("membership",), extra_toml: str = "",
                   trusted: dict[str, list[str]] | None = None) -> Connector:
    """Write the config, create the wallet holding credentials issued by the authority (not started yet)."""
    folder = base / name
    folder.mkdir(parents=True)
    ports = {s: free_port() for s in ("protocol", "management", "data", "identity")}
    did = f"did:web:127.0.0.1%3A{ports['identity']}"
    trust = trusted if trusted is not None else {"MembershipCredential": [authority.did]}
    issuers = "\n".join(f'{t} = [{", ".join(repr(i).replace(chr(39), chr(34)) for i in v)}]' for t, v in trust.items())
    config = folder / "connector.toml"
    config.write_text(f"""
approval = "{approval}"
log_level = "INFO"
{extra_toml}
[participant]
name = "{name}"
jurisdiction = "DE"

[listen]
protocol = "127.0.0.1:{ports['protocol']}"
management = "127.0.0.1:{ports['management']}"
data = "127.0.0.1:{ports['data']}"
identity = "127.0.0.1:{ports['identity']}"

[storage]
url = "sqlite:///{name}.db"

[keystore]
path = "wallet/keystore.json"
passphrase = "{PASSPHRASE}"

[management]
api_key = "{API_KEY}"

[trust]
authority_url = "{authority.url}"
[trust.issuers]
{issuers}
""")
    wallet = Wallet.init(folder / "wallet", did, PASSPHRASE, scrypt_params=FAST_SCRYPT)
    authority.register(did, name)
    connector = Connector(name, folder, config, ports, did)
    for credential in credentials:
        issued = authority.issue(did, credential)
        wallet.store_credential(issued["credential"])
        connector.credential_ids.append(issued["id"])
    wallet.close()
    return connector


@pytest.fixture(scope="session")
def authority(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Authority]:
    folder = tmp_path_factory.mktemp("authority")
    port = free_port()
    did = f"did:web:127.0.0.1%3A{port}"
    config = folder / "authority.toml"
    config.write_text(f'did = "{did}"\nbase_url = "http://127.0.0.1:{port}"\nkeystore = "keys.json"\n'
                      f'database_url = "sqlite:///authority.db"\nallow_http = true\n[listen]\nport = {port}\n')
    env = {**_env(), "PACTUM_AUTHORITY_PASSPHRASE": "authority-pw", "PACTUM_AUTHORITY_ADMIN_KEY": ADMIN_KEY}
    log = folder / "authority.log"
    proc = subprocess.Popen([sys.executable, "-m", "identity.cli", "authority", "serve", "--config", str(config)],
                            env=env, cwd=folder, stdout=log.open("ab"), stderr=subprocess.STDOUT)
    try:
        _wait_healthy(f"http://127.0.0.1:{port}/health", proc, log, timeout=60)
        yield Authority(f"http://127.0.0.1:{port}", did, proc)
    finally:
        _stop(proc)


@dataclass
class Dataspace:
    provider: Connector
    consumer: Connector
    authority: Authority


@pytest.fixture(scope="session")
def dataspace(tmp_path_factory: pytest.TempPathFactory, authority: Authority) -> Iterator[Dataspace]:
    """A provider and a consumer (auto approval), both members, shared by the whole e2e session.

    Tests that stop or kill one of them start it again before they end.
    """
    base = tmp_path_factory.mktemp("dataspace")
    provider = make_connector(base, "provider", authority)
    consumer = make_connector(base, "consumer", authority)
    try:
        provider.launch()
        consumer.launch()
        provider.wait_ready()
        consumer.wait_ready()
        yield Dataspace(provider, consumer, authority)
    finally:
        consumer.stop()
        provider.stop()
