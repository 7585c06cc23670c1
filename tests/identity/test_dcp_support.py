"""Helpers for the DCP and authority tests: real uvicorn servers on free loopback ports, fast wallets.

(Named test_* so it sits among the files the identity/dcp owner maintains; it holds no tests itself.)
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

from identity.wallet import Wallet

FAST_SCRYPT = {"n": 2**10, "r": 8, "p": 1}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def loopback_did(port: int) -> str:
    return f"did:web:127.0.0.1%3A{port}"


@contextmanager
def serve(app: Any, port: int) -> Iterator[str]:
    """Run ``app`` with uvicorn in a thread on 127.0.0.1:port; yields the base URL, stops on exit."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                           lifespan="on", access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("server did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def make_wallet(folder: Path, port: int | None = None, *, with_cs: bool = True, alg: str = "EdDSA") -> Wallet:
    """A did:web wallet for a loopback port (publishing its credential service there) or a did:key wallet."""
    if port is None:
        return Wallet.init(folder, None, "pw", alg, scrypt_params=FAST_SCRYPT)
    return Wallet.init(folder, loopback_did(port), "pw", alg, scrypt_params=FAST_SCRYPT,
                       credential_service_url=f"http://127.0.0.1:{port}" if with_cs else None)
