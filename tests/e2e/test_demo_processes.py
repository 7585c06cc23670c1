"""The demo's process supervisor: real processes, real ports, no orphans after stop, failure or Ctrl-C."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from connector.demo.errors import ProcessStartError
from connector.demo.processes import Supervisor, free_port, group_alive, port_is_free

# A server that also forks a grandchild listening on a second port: stopping must reach both.
SERVER = textwrap.dedent("""
    import http.server, os, socketserver, sys
    port, child_port = int(sys.argv[1]), int(sys.argv[2])
    if os.fork() == 0:
        socketserver.TCPServer(("127.0.0.1", child_port), http.server.BaseHTTPRequestHandler).serve_forever()
    class Health(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200); self.end_headers(); self.wfile.write(b"ok")
        def log_message(self, *a): pass
    http.server.HTTPServer(("127.0.0.1", port), Health).serve_forever()
""")

# Ignores SIGTERM, so only SIGKILL stops it.
STUBBORN = "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\nprint('up', flush=True)\n" \
           "time.sleep(60)\n"


def _wait_free(port: int, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if port_is_free("127.0.0.1", port):
            return True
        time.sleep(0.05)
    return False


def test_start_wait_stop_frees_ports_and_children(tmp_path: Path) -> None:
    port, child_port = free_port(), free_port()
    with Supervisor(tmp_path) as sup:
        party = sup.start("server", [sys.executable, "-c", SERVER, str(port), str(child_port)])
        sup.wait_http("server", f"http://127.0.0.1:{port}/health", timeout=10)
        sup.wait_ports("server", [f"127.0.0.1:{child_port}"], timeout=10)
        assert group_alive(party.pid)
    assert not group_alive(party.pid)
    assert _wait_free(port) and _wait_free(child_port)


def test_stubborn_process_is_killed(tmp_path: Path) -> None:
    sup = Supervisor(tmp_path, term_timeout=0.5)
    party = sup.start("stubborn", [sys.executable, "-c", STUBBORN])
    sup.wait_until("stubborn", lambda: "up" in party.log_path.read_text(), timeout=10)
    code = sup.stop("stubborn")
    assert code == -signal.SIGKILL
    assert not group_alive(party.pid)


def test_exit_before_healthy_reports_log_tail(tmp_path: Path) -> None:
    with Supervisor(tmp_path) as sup:
        sup.start("broken", [sys.executable, "-c", "print('missing config file x.toml'); raise SystemExit(3)"])
        with pytest.raises(ProcessStartError, match="(?s)exited with code 3.*missing config file x.toml"):
            sup.wait_http("broken", f"http://127.0.0.1:{free_port()}/health", timeout=10)


def test_timeout_names_the_party(tmp_path: Path) -> None:
    with Supervisor(tmp_path) as sup:
        sup.start("sleepy", [sys.executable, "-c", "import time; time.sleep(30)"])
        with pytest.raises(ProcessStartError, match="sleepy was not answering"):
            sup.wait_http("sleepy", f"http://127.0.0.1:{free_port()}/health", timeout=0.5)


def test_failure_inside_the_block_stops_everything(tmp_path: Path) -> None:
    port, child_port = free_port(), free_port()
    with pytest.raises(RuntimeError), Supervisor(tmp_path, keep=True) as sup:
        party = sup.start("server", [sys.executable, "-c", SERVER, str(port), str(child_port)])
        sup.wait_http("server", f"http://127.0.0.1:{port}/health", timeout=10)
        raise RuntimeError("a step failed")
    assert not group_alive(party.pid)
    assert _wait_free(port) and _wait_free(child_port)


ORCHESTRATOR = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from connector.demo.processes import Supervisor
    port, child_port, server = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    with Supervisor(Path(sys.argv[4])) as sup:
        p = sup.start("server", [sys.executable, "-c", server, str(port), str(child_port)])
        sup.wait_http("server", f"http://127.0.0.1:{port}/health", timeout=10)
        print("pgid", p.pid, flush=True)
        time.sleep(60)
""")


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_interrupting_the_orchestrator_leaves_no_orphans(tmp_path: Path, signum: int) -> None:
    port, child_port = free_port(), free_port()
    proc = subprocess.Popen([sys.executable, "-c", ORCHESTRATOR, str(port), str(child_port), SERVER,
                             str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("pgid "), line
        pgid = int(line.split()[1])
        assert group_alive(pgid)
        proc.send_signal(signum)
        proc.wait(timeout=15)
        assert not group_alive(pgid)
        assert _wait_free(port) and _wait_free(child_port)
    finally:
        proc.kill()
        proc.wait()


def test_keep_leaves_parties_running_after_success(tmp_path: Path) -> None:
    port, child_port = free_port(), free_port()
    with Supervisor(tmp_path, keep=True) as sup:
        party = sup.start("server", [sys.executable, "-c", SERVER, str(port), str(child_port)],
                          die_with_parent=False)
        sup.wait_http("server", f"http://127.0.0.1:{port}/health", timeout=10)
    try:
        assert group_alive(party.pid) and not port_is_free("127.0.0.1", port)
    finally:
        sup.stop_all()
    assert not group_alive(party.pid) and _wait_free(port)
