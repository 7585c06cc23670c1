"""Benchmark of DSP contract negotiation between real connector processes with full DCP verification.

Run: ``.venv/bin/python bench/negotiation.py [--runs 15] [--consumers 5] [--concurrency 50] [--count 300]``

1. Time to agreement: one consumer connector asks a provider connector for a dataset (DSP catalog) and
   negotiates it to FINALIZED (request, agreement, verification, finalized event) through its management
   API, sequentially, ``--runs`` times (its state polled every 5 ms); median wall time. Every DSP message
   is authenticated with a DCP self-issued token and the receiver queries and verifies the sender's
   MembershipCredential presentation.
2. The floor: the same number of sequential HTTP round trips the protocol needs (5 DSP messages: dataset
   request, ContractRequest, ContractAgreement, AgreementVerification, FINALIZED event), as plain POSTs of
   a similar size (1 KiB JSON body, 1 KiB bearer header) over keep-alive to a bare Starlette echo app in
   its own uvicorn process, measured in the same run; ratio = median negotiation / median floor.
3. Throughput: ``--concurrency`` negotiations in flight against one provider, driven through
   ``--consumers`` real consumer connector processes (so ``--consumers`` distinct consumer DIDs, each
   running ``concurrency / consumers`` negotiations at a time), ``--count`` of them or as many as start
   within ``--max-seconds``; with
   SQLite for every connector, then again with PostgreSQL (one server, one database per connector).
   Per consumer process one watcher queries the states of all its negotiations in flight on the management
   API every 100 ms (one QuerySpec with ``id in [...]``), so a negotiation counts at most ~0.1 s late; the
   rate is finalized negotiations / wall time.

All processes share this machine's cores (the bench prints how many and the load average, and the CPU
time the connector processes spent per finalized negotiation, which does not depend on what else runs).
Ends with RESULT lines:
negotiation_median_ms, negotiation_vs_floor, negotiations_per_s_sqlite, negotiations_per_s_postgres,
negotiation_cpu_ms (CPU of all connector processes per finalized negotiation, SQLite round),
negotiation_provider_cpu_ms (the provider's part of it).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from tests.e2e.conftest import ADMIN_KEY, API_KEY, Authority, Connector, free_port, make_connector  # noqa: E402
from tests.e2e.flows import EDC, publish  # noqa: E402
from tests.pg import running_postgres  # noqa: E402

PROTOCOL = "dataspace-protocol-http:2025-1"
DSP_ROUND_TRIPS = 5  # dataset request, request, agreement, verification, finalized event
# WHY 5 ms: each poll costs the consumer connector about a millisecond of CPU on the same two cores the
# negotiation runs on; polling every 2 ms took a third of a core from it, 5 ms adds at most 5 ms (2.5 on
# average) to a measured time.
POLL_SECONDS = 0.005


# ------------------------------------------------------------------------------------------- processes
def _env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PACTUM_")}
    env["PYTHONPATH"] = str(ROOT)
    env.update(extra or {})
    return env


def _wait_healthy(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if proc.poll() is not None:
            raise SystemExit(f"process exited with {proc.returncode}: {log.read_text()[-3000:]}")
        if time.monotonic() > deadline:
            raise SystemExit(f"{url} not healthy after {timeout}s: {log.read_text()[-3000:]}")
        time.sleep(0.05)


def _stop(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is not None and proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def start_authority(folder: Path) -> Authority:
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    did = f"did:web:127.0.0.1%3A{port}"
    config = folder / "authority.toml"
    config.write_text(f'did = "{did}"\nbase_url = "http://127.0.0.1:{port}"\nkeystore = "keys.json"\n'
                      f'database_url = "sqlite:///authority.db"\nallow_http = true\n[listen]\nport = {port}\n')
    env = _env({"PACTUM_AUTHORITY_PASSPHRASE": "bench-authority", "PACTUM_AUTHORITY_ADMIN_KEY": ADMIN_KEY})
    log = folder / "authority.log"
    proc = subprocess.Popen([sys.executable, "-m", "identity.cli", "authority", "serve", "--config", str(config)],
                            env=env, cwd=folder, stdout=log.open("ab"), stderr=subprocess.STDOUT)
    _wait_healthy(f"http://127.0.0.1:{port}/health", proc, log)
    return Authority(f"http://127.0.0.1:{port}", did, proc)


def launch(connectors: list[Connector], storage: dict[str, str] | None = None) -> None:
    """Start every connector at once (``storage`` maps a name to a PACTUM_STORAGE__URL), then wait for all."""
    for c in connectors:
        c.log = c.folder / f"{c.name}.log"
        extra = {"PACTUM_STORAGE__URL": storage[c.name]} if storage and c.name in storage else {}
        c.proc = subprocess.Popen(
            [sys.executable, "-m", "connector.cli", "connector", "serve", "--config", str(c.config)],
            cwd=c.folder, env=_env(extra), stdout=c.log.open("ab"), stderr=subprocess.STDOUT)
    for c in connectors:
        assert c.proc is not None
        for surface in ("protocol", "management", "identity"):
            _wait_healthy(f"http://127.0.0.1:{c.ports[surface]}/health", c.proc, c.log)


def stop_all(connectors: list[Connector]) -> None:
    for c in connectors:
        _stop(c.proc)
        c.proc = None


def cpu_seconds(connectors: list[Connector]) -> float:
    """User + system CPU seconds the connector processes have used so far (from /proc)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for c in connectors:
        if c.proc is None:
            continue
        fields = Path(f"/proc/{c.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / tick  # utime, stime
    return total


# ------------------------------------------------------------------------------------------- the floor
ECHO_APP = """
import sys, uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

async def echo(request: Request) -> Response:
    return Response(await request.body(), media_type="application/json")

uvicorn.run(Starlette(routes=[Route("/echo", echo, methods=["POST"])]), host="127.0.0.1",
            port=int(sys.argv[1]), log_level="warning", access_log=False)
"""


def measure_floor(runs: int) -> list[float]:
    """Seconds for DSP_ROUND_TRIPS sequential POSTs (1 KiB body + 1 KiB token) to a bare echo app."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-c", ECHO_APP, str(port)], env=_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        with httpx.Client(timeout=10) as client:
            while True:
                try:
                    client.post(f"http://127.0.0.1:{port}/echo", content=b"{}")
                    break
                except httpx.HTTPError:
                    if time.monotonic() > deadline:
                        raise SystemExit("echo server did not start") from None
                    time.sleep(0.05)
            body = {"@context": ["https://w3id.org/dspace/2025/1/context.jsonld"], "@type": "Echo",
                    "padding": "x" * 900}
            headers = {"Authorization": "Bearer " + "t" * 1024}
            samples = []
            for _ in range(max(runs * 4, 40)):
                t0 = time.perf_counter()
                for _ in range(DSP_ROUND_TRIPS):
                    r = client.post(f"http://127.0.0.1:{port}/echo", json=body, headers=headers)
                    r.raise_for_status()
                samples.append(time.perf_counter() - t0)
        return samples
    finally:
        _stop(proc)


# ------------------------------------------------------------------------------------------- negotiations
def _offer(client: httpx.Client, consumer: Connector, provider: Connector, asset_id: str) -> dict[str, Any]:
    r = client.post(consumer.management_url + "/v3/catalog/dataset/request", json={
        "@context": EDC, "@type": "DatasetRequest", "@id": asset_id, "counterPartyAddress": provider.protocol_url,
        "counterPartyId": provider.did, "protocol": PROTOCOL})
    r.raise_for_status()
    policies = r.json().get("hasPolicy")
    offer: dict[str, Any] = policies[0] if isinstance(policies, list) else policies
    return offer


def _request_body(provider: Connector, offer: dict[str, Any], asset_id: str) -> dict[str, Any]:
    return {"@context": EDC, "@type": "ContractRequest", "counterPartyAddress": provider.protocol_url,
            "counterPartyId": provider.did, "protocol": PROTOCOL,
            "policy": {**offer, "target": asset_id, "assigner": provider.did}}


def time_to_agreement(consumer: Connector, provider: Connector, asset_id: str,
                      runs: int) -> tuple[list[float], list[float]]:
    """Seconds from the catalog (dataset) request to FINALIZED seen on the consumer, sequential runs; and
    the seconds of the catalog part alone."""
    headers = {"X-Api-Key": API_KEY}
    samples: list[float] = []
    catalog: list[float] = []
    with httpx.Client(timeout=30, headers=headers) as client:
        for i in range(runs + 2):  # two warm-up runs (DID documents cached, connections open)
            t0 = time.perf_counter()
            offer = _offer(client, consumer, provider, asset_id)
            t_catalog = time.perf_counter() - t0
            r = client.post(consumer.management_url + "/v3/contractnegotiations",
                            json=_request_body(provider, offer, asset_id))
            r.raise_for_status()
            negotiation_id = r.json()["@id"]
            while True:
                state = client.get(f"{consumer.management_url}/v3/contractnegotiations/{negotiation_id}/state")
                value = state.json()["state"]
                if value == "FINALIZED":
                    break
                if value == "TERMINATED":
                    raise SystemExit(f"negotiation terminated: {client.get(consumer.management_url + '/v3/contractnegotiations/' + negotiation_id).text}")  # noqa: E501
                if time.perf_counter() - t0 > 30:
                    raise SystemExit(f"negotiation {negotiation_id} stuck in {value}")
                time.sleep(POLL_SECONDS)
            if i >= 2:
                samples.append(time.perf_counter() - t0)
                catalog.append(t_catalog)
    return samples, catalog


async def _call(client: httpx.AsyncClient, method: str, url: str, **kwargs: Any) -> httpx.Response:
    """One management call; a keep-alive connection the server closed meanwhile is retried (twice at most).

    WHY: uvicorn drops idle keep-alive connections after 5 s, and a pooled connection can be picked in the
    same instant; a retried POST may start one extra negotiation, which is then simply not counted."""
    for attempt in range(3):
        try:
            response = await client.request(method, url, **kwargs)
            response.raise_for_status()
            return response
        except (httpx.ReadError, httpx.RemoteProtocolError, httpx.WriteError):
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


async def _watch_states(client: httpx.AsyncClient, consumer: Connector, waiting: dict[str, asyncio.Future[str]],
                        stop: asyncio.Event) -> None:
    """Every 100 ms, one management query for the states of all of this consumer's negotiations in flight.

    WHY one query and not one GET per negotiation: 10 drivers polling each of their negotiations every
    100 ms made the consumer connectors spend more CPU answering the bench than negotiating; an operator
    watching many negotiations queries them together too. A negotiation still counts at most ~0.1 s late.
    """
    while not stop.is_set():
        await asyncio.sleep(0.1)
        ids = [i for i, f in waiting.items() if not f.done()]
        if not ids:
            continue
        r = await _call(client, "POST", consumer.management_url + "/v3/contractnegotiations/request", json={
            "@context": EDC, "@type": "QuerySpec", "limit": len(ids),
            "filterExpression": [{"operandLeft": "id", "operator": "in", "operandRight": ids}]})
        for negotiation in r.json():
            future = waiting.get(negotiation["@id"])
            if future is not None and not future.done() and negotiation["state"] in ("FINALIZED", "TERMINATED"):
                future.set_result(negotiation["state"])


async def throughput(consumers: list[Connector], provider: Connector, asset_id: str, concurrency: int,
                     count: int, max_seconds: float) -> tuple[float, int, int]:
    """(finalized per second, finalized, terminated) with ``concurrency`` negotiations in flight.

    Stops starting new negotiations after ``count`` or ``max_seconds``; the ones in flight still finish.
    """
    headers = {"X-Api-Key": API_KEY}
    clients = {c.name: httpx.AsyncClient(timeout=60, headers=headers,
                                         limits=httpx.Limits(max_connections=concurrency)) for c in consumers}
    offers = {}
    with httpx.Client(timeout=30, headers=headers) as client:
        for c in consumers:
            offers[c.name] = _offer(client, c, provider, asset_id)
    started = 0
    finalized = 0
    terminated = 0
    waiting: dict[str, dict[str, asyncio.Future[str]]] = {c.name: {} for c in consumers}

    async def driver(consumer: Connector) -> None:
        nonlocal started, finalized, terminated
        client = clients[consumer.name]
        body = _request_body(provider, offers[consumer.name], asset_id)
        while started < count and time.perf_counter() - t0 < max_seconds:
            started += 1
            r = await _call(client, "POST", consumer.management_url + "/v3/contractnegotiations", json=body)
            negotiation_id = r.json()["@id"]
            done = waiting[consumer.name][negotiation_id] = asyncio.get_running_loop().create_future()
            try:
                state = await asyncio.wait_for(done, timeout=120)
            except TimeoutError:
                state = "TIMEOUT"
            del waiting[consumer.name][negotiation_id]
            if state == "FINALIZED":
                finalized += 1
            else:
                terminated += 1

    stop = asyncio.Event()
    t0 = time.perf_counter()
    watchers = [asyncio.create_task(_watch_states(clients[c.name], c, waiting[c.name], stop)) for c in consumers]
    try:
        await asyncio.gather(*(driver(consumers[i % len(consumers)]) for i in range(concurrency)))
    finally:
        stop.set()
        await asyncio.gather(*watchers, return_exceptions=True)
        for async_client in clients.values():
            await async_client.aclose()
    elapsed = time.perf_counter() - t0
    return finalized / elapsed, finalized, terminated


# ------------------------------------------------------------------------------------------- main
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--runs", type=int, default=15, help="sequential negotiations for the median")
    parser.add_argument("--consumers", type=int, default=5, help="consumer connector processes")
    parser.add_argument("--concurrency", type=int, default=50, help="negotiations in flight")
    parser.add_argument("--count", type=int, default=300, help="negotiations per throughput round (at most)")
    parser.add_argument("--max-seconds", type=float, default=45, help="stop starting new ones after this")
    parser.add_argument("--skip-postgres", action="store_true")
    args = parser.parse_args()

    base = Path(tempfile.mkdtemp(prefix="pactum-bench-negotiation-"))
    print(f"cores: {os.cpu_count()}, load average: {os.getloadavg()[0]:.1f}; work dir {base}", flush=True)
    results: dict[str, float] = {}
    with contextlib.ExitStack() as stack:
        # PostgreSQL first: its port is taken before the connectors pick theirs
        pg_url = None if args.skip_postgres else stack.enter_context(running_postgres())
        authority = start_authority(base / "authority")
        stack.callback(_stop, authority.proc)
        provider = make_connector(base, "provider", authority)
        consumers = [make_connector(base, f"consumer{i}", authority) for i in range(args.consumers)]
        everyone = [provider, *consumers]
        stack.callback(stop_all, everyone)
        launch(everyone)
        asset_id = publish(provider, approval="auto")

        samples, catalog = time_to_agreement(consumers[0], provider, asset_id, args.runs)
        median_ms = statistics.median(samples) * 1000
        floor = measure_floor(args.runs)
        floor_ms = statistics.median(floor) * 1000
        print(f"time to agreement (catalog request -> FINALIZED, full DCP): median {median_ms:.1f} ms, "
              f"min {min(samples) * 1000:.1f} ms, max {max(samples) * 1000:.1f} ms over {len(samples)} runs; "
              f"of which the dataset request: median {statistics.median(catalog) * 1000:.1f} ms")
        print(f"floor: {DSP_ROUND_TRIPS} sequential plain POSTs (1 KiB body + 1 KiB bearer) to a Starlette echo "
              f"app: median {floor_ms:.2f} ms")
        results["negotiation_median_ms"] = median_ms
        results["negotiation_vs_floor"] = median_ms / floor_ms

        cpu0, provider_cpu0 = cpu_seconds(everyone), cpu_seconds([provider])
        rate, done, failed = asyncio.run(throughput(consumers, provider, asset_id, args.concurrency, args.count,
                                                     args.max_seconds))
        cpu_ms = (cpu_seconds(everyone) - cpu0) * 1000 / max(done, 1)
        provider_ms = (cpu_seconds([provider]) - provider_cpu0) * 1000 / max(done, 1)
        print(f"throughput, SQLite: {rate:.1f} finalized/s ({done} finalized, {failed} not) with "
              f"{args.concurrency} in flight through {len(consumers)} consumer processes (distinct DIDs) "
              f"against one provider; {cpu_ms:.0f} ms CPU per negotiation in all connector processes together "
              f"(so at most {1000 * (os.cpu_count() or 1) / cpu_ms:.0f}/s on this machine's "
              f"{os.cpu_count()} cores if nothing else ran); of which the provider {provider_ms:.0f} ms", flush=True)
        results["negotiations_per_s_sqlite"] = rate
        results["negotiation_cpu_ms"] = cpu_ms
        results["negotiation_provider_cpu_ms"] = provider_ms
        print(f"load average after the SQLite round: {os.getloadavg()[0]:.1f}", flush=True)
        stop_all(everyone)

        if pg_url is not None:
            results["negotiations_per_s_postgres"] = postgres_round(pg_url, everyone, provider, consumers, args)

    print(f"RESULT negotiation_median_ms={results['negotiation_median_ms']:.1f} ms")
    print(f"RESULT negotiation_vs_floor={results['negotiation_vs_floor']:.1f} x")
    print(f"RESULT negotiations_per_s_sqlite={results['negotiations_per_s_sqlite']:.1f} 1/s")
    if "negotiations_per_s_postgres" in results:
        print(f"RESULT negotiations_per_s_postgres={results['negotiations_per_s_postgres']:.1f} 1/s")
    print(f"RESULT negotiation_cpu_ms={results['negotiation_cpu_ms']:.0f} ms")
    print(f"RESULT negotiation_provider_cpu_ms={results['negotiation_provider_cpu_ms']:.0f} ms")


def _postgres_log(url: str) -> str:
    """The tail of the server log of the PostgreSQL behind ``url`` (found by its socket), for diagnostics."""
    port = url.rsplit(":", 1)[1].split("/", 1)[0]
    for lock in Path(tempfile.gettempdir()).glob(f"pactum-pg-*/.s.PGSQL.{port}.lock"):
        log = lock.parent / "log"
        if log.exists():
            return log.read_text(errors="replace")[-3000:]
    return "(no server log found: the server is gone)"


def postgres_round(url: str, everyone: list[Connector], provider: Connector, consumers: list[Connector],
                   args: argparse.Namespace) -> float:
    """The throughput round again with every connector on its own database of one PostgreSQL server."""
    import psycopg

    storage = {}
    with psycopg.connect(url, autocommit=True) as conn:
        for c in everyone:
            conn.execute(f'CREATE DATABASE "{c.name}"')
            storage[c.name] = url.rsplit("/", 1)[0] + f"/{c.name}"
    try:
        launch(everyone, storage)
    except SystemExit:
        print("PostgreSQL server log:\n" + _postgres_log(url), flush=True)
        raise
    try:
        asset_id = publish(provider, approval="auto")
        time_to_agreement(consumers[0], provider, asset_id, 1)  # warm-up
        cpu0 = cpu_seconds(everyone)
        rate, done, failed = asyncio.run(
            throughput(consumers, provider, asset_id, args.concurrency, args.count, args.max_seconds))
        cpu_ms = (cpu_seconds(everyone) - cpu0) * 1000 / max(done, 1)
        print(f"throughput, PostgreSQL: {rate:.1f} finalized/s ({done} finalized, {failed} not), same set-up; "
              f"{cpu_ms:.0f} ms CPU per negotiation in the connector processes (PostgreSQL's own not counted)",
              flush=True)
    finally:
        stop_all(everyone)
    return rate


if __name__ == "__main__":
    main()
