"""Start, watch and stop the demo's parties as real processes, each in its own process group.

Why process groups: a party may spawn children (uvicorn workers, a PostgreSQL server); signalling the group
reaches all of them, so stopping the demo - normally, on failure or on Ctrl-C - leaves no orphans and frees
every port. Children also get ``PR_SET_PDEATHSIG`` so they die with the orchestrator if it is killed hard.
"""

from __future__ import annotations

import ctypes
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

import httpx

from connector.demo.errors import ProcessStartError

_PR_SET_PDEATHSIG = 1


_PORT_RANGE = (20000, 32000)  # below Linux's ephemeral range, so outgoing connections never take our ports
_handed_out: set[int] = set()


def free_port(host: str = "127.0.0.1") -> int:
    """A port nobody listens on right now, chosen below the ephemeral range and not handed out before.

    WHY not ``bind(0)``: the kernel picks that port from the range every outgoing connection uses, so on a busy
    machine another socket can take it between our check and the party's bind.
    """
    rng = random.SystemRandom()
    for _ in range(200):
        port = rng.randrange(*_PORT_RANGE)
        if port in _handed_out:
            continue
        with socket.socket() as sock:
            try:
                sock.bind((host, port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_is_free(host: str, port: int) -> bool:
    """True when nothing accepts connections on host:port."""
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((host, port)) != 0


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        pass


@dataclass
class Party:
    """One started process: its name, command, log file and the Popen handle."""

    name: str
    argv: list[str]
    log_path: Path
    popen: subprocess.Popen[bytes]
    urls: dict[str, str] = field(default_factory=dict)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def running(self) -> bool:
        return self.popen.poll() is None

    def log_tail(self, lines: int = 15) -> str:
        """The end of the party's log, to explain why it failed."""
        try:
            text = self.log_path.read_text("utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.rstrip().splitlines()[-lines:])


class Supervisor:
    """Owns every process the demo starts; use as a context manager so they are always stopped.

    ``keep=True`` leaves them running on a successful exit (``--keep``); on failure or interrupt they are
    stopped regardless, because a half-built data space helps nobody.
    """

    def __init__(self, log_dir: Path, *, keep: bool = False, term_timeout: float = 5.0) -> None:
        self.log_dir = log_dir
        self.keep = keep
        self.term_timeout = term_timeout
        self.parties: dict[str, Party] = {}
        self._previous_handlers: dict[int, object] = {}

    # -- starting ------------------------------------------------------------------------------------------
    def start(self, name: str, argv: Sequence[str], *, env: Mapping[str, str] | None = None,
              cwd: Path | None = None, die_with_parent: bool = True) -> Party:
        """Start ``argv`` as party ``name`` in a new session; output goes to ``<log_dir>/<name>.log``."""
        if name in self.parties and self.parties[name].running():
            raise ProcessStartError(f"{name} is already running (pid {self.parties[name].pid})")
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.log_dir / f"{name}.log"
        full_env = dict(os.environ if env is None else env)
        full_env.setdefault("PYTHONUNBUFFERED", "1")
        with open(log_path, "ab") as log:
            try:
                popen = subprocess.Popen(
                    list(argv), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                    env=full_env, cwd=cwd, start_new_session=True,
                    preexec_fn=_die_with_parent if die_with_parent and sys.platform == "linux" else None,
                )
            except OSError as exc:
                raise ProcessStartError(f"cannot start {name} ({argv[0]}): {exc.strerror or exc}") from exc
        party = Party(name, list(argv), log_path, popen)
        self.parties[name] = party
        return party

    def wait_until(self, name: str, check: Callable[[], bool], *, timeout: float = 30.0,
                   what: str = "healthy") -> None:
        """Poll ``check`` until it is true; fail early with the log tail when the process exits."""
        party = self.parties[name]
        deadline = time.monotonic() + timeout
        while True:
            if not party.running():
                raise ProcessStartError(
                    f"{name} exited with code {party.popen.returncode} before it was {what}; "
                    f"log {party.log_path}:\n{party.log_tail()}")
            try:
                if check():
                    return
            except (httpx.HTTPError, OSError):
                pass
            if time.monotonic() > deadline:
                raise ProcessStartError(f"{name} was not {what} after {timeout:.0f} s; log {party.log_path}:\n"
                                        f"{party.log_tail()}")
            time.sleep(0.1)

    def wait_http(self, name: str, url: str, *, timeout: float = 30.0, headers: Mapping[str, str] | None = None,
                  ok: Callable[[httpx.Response], bool] | None = None) -> None:
        """Wait until ``GET url`` answers (2xx by default)."""
        accept = ok or (lambda r: r.is_success)

        def check() -> bool:
            return accept(httpx.get(url, timeout=1.0, headers=dict(headers or {})))

        self.wait_until(name, check, timeout=timeout, what=f"answering {url}")

    def wait_ports(self, name: str, addresses: Sequence[str], *, timeout: float = 30.0) -> None:
        """Wait until every HOST:PORT accepts connections."""
        def check() -> bool:
            for address in addresses:
                host, _, port = address.rpartition(":")
                if port_is_free(host, int(port)):
                    return False
            return True

        self.wait_until(name, check, timeout=timeout, what=f"listening on {', '.join(addresses)}")

    # -- stopping ------------------------------------------------------------------------------------------
    def stop(self, name: str) -> int | None:
        """SIGTERM the party's process group, SIGKILL it after ``term_timeout``; returns the exit code."""
        party = self.parties.get(name)
        if party is None:
            return None
        _signal_group(party.pid, signal.SIGTERM)
        try:
            party.popen.wait(timeout=self.term_timeout)
        except subprocess.TimeoutExpired:
            _signal_group(party.pid, signal.SIGKILL)
            party.popen.wait(timeout=self.term_timeout)
        # the leader is gone; make sure nothing else of its group survives
        _signal_group(party.pid, signal.SIGKILL)
        return party.popen.returncode

    def stop_all(self) -> None:
        """Stop every party at once: SIGTERM to all groups, one shared grace period, then SIGKILL."""
        running = [p for p in self.parties.values()]
        for party in running:
            _signal_group(party.pid, signal.SIGTERM)
        deadline = time.monotonic() + self.term_timeout
        for party in running:
            try:
                party.popen.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _signal_group(party.pid, signal.SIGKILL)
                party.popen.wait(timeout=self.term_timeout)
            _signal_group(party.pid, signal.SIGKILL)

    # -- context manager and signals -----------------------------------------------------------------------
    def __enter__(self) -> Supervisor:
        for signum in (signal.SIGTERM, signal.SIGHUP):
            try:
                self._previous_handlers[signum] = signal.signal(signum, self._on_signal)
            except ValueError:  # not the main thread: the caller handles signals
                break
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        try:
            if exc_type is not None or not self.keep:
                self.stop_all()
        finally:
            for signum, handler in self._previous_handlers.items():
                signal.signal(signum, handler)  # type: ignore[arg-type]
            self._previous_handlers.clear()

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt(f"signal {signum}")


def _signal_group(pgid: int, signum: int) -> None:
    try:
        os.killpg(pgid, signum)
    except (ProcessLookupError, PermissionError):
        pass


def group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes of a process group, read from /proc; zombies hold no ports or files."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()  # state ppid pgrp ...
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(entry.name))
    return members


def group_alive(pgid: int) -> bool:
    """True while any live process of the group exists (tests use it to prove there are no orphans)."""
    if Path("/proc/self/stat").exists():
        return bool(group_members(pgid))
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextmanager
def supervised(log_dir: Path, *, keep: bool = False) -> Iterator[Supervisor]:
    """``with supervised(dir) as sup:`` - shorthand used by the demo and the compose launcher."""
    with Supervisor(log_dir, keep=keep) as supervisor:
        yield supervisor
