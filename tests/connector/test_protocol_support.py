"""Helpers for the control-plane tests: a real ConnectorContext on a temporary folder, loopback servers.

(Named test_* so it sits with the files engineer E owns; it holds no tests itself.)
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import uvicorn

from connector.config import Settings, settings_from_mapping
from connector.context import ConnectorContext, build_context
from identity.wallet import Wallet

FAST_SCRYPT = {"n": 2**10, "r": 8, "p": 1}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_settings(folder: Path, database_url: str | None = None, **extra: Any) -> Settings:
    """Settings for a connector on free loopback ports with a fast-scrypt wallet already created."""
    ports = {s: free_port() for s in ("protocol", "management", "data", "identity")}
    data: dict[str, Any] = {
        "participant": {"name": "Test"},
        "listen": {k: f"127.0.0.1:{v}" for k, v in ports.items()},
        "storage": {"url": database_url or f"sqlite:///{folder / 'connector.db'}"},
        "keystore": {"path": str(folder / "wallet" / "keystore.json"), "passphrase": "pw"},
        "management": {"api_key": "k"},
        **extra,
    }
    settings = settings_from_mapping(data)
    if not (folder / "wallet" / "wallet.json").exists():
        Wallet.init(folder / "wallet", settings.did, "pw", scrypt_params=FAST_SCRYPT).close()
    return settings


@contextmanager
def context(folder: Path, database_url: str | None = None, **extra: Any) -> Iterator[ConnectorContext]:
    ctx = build_context(make_settings(folder, database_url, **extra))
    try:
        yield ctx
    finally:
        ctx.wallet.close()
        ctx.jti_store.close()
        ctx.engine.dispose()


@contextmanager
def serve(app: Any, port: int | None = None, **config: Any) -> Iterator[str]:
    """Run an ASGI app on 127.0.0.1 in a thread; yields its base URL (https with ``ssl_certfile``/``ssl_keyfile``;
    other ``config`` goes to uvicorn as well)."""
    port = port or free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False,
                                           **config))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "server did not start"
        time.sleep(0.01)
    try:
        yield f"{'https' if config.get('ssl_certfile') else 'http'}://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
