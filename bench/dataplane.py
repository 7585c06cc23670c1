"""Benchmark of the data plane against a bare Starlette FileResponse, both as real uvicorn processes.

Run: ``.venv/bin/python bench/dataplane.py [--size-mib 1024] [--small-seconds 5] [--concurrency 8]``

1. pull: one client streams a large file (sparse, created in a temp dir) with httpx through
   (a) the Pactum data plane (EDR token check, transfer state, agreement policy evaluation, atomic use
   counter, SHA-256 digest on the fly, audit entry) and (b) a bare Starlette ``FileResponse`` server;
   ratio of throughputs (each the best of ``--rounds``).
2. RSS: the data-plane server's resident set size sampled every 20 ms during the large pull; growth over
   the value just before the pull.
3. small requests: ``--concurrency`` clients fetch a 1 KiB file over keep-alive connections for
   ``--small-seconds``; every request passes every check and counts a use (limit set high). The figure is
   requests per CPU-second the server process used (user + system, from /proc): requests/s per core, and
   unaffected by other load on a shared machine. Wall-clock rates are printed too.

   The bare FileResponse server is measured the same way, on the SAME server stack (uvicorn with uvloop and
   httptools when installed, as the connector runs), in alternating rounds, side by side with the ratio.
   The data plane's transfer is backed by a real DSP transfer row, so the per-request STARTED check is
   the connector's own (read in the counting transaction).

   A third figure, a bare Starlette ``Response`` of the same 1 KiB from memory, is the floor of the stack:
   what any request costs before a file is opened or anything is checked.

Ends with ``RESULT`` lines: dataplane_pull_ratio, dataplane_rss_growth_mib, dataplane_small_requests_per_s,
dataplane_small_vs_fileresponse, dataplane_small_fileresponse_per_s, dataplane_small_bare_response_per_s,
dataplane_small_vs_bare_response.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ------------------------------------------------------------------------------------------- server processes
def server_stack() -> dict[str, str]:
    """The uvicorn loop and HTTP parser both servers run on (the connector's own choice: uvloop + httptools
    when installed), so the comparison is of the applications, not of the stacks."""
    import importlib.util

    return {"loop": "uvloop" if importlib.util.find_spec("uvloop") else "asyncio",
            "http": "httptools" if importlib.util.find_spec("httptools") else "h11"}


def serve_file(folder: str, port: int) -> None:
    """The baseline: Starlette's FileResponse, nothing else."""
    import uvicorn
    from starlette.applications import Starlette
    from starlette.responses import FileResponse, Response
    from starlette.routing import Route

    async def handler(request: Any) -> FileResponse:
        return FileResponse(os.path.join(folder, request.path_params["name"]))

    small = Path(folder, "small.bin").read_bytes()

    async def from_memory(_request: Any) -> Response:
        return Response(small, media_type="application/octet-stream")

    app = Starlette(routes=[Route("/files/{name}", handler), Route("/memory/small.bin", from_memory)])
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False, **server_stack())


def serve_dataplane(workdir: str, port: int) -> None:
    """The Pactum data plane with a registered transfer; writes the EDR to ``workdir/edr.json``."""
    import uvicorn

    from connector.audit import AuditLog
    from connector.dataplane import AssetInfo, DataPlane, TransferInfo, create_data_app
    from connector.storage.db import open_database
    from connector.storage.tables_protocol import TransferRow
    from connector.transfer import ProcessStates
    from identity.dids import did_key_from_key
    from identity.keys import generate_key
    from policies import parse_policy

    key = generate_key("EdDSA")
    did = did_key_from_key(key)
    kid = f"{did}#{key.public_multibase()}"
    _engine, sessions = open_database(f"sqlite:///{workdir}/dataplane.db")
    audit = AuditLog(sessions, signer=key, kid=kid, did=did, checkpoint_every=1000)
    import httpx as _httpx

    # the DSP state lives in the real transfer table, read on every request as in a running connector
    with sessions.begin() as session:
        session.add(TransferRow(
            id="tp-bench", role="provider", state="STARTED", consumer_pid="tc-bench", provider_pid="tp-bench",
            agreement_id="agr-bench", transfer_type="HttpData-PULL", counterparty_did="did:example:bench-consumer",
            counterparty_address="http://127.0.0.1:9/protocol", approval="auto", correlation_id="tp-bench",
            created_at=datetime.now(UTC), updated_at=datetime.now(UTC)))
    dp = DataPlane(sessions=sessions, key=key, kid=kid, did=did, data_url=f"http://127.0.0.1:{port}", audit=audit,
                   http=_httpx.AsyncClient(), data_folder=Path(workdir) / "received", token_lifetime=3600,
                   states=ProcessStates(SimpleNamespace(sessions=sessions)))
    policy = parse_policy({
        "@context": "http://www.w3.org/ns/odrl.jsonld", "@id": "urn:agreement:bench", "@type": "Agreement",
        "permission": [{"@id": "urn:agreement:bench#use", "action": "use", "target": "urn:asset:bench",
                        "constraint": [
                            {"leftOperand": "count", "operator": "lteq", "rightOperand": 100_000_000},
                            {"leftOperand": "dateTime", "operator": "lt",
                             "rightOperand": {"@value": "2999-01-01T00:00:00Z", "@type": "xsd:dateTime"}}]}]})
    transfer = TransferInfo(
        transfer_id="tp-bench", agreement_id="agr-bench", policy=policy,
        agreement_time=datetime.now(UTC) - timedelta(minutes=1),
        asset=AssetInfo("urn:asset:bench", {"type": "folder", "path": str(Path(workdir) / "files")},
                        {"contentType": "application/octet-stream"}),
        consumer_did="did:example:bench-consumer")
    address = asyncio.run(dp.start(transfer))
    (Path(workdir) / "edr.json").write_text(json.dumps(address))
    uvicorn.run(create_data_app(dp), host="127.0.0.1", port=port, log_level="warning", access_log=False,
                **server_stack())


def start_server(kind: str, arg: str, port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen([sys.executable, __file__, f"--serve-{kind}", arg, str(port)], cwd=str(ROOT))
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return proc
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit(f"the {kind} server did not start")


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


class RssSampler(threading.Thread):
    """Samples a process's RSS every 20 ms; ``stop()`` returns the peak."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.peak = rss_mib(pid)
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            self.peak = max(self.peak, rss_mib(self.pid))
            time.sleep(0.02)

    def stop(self) -> float:
        self.done.set()
        self.join()
        return self.peak


# ------------------------------------------------------------------------------------------- clients
async def pull(url: str, headers: dict[str, str]) -> tuple[int, float]:
    async with httpx.AsyncClient(timeout=120) as client:
        start = time.perf_counter()
        size = 0
        async with client.stream("GET", url, headers=headers) as response:
            if response.status_code != 200:
                raise SystemExit(f"{url}: HTTP {response.status_code}: {(await response.aread())[:200]!r}")
            async for chunk in response.aiter_raw(1024 * 1024):
                size += len(chunk)
        return size, time.perf_counter() - start


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (from /proc)."""
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def small_requests(url: str, headers: dict[str, str], seconds: float, concurrency: int
                         ) -> tuple[float, int]:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(timeout=30, limits=limits) as client:
        for _ in range(20):  # warm-up
            (await client.get(url, headers=headers)).raise_for_status()
        done = 0
        stop_at = time.perf_counter() + seconds

        async def worker() -> None:
            nonlocal done
            while time.perf_counter() < stop_at:
                response = await client.get(url, headers=headers)
                if response.status_code != 200:
                    raise SystemExit(f"small request failed: HTTP {response.status_code}: {response.text[:200]}")
                done += 1

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return done / (time.perf_counter() - start), done


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--small-seconds", type=float, default=5.0)
    parser.add_argument("--small-rounds", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="pactum-bench-") as tmp:
        files = Path(tmp) / "files"
        files.mkdir()
        with open(files / "big.bin", "wb") as fh:
            fh.truncate(args.size_mib * 1024 * 1024)  # sparse: measures the servers, not the disk
        (files / "small.bin").write_bytes(os.urandom(1024))

        base_port, dp_port = free_port(), free_port()
        baseline = start_server("file", str(files), base_port)
        dataplane = start_server("dataplane", tmp, dp_port)
        try:
            for _ in range(100):
                if (Path(tmp) / "edr.json").exists():
                    break
                time.sleep(0.05)
            edr = json.loads((Path(tmp) / "edr.json").read_text())
            token = next(p["value"] for p in edr["endpointProperties"] if p["name"] == "authorization")
            auth = {"Authorization": f"Bearer {token}"}
            expected = args.size_mib * 1024 * 1024

            base_best = dp_best = 0.0
            rss_growth = 0.0
            for _ in range(args.rounds):
                size, secs = asyncio.run(pull(f"http://127.0.0.1:{base_port}/files/big.bin", {}))
                assert size == expected, size
                base_best = max(base_best, size / secs)

                before = rss_mib(dataplane.pid)
                sampler = RssSampler(dataplane.pid)
                sampler.start()
                size, secs = asyncio.run(pull(f"{edr['endpoint']}/big.bin", auth))
                peak = sampler.stop()
                assert size == expected, size
                dp_best = max(dp_best, size / secs)
                rss_growth = max(rss_growth, peak - before)

            # alternating rounds, so a burst of other load on a shared machine hits both servers alike
            small = {"base": [0, 0.0, 0.0], "dp": [0, 0.0, 0.0], "mem": [0, 0.0, 0.0]}  # requests, CPU-s, wall s
            targets = {"base": (baseline.pid, f"http://127.0.0.1:{base_port}/files/small.bin", {}),
                       "dp": (dataplane.pid, f"{edr['endpoint']}/small.bin", auth),
                       "mem": (baseline.pid, f"http://127.0.0.1:{base_port}/memory/small.bin", {})}
            for _ in range(args.small_rounds):
                for name, (pid, url, headers) in targets.items():
                    cpu0 = cpu_seconds(pid)
                    rate, done = asyncio.run(small_requests(url, headers, args.small_seconds, args.concurrency))
                    small[name][0] += done
                    small[name][1] += cpu_seconds(pid) - cpu0
                    small[name][2] += done / rate
            base_per_core = small["base"][0] / max(small["base"][1], 1e-9)
            per_core = small["dp"][0] / max(small["dp"][1], 1e-9)
            mem_per_core = small["mem"][0] / max(small["mem"][1], 1e-9)
            base_rps = small["base"][0] / small["base"][2]
            mem_rps = small["mem"][0] / small["mem"][2]
            rps = small["dp"][0] / small["dp"][2]
        finally:
            stop_server(dataplane)
            stop_server(baseline)

    mib = 1024 * 1024
    print(f"pull {args.size_mib} MiB: FileResponse {base_best / mib:.0f} MiB/s, data plane {dp_best / mib:.0f} MiB/s")
    print(f"data plane RSS growth during the pull: {rss_growth:.1f} MiB")
    stack = server_stack()
    print(f"server stack of both: uvicorn loop={stack['loop']} http={stack['http']}; {args.concurrency} concurrent "
          f"keep-alive clients, {args.small_rounds} alternating rounds of {args.small_seconds:g} s each")
    print("1 KiB requests            per CPU-second of the server   wall-clock rate")
    print(f"  Pactum data plane       {per_core:8.0f}                       {rps:8.0f}/s")
    print(f"  bare FileResponse       {base_per_core:8.0f}                       {base_rps:8.0f}/s")
    print(f"  bare Response (memory)  {mem_per_core:8.0f}                       {mem_rps:8.0f}/s")
    print(f"  ratio Pactum/bare FileResponse {per_core / base_per_core:.2f}; "
          f"Pactum/bare Response {per_core / mem_per_core:.2f}")
    load = os.getloadavg()
    print(f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} CPUs")
    print(f"RESULT dataplane_pull_ratio={dp_best / base_best:.2f}")
    print(f"RESULT dataplane_rss_growth_mib={rss_growth:.1f} MiB")
    print(f"RESULT dataplane_small_requests_per_s={per_core:.0f} 1/s")
    print(f"RESULT dataplane_small_vs_fileresponse={per_core / base_per_core:.2f}")
    print(f"RESULT dataplane_small_fileresponse_per_s={base_per_core:.0f} 1/s")
    print(f"RESULT dataplane_small_bare_response_per_s={mem_per_core:.0f} 1/s")
    print(f"RESULT dataplane_small_vs_bare_response={per_core / mem_per_core:.2f}")


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--serve-file":
        serve_file(sys.argv[2], int(sys.argv[3]))
    elif len(sys.argv) == 4 and sys.argv[1] == "--serve-dataplane":
        serve_dataplane(sys.argv[2], int(sys.argv[3]))
    else:
        main()
