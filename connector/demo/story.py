"""The supply-chain story ``pactum demo`` tells, step by step, against a running data space.

Every expectation is recorded with :meth:`Narrator.expect`: what was asked, what the parties decided and
why (the engine's explanation from the API's answer). When a step cannot be carried out because the API it
needs is missing or an earlier step did not produce what it needs, the outcome says so ("not possible")
and the demo fails - nothing is ever assumed to have worked.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import httpx

from connector.demo.clients import (
    DSP_PROTOCOL,
    EDC_CONTEXT,
    ApiError,
    AuthorityClient,
    ManagementClient,
    RunningCli,
    start_cli,
)
from connector.demo.errors import DemoError
from connector.demo.narrate import Narrator
from connector.demo.offer_terms import use_limit
from connector.demo.operator import held_credentials, request_all, store_credential
from connector.demo.space import REPO_ROOT, DataSpace

LIBRARY = REPO_ROOT / "policies" / "library"

# Which credentials each company may request from the authority (its directory entry).
CREDENTIALS = {
    "supplier": ["membership", "bpn", "framework-data-exchange-governance", "data-protection", "data-security"],
    "manufacturer": ["membership", "bpn", "framework-data-exchange-governance", "data-protection",
                     "data-security"],
    "logistics": ["membership", "bpn", "framework-data-exchange-governance", "data-protection"],
    "recycler": ["membership", "bpn", "framework-data-exchange-governance", "data-protection"],
}
CONSUMER_FACTS = {"xb:retention": "P30D"}  # what each consumer declares in its contract request
SPENDING_THREADS = 4  # the manufacturer spends the quality offer's N uses a few at a time (the count is atomic)
REVOCATION_CACHE_SECONDS = 12.0  # how long a connector may rely on a verified presentation or status list


@dataclass(frozen=True)
class DatasetSpec:
    """One dataset the supplier publishes: its file, its classification and its policies from the library."""

    asset_id: str
    title: str
    file: str
    media_type: str
    data_class: str
    categories: tuple[str, ...]
    access_policy: str
    contract_policy: str


DATASETS = (
    DatasetSpec("part-traceability", "Part traceability records", "traceability/parts.csv", "text/csv",
                "general", ("traceability",), "traceability-members", "traceability-members"),
    DatasetSpec("product-carbon-footprint", "Product carbon footprints (PACT 2.2)",
                "pcf/product-carbon-footprints.json", "application/json", "general", ("carbon-footprint",),
                "traceability-members", "carbon-footprint-purpose"),
    DatasetSpec("quality-measurements", "Production quality measurements", "quality/measurements.csv",
                "text/csv", "important", ("quality", "personal"), "traceability-members", "important-certified"),
    DatasetSpec("process-know-how", "Die-casting and sintering process parameters",
                "knowhow/process-parameters.json", "application/json", "core", ("core",), "traceability-members",
                "core-stays-home"),
)


@dataclass
class Memory:
    """What earlier steps produced that later steps need (agreement ids, transfer ids, credential ids)."""

    credentials: dict[str, dict[str, str]] = field(default_factory=dict)  # company -> type -> id
    catalogs: dict[str, dict[str, Any]] = field(default_factory=dict)  # company -> dataset id -> dataset
    agreements: dict[tuple[str, str], str] = field(default_factory=dict)  # (company, asset) -> agreement id
    transfers: dict[tuple[str, str], str] = field(default_factory=dict)  # (company, asset) -> transfer id
    published: list[str] = field(default_factory=list)
    uses: dict[tuple[str, str], int] = field(default_factory=dict)  # successful downloads per (company, asset)


def _why(exc: Exception) -> str:
    """The explanation an API gave for a refusal (problem detail, reasons), one line each."""
    if isinstance(exc, ApiError) and exc.missing:
        return f"{exc} - this build's API does not have that endpoint yet"
    if isinstance(exc, ApiError):
        lines = [str(exc.problem.get("detail") or exc)]
        for key in ("reasons", "explanation"):
            value = exc.problem.get(key)
            if isinstance(value, list):
                lines.extend(str(v) for v in value)
            elif isinstance(value, str) and value not in lines:
                lines.append(value)
        return "\n".join(lines)
    return str(exc)


class SupplyChainStory:
    """The story; :meth:`run` tells all chapters in order and leaves the outcomes in the narrator."""

    def __init__(self, space: DataSpace, narrator: Narrator) -> None:
        self.space = space
        self.n = narrator
        self.mem = Memory()
        self.authority = AuthorityClient(space.authority, verify=space.verify)
        self.mgmt = {key: ManagementClient(c, verify=space.verify) for key, c in space.companies.items()}
        self.data = httpx.Client(timeout=30, verify=space.verify)  # EDR pulls, with keep-alive
        self._uses_lock = threading.Lock()

    def close(self) -> None:
        self.authority.close()
        self.data.close()
        for client in self.mgmt.values():
            client.close()

    # -- the whole story -----------------------------------------------------------------------------------
    def run(self) -> None:
        chapters: list[Callable[[], None]] = [
            self.authority_opens, self.companies_join, self.supplier_publishes, self.manufacturer_browses,
            self.negotiations, self.transfers_and_use, self.count_spent, self.forged_credential,
            self.membership_revoked, self.delete_duty, self.audit_trails,
        ]
        try:
            for chapter in chapters:
                chapter()
        finally:
            self.close()

    # -- chapter 1 -----------------------------------------------------------------------------------------
    def authority_opens(self) -> None:
        a = self.space.authority
        self.n.chapter("1. The authority opens the data space",
                       f"Automotive Supply Chain Data Space, operated by the authority {a.did}\n"
                       f"issuer service, revocation status list, participant directory and trust list at {a.url}")
        self.n.ask("anyone", f"resolve the authority's DID {a.did}")
        try:
            doc = self.authority.did_document()
            actual = "resolvable" if doc.get("id") == a.did and doc.get("verificationMethod") else "wrong document"
            reason = f"{len(doc.get('verificationMethod', []))} verification method(s), id {doc.get('id')}"
        except DemoError as exc:
            actual, reason = "unreachable", str(exc)
        self.n.expect("authority DID document published", "resolvable", actual, reason)

        registered = []
        for key, company in self.space.companies.items():
            try:
                self.authority.register(company, CREDENTIALS[key])
                registered.append(key)
                self.n.say(f"directory: [bold]{company.name}[/bold] ({company.jurisdiction}, {company.bpn}) "
                           f"-> {company.did}")
            except DemoError as exc:
                self.n.say(f"[red]registration of {company.name} failed:[/red] {exc}")
        try:
            listed = {e.get("did") for e in self.authority.directory()}
            actual = f"{sum(c.did in listed for c in self.space.companies.values())} listed"
        except DemoError as exc:
            actual = f"directory unavailable: {exc}"
        self.n.expect("participants registered in the directory", f"{len(self.space.companies)} listed", actual,
                      "the directory is what the authority vouches for: DID, name, BPN, jurisdiction")

    # -- chapter 2 -----------------------------------------------------------------------------------------
    def companies_join(self) -> None:
        self.n.chapter("2. Each company starts its connector and fetches its credentials",
                       "Each connector created its wallet (encrypted keystore, did:web) on first start. The "
                       "operator now asks the authority for credentials over DCP; the authority delivers them "
                       "to the connector's credential service.")
        for key, company in self.space.companies.items():
            self.n.ask(company.name, f"publish DID document for {company.did}")
            try:
                doc = self.data.get(company.identity_url + "/.well-known/did.json", timeout=10).json()
                services = {s.get("type") for s in doc.get("service", [])}
                actual = "published" if doc.get("id") == company.did and "CredentialService" in services \
                    else "incomplete"
                reason = f"services: {', '.join(sorted(str(s) for s in services)) or 'none'}"
            except (httpx.HTTPError, ValueError) as exc:
                actual, reason = "unreachable", str(exc)
            self.n.expect(f"{key}: wallet and did:web document", "published", actual, reason)

        for key, company in self.space.companies.items():
            self.n.ask(company.name, f"credentials {', '.join(CREDENTIALS[key])} from the authority (DCP issuance)")
        outcomes = request_all(self.space.companies, CREDENTIALS, self.space.authority.url,
                               verify=self.space.verify)
        for key, company in self.space.companies.items():
            outcome = outcomes[key]
            reason = outcome.detail
            try:
                issued = {c["type"]: c["id"] for c in self.authority.issued(company.did) if not c.get("revoked")}
                self.mem.credentials[key] = issued
                reason += f"; holds {', '.join(sorted(issued))}"
            except DemoError as exc:
                reason += f"; cannot list issued credentials: {exc}"
            self.n.expect(f"{key}: credentials issued over DCP", "ISSUED", outcome.status, reason)

    # -- chapter 3 -----------------------------------------------------------------------------------------
    def supplier_publishes(self) -> None:
        supplier = self.space.company("supplier")
        self.n.chapter("3. The supplier publishes its catalog",
                       f"{supplier.name} publishes four datasets; each offer's policy is a file from "
                       "policies/library, published as written: the connector fills in its own DID and the "
                       "dataset for the library's placeholders when it makes the offer.")
        client = self.mgmt["supplier"]
        try:
            for spec in DATASETS:
                self._publish(client, spec)
                self.mem.published.append(spec.asset_id)
                self.n.say(f"published [bold]{spec.asset_id}[/bold] ({spec.data_class}): access "
                           f"{spec.access_policy}, contract {spec.contract_policy}")
            actual, reason = f"{len(self.mem.published)} offers", "assets, policy definitions, contract definitions"
        except ApiError as exc:
            actual = "not possible" if exc.missing else "refused"
            reason = _why(exc)
        except DemoError as exc:
            actual, reason = "failed", str(exc)
        self.n.expect("supplier publishes its catalog", f"{len(DATASETS)} offers", actual, reason)

    @staticmethod
    def _policy_text(name: str) -> str:
        """A library policy exactly as written (placeholders included: the supplier's connector fills them)."""
        path = LIBRARY / f"{name}.ttl"
        try:
            return path.read_text("utf-8")
        except OSError as exc:
            raise DemoError(f"cannot read library policy {path}: {exc.strerror or exc}") from exc

    def _publish(self, client: ManagementClient, spec: DatasetSpec) -> None:
        client.v3("POST", "/assets", {
            "@context": EDC_CONTEXT, "@id": spec.asset_id,
            "properties": {"name": spec.title, "contenttype": spec.media_type, "dataClass": spec.data_class,
                           "category": list(spec.categories), "jurisdiction": "DE"},
            "dataAddress": {"type": "File", "source": "supplier-files", "path": spec.file},
        })
        for role, name in (("access", spec.access_policy), ("contract", spec.contract_policy)):
            policy_id = f"{spec.asset_id}-{role}"
            client.v3("POST", "/policydefinitions", content=self._policy_text(name).encode("utf-8"),
                      params={"id": policy_id}, headers={"Content-Type": "text/turtle"})
        client.v3("POST", "/contractdefinitions", {
            "@context": EDC_CONTEXT, "@id": f"{spec.asset_id}-offer",
            "accessPolicyId": f"{spec.asset_id}-access", "contractPolicyId": f"{spec.asset_id}-contract",
            "assetsSelector": [{"operandLeft": "https://w3id.org/edc/v0.0.1/ns/id", "operator": "=",
                                "operandRight": spec.asset_id}]})

    # -- chapter 4 -----------------------------------------------------------------------------------------
    def manufacturer_browses(self) -> None:
        supplier = self.space.company("supplier")
        self.n.chapter("4. Who sees what in the supplier's catalog",
                       "Each company asks the supplier's connector for its catalog over DSP; the supplier "
                       "evaluates the access policies against the caller's verified credentials.")
        everything = [spec.asset_id for spec in DATASETS]
        expected_views = {"manufacturer": everything, "logistics": everything, "recycler": everything}
        for key, expected in expected_views.items():
            company = self.space.company(key)
            self.n.ask(company.name, f"the catalog of {supplier.name}")
            try:
                catalog = self.mgmt[key].v3("POST", "/catalog/request", {
                    "@context": EDC_CONTEXT, "counterPartyAddress": supplier.protocol_url,
                    "counterPartyId": supplier.did, "protocol": DSP_PROTOCOL})
                datasets = _datasets(catalog)
                self.mem.catalogs[key] = datasets
                actual = ", ".join(sorted(datasets)) or "nothing"
                reason = f"{len(datasets)} dataset(s) offered to {company.jurisdiction}"
            except ApiError as exc:
                actual, reason = ("not possible" if exc.missing else "refused"), _why(exc)
            except DemoError as exc:
                actual, reason = "failed", str(exc)
            self.n.expect(f"{key} sees the supplier's catalog", ", ".join(sorted(expected)), actual, reason)

    # -- helpers for negotiation, transfer and data -------------------------------------------------------------
    def _attempt(self, step: str, expected: str, action: Callable[[], tuple[str, str]],
                 needs: list[Any] | None = None, needs_what: str = "") -> str:
        """Run one step: ``action`` returns (actual, reason); a missing prerequisite or endpoint is "not possible"."""
        if needs is not None and not all(needs):
            self.n.not_possible(step, expected, f"needs {needs_what}, which an earlier step did not produce")
            return "not possible"
        try:
            actual, reason = action()
        except ApiError as exc:
            actual, reason = ("not possible" if exc.missing else f"error {exc.http_status}"), _why(exc)
        except DemoError as exc:
            actual, reason = "error", str(exc)
        self.n.expect(step, expected, actual, reason)
        return actual

    def _offer(self, seen_by: str, asset_id: str) -> dict[str, Any] | None:
        dataset = self.mem.catalogs.get(seen_by, {}).get(asset_id)
        if not dataset:
            return None
        policies = dataset.get("hasPolicy") or dataset.get("odrl:hasPolicy") or []
        policies = policies if isinstance(policies, list) else [policies]
        return dict(policies[0]) if policies else None

    def _negotiate(self, consumer: str, asset_id: str, *, offer_seen_by: str | None = None,
                   facts: dict[str, Any] | None = None, because: str | tuple[str, ...] = "") -> tuple[str, str]:
        """Start a negotiation through the consumer's management API and wait for its final state.

        A refusal counts as the expected one only when the explanation names ``because`` (one of them, if
        several) and the policy was decided (not "indeterminate" for lack of facts): refusing for the wrong
        reason is not the story.
        """
        supplier = self.space.company("supplier")
        offer = self._offer(offer_seen_by or consumer, asset_id)
        if offer is None:
            raise DemoError(f"{asset_id} is not in the catalog {offer_seen_by or consumer} received")
        offer.setdefault("assigner", supplier.did)
        offer.setdefault("target", asset_id)
        body: dict[str, Any] = {"@context": EDC_CONTEXT, "@type": "ContractRequest",
                                "counterPartyAddress": supplier.protocol_url, "counterPartyId": supplier.did,
                                "protocol": DSP_PROTOCOL, "policy": offer}
        if facts:
            body["facts"] = facts
        client = self.mgmt[consumer]
        started = client.v3("POST", "/contractnegotiations", body)
        negotiation_id = str(started["@id"])

        def final() -> dict[str, Any] | None:
            current = client.v3("GET", f"/contractnegotiations/{negotiation_id}")
            return current if current.get("state") in ("FINALIZED", "TERMINATED") else None

        result = wait_for(final, timeout=20)
        if not result:
            state = client.v3("GET", f"/contractnegotiations/{negotiation_id}").get("state")
            return f"stuck in {state}", f"negotiation {negotiation_id} did not finish in 20 s"
        if result["state"] == "FINALIZED":
            agreement = str(result.get("contractAgreementId"))
            self.mem.agreements[(consumer, asset_id)] = agreement
            return "FINALIZED", f"agreement {agreement}"
        reason = str(result.get("errorDetail") or result.get("errorCode") or "no reason given")
        reasons = (because,) if isinstance(because, str) else because
        if any(reasons) and (not any(r and r in reason for r in reasons) or "indeterminate" in reason):
            return "TERMINATED for another reason", reason
        return "TERMINATED", reason

    def _transfer(self, consumer: str, asset_id: str, *, purpose: str | None = None) -> tuple[str, str]:
        """Start an HttpData-PULL transfer for the agreement on ``asset_id`` and wait until it starts or ends."""
        supplier = self.space.company("supplier")
        agreement = self.mem.agreements[(consumer, asset_id)]
        body: dict[str, Any] = {"@context": EDC_CONTEXT, "@type": "TransferRequest",
                                "counterPartyAddress": supplier.protocol_url, "counterPartyId": supplier.did,
                                "contractId": agreement, "transferType": "HttpData-PULL", "protocol": DSP_PROTOCOL}
        if purpose:
            body["purpose"] = purpose
        client = self.mgmt[consumer]
        started = client.v3("POST", "/transferprocesses", body)
        transfer_id = str(started["@id"])

        def settled() -> dict[str, Any] | None:
            current = client.v3("GET", f"/transferprocesses/{transfer_id}")
            return current if current.get("state") in ("STARTED", "TERMINATED", "COMPLETED", "SUSPENDED") else None

        result = wait_for(settled, timeout=20)
        if not result:
            return "stuck", f"transfer {transfer_id} did not start in 20 s"
        if result["state"] == "STARTED":
            self.mem.transfers[(consumer, asset_id)] = transfer_id
            return "STARTED", f"transfer {transfer_id}"
        return str(result["state"]), str(result.get("errorDetail") or result.get("errorCode") or "no reason given")

    def _pull(self, consumer: str, asset_id: str, *,
              address: dict[str, Any] | None = None) -> tuple[int, bytes, str]:
        """Fetch the data through the EDR: (HTTP status, body, reason from a refusal)."""
        transfer_id = self.mem.transfers[(consumer, asset_id)]
        address = address or self._data_address(consumer, transfer_id)
        endpoint, token = address.get("endpoint"), address.get("authorization")
        if not endpoint or not token:
            raise DemoError(f"the EDR of transfer {transfer_id} has no endpoint or token")
        try:
            answer = self.data.get(endpoint, headers={"Authorization": token})
        except httpx.HTTPError as exc:
            raise DemoError(f"GET {endpoint} failed: {exc}") from exc
        reason = ""
        if answer.is_success:
            with self._uses_lock:
                self.mem.uses[(consumer, asset_id)] = self.mem.uses.get((consumer, asset_id), 0) + 1
        if not answer.is_success:
            try:
                problem = answer.json()
                reason = _why(ApiError("GET", endpoint, answer.status_code, problem))
            except ValueError:
                reason = answer.text[:300]
        return answer.status_code, answer.content, reason

    def _connector_pull(self, consumer: str, asset_id: str) -> dict[str, Any]:
        """The consumer's connector fetches through the EDR itself: it keeps the copy (so it can honour a delete
        duty), hashes it, signs a receipt and sends it to the provider."""
        transfer_id = self.mem.transfers[(consumer, asset_id)]
        self._data_address(consumer, transfer_id)  # the EDR is there
        pulled = dict(self.mgmt[consumer].v3("POST", f"/edrs/{transfer_id}/pull", {"@context": EDC_CONTEXT}))
        self.mem.uses[(consumer, asset_id)] = self.mem.uses.get((consumer, asset_id), 0) + 1
        return pulled

    def _data_address(self, consumer: str, transfer_id: str) -> dict[str, Any]:
        """The EDR's data address; the EDR is stored right after the transfer starts, so allow it a moment."""
        deadline = time.monotonic() + 5.0
        while True:
            try:
                return dict(self.mgmt[consumer].v3("GET", f"/edrs/{transfer_id}/dataaddress"))
            except ApiError as exc:
                if exc.http_status != 404 or exc.missing or time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def _source(self, relative: str) -> bytes:
        path = self.space.workdir / "data" / "supplier" / relative
        if not path.exists():  # the compose launcher keeps the generated data in the shared volume
            matches = list(self.space.workdir.glob(f"volumes/*/supplier/{relative}"))
            path = matches[0] if matches else path
        try:
            return path.read_bytes()
        except OSError as exc:
            raise DemoError(f"cannot read the supplier's source file {path}: {exc.strerror or exc}") from exc

    # -- chapter 5 -----------------------------------------------------------------------------------------
    def negotiations(self) -> None:
        self.n.chapter("5. Negotiations: agreements and refusals",
                       "Each consumer asks for an offer from the catalog it received; the supplier evaluates the "
                       "contract policy against the consumer's verified credentials and answers with an agreement "
                       "or a termination that carries the policy engine's explanation.")
        plan = [
            ("manufacturer", "part-traceability", "FINALIZED", "", "members may use traceability data"),
            ("manufacturer", "product-carbon-footprint", "FINALIZED", "", "members, purpose checked on use"),
            ("manufacturer", "quality-measurements", "FINALIZED", "",
             "certified (DataSecurityCertification) and Japan is an adequate jurisdiction"),
            ("recycler", "part-traceability", "FINALIZED", "", "members may use traceability data"),
            ("logistics", "quality-measurements", "TERMINATED", "certification",
             "uncertified recipient in a jurisdiction without adequacy"),
            ("manufacturer", "process-know-how", "TERMINATED", "negativeList", "core data must not leave Germany"),
        ]
        # the companies negotiate at the same time (as they would); outcomes are told in order
        with ThreadPoolExecutor(max_workers=len(plan)) as pool:
            running = []
            for consumer, asset_id, expected, because, why in plan:
                self.n.ask(self.space.company(consumer).name, f"a contract for {asset_id} ({why})")
                future = pool.submit(self._negotiate, consumer, asset_id, facts=CONSUMER_FACTS, because=because) \
                    if self._offer(consumer, asset_id) else None
                running.append((consumer, asset_id, expected, future))
            for consumer, asset_id, expected, future in running:
                label = "agreement" if expected == "FINALIZED" else "refusal"
                self._attempt(f"{consumer} negotiates {asset_id}: {label}", expected,
                              future.result if future is not None else (lambda: ("", "")),
                              needs=[future], needs_what=f"the offer for {asset_id} from the catalog step")

    # -- chapter 6 -----------------------------------------------------------------------------------------
    def transfers_and_use(self) -> None:
        self.n.chapter("6. Transfers and use",
                       "The consumer starts an HttpData-PULL transfer, gets an EDR (endpoint + signed token) and "
                       "pulls the data; the supplier's data plane re-checks the agreement on every request.")
        m = self.space.company("manufacturer")
        self.n.ask(m.name, "transfer and download the part traceability records")
        self._attempt("manufacturer transfers part-traceability", "STARTED",
                      lambda: self._transfer("manufacturer", "part-traceability"),
                      needs=[self.mem.agreements.get(("manufacturer", "part-traceability"))],
                      needs_what="the traceability agreement")

        def download() -> tuple[str, str]:
            status, body, reason = self._pull("manufacturer", "part-traceability")
            if status != 200:
                return f"refused {status}", reason
            original = self._source("traceability/parts.csv")
            digest = hashlib.sha256(body).hexdigest()
            same = digest == hashlib.sha256(original).hexdigest()
            return ("identical" if same else "different"), f"{len(body)} bytes, sha256 {digest[:16]}"

        self._attempt("manufacturer receives the traceability data", "identical", download,
                      needs=[self.mem.transfers.get(("manufacturer", "part-traceability"))],
                      needs_what="a started traceability transfer")

        for purpose, expected in (("marketing", "TERMINATED"), ("pcf-calculation", "STARTED")):
            self.n.ask(m.name, f"product carbon footprints for the purpose {purpose!r}")
            self._attempt(f"carbon footprints for purpose {purpose}", expected,
                          partial(self._transfer, "manufacturer", "product-carbon-footprint", purpose=purpose),
                          needs=[self.mem.agreements.get(("manufacturer", "product-carbon-footprint"))],
                          needs_what="the carbon-footprint agreement")

        self.n.ask(m.name, "transfer the production quality measurements (personal fields must be anonymised)")
        self._attempt("manufacturer transfers quality-measurements", "STARTED",
                      lambda: self._transfer("manufacturer", "quality-measurements"),
                      needs=[self.mem.agreements.get(("manufacturer", "quality-measurements"))],
                      needs_what="the quality agreement")

        def anonymised() -> tuple[str, str]:
            status, body, reason = self._pull("manufacturer", "quality-measurements")
            if status != 200:
                return f"refused {status}", reason
            text = body.decode("utf-8", errors="replace")
            leaked = [marker for marker in ("@schwarzwald-praezision.example", "+49 711 ") if marker in text]
            return ("anonymised" if not leaked else "personal data leaked"), \
                f"{len(body)} bytes; name, email and phone {'masked' if not leaked else 'present: ' + str(leaked)}"

        self._attempt("quality data arrives anonymised (use 1)", "anonymised", anonymised,
                      needs=[self.mem.transfers.get(("manufacturer", "quality-measurements"))],
                      needs_what="a started quality transfer")

        def keep_copy() -> tuple[str, str]:
            pulled = self._connector_pull("manufacturer", "quality-measurements")
            return "kept", f"{pulled.get('size')} bytes at {pulled.get('location')}; receipt signed and sent"

        self.n.ask(m.name, "its connector to keep a copy of the quality data (use 2)")
        self._attempt("manufacturer's connector keeps a copy (use 2)", "kept", keep_copy,
                      needs=[self.mem.transfers.get(("manufacturer", "quality-measurements"))],
                      needs_what="a started quality transfer")

    # -- chapter 7 -----------------------------------------------------------------------------------------
    def count_spent(self) -> None:
        key = ("manufacturer", "quality-measurements")
        offer = self._offer(*key)
        limit = use_limit(offer) if offer else None
        self.n.chapter("7. Use after the count is spent",
                       f"The quality offer the manufacturer received allows at most {limit} uses (the library "
                       "policy's count, as published); each download is one use. The manufacturer spends every "
                       "one of them, then asks once more.")
        if limit is None:
            self.n.not_possible("use N+1 of quality data refused", "refused",
                                "the quality offer in the manufacturer's catalog states no use count")
            return
        if not self.mem.transfers.get(key):
            self.n.not_possible(f"use {limit + 1} of quality data refused", "refused",
                                "needs a started quality transfer, which an earlier step did not produce")
            return
        first = self.mem.uses.get(key, 0) + 1
        started = time.monotonic()
        try:
            statuses = self._spend(key, limit - self.mem.uses.get(key, 0))
        except DemoError as exc:
            self.n.expect(f"use {limit + 1} of quality data refused", "refused", "error", str(exc))
            return
        tally = ", ".join(f"{count} x HTTP {status}" for status, count in sorted(_tally(statuses).items()))
        self.n.say(f"uses {first}..{limit}: {tally or '-'} in {time.monotonic() - started:.1f} s")
        self.n.ask(self.space.company("manufacturer").name, f"use {limit + 1} of the quality data")

        def over() -> tuple[str, str]:
            status, _body, reason = self._pull(*key)
            if self.mem.uses.get(key, 0) == limit and all(s == 200 for s in statuses) \
                    and status in (403, 409, 410, 429):
                return "refused", reason
            return f"{self.mem.uses.get(key, 0)} uses granted, use {limit + 1} answered {status}", reason

        self._attempt(f"use {limit + 1} of quality data refused", "refused", over)

    def _spend(self, key: tuple[str, str], count: int) -> list[int]:
        """Download ``count`` times through the EDR, several at once; the HTTP status of each download."""
        if count <= 0:
            return []
        address = self._data_address(key[0], self.mem.transfers[key])
        with ThreadPoolExecutor(max_workers=min(SPENDING_THREADS, count)) as pool:
            return list(pool.map(lambda _: self._pull(*key, address=address)[0], range(count)))

    # -- chapter 8 -----------------------------------------------------------------------------------------
    def forged_credential(self) -> None:
        logistics = self.space.company("logistics")
        self.n.chapter("8. A forged credential",
                       f"{logistics.name} edits one of its genuine credentials to claim DataSecurityCertification, "
                       "stores it in its wallet and asks for the quality data again.")

        def forge_and_ask() -> tuple[str, str]:
            genuine = [payload for _id, types, payload in held_credentials(logistics)
                       if "DataProtectionCertification" in types and isinstance(payload, str)]
            if not genuine:
                raise DemoError("the logistics wallet holds no DataProtectionCertification JWT to forge from")
            forged = forge_credential(genuine[0], "DataSecurityCertification")
            (self.space.workdir / "forged-data-security.jwt").write_text(forged + "\n", "utf-8")
            try:
                stored = store_credential(logistics, forged)
                self.n.say(f"the logistics wallet now holds the forged credential {stored}")
            except DemoError as exc:
                self.n.say(f"the wallet itself refused the forged credential ({exc}); asking anyway")
            # caught by the credential's signature when the supplier verifies the presentation afresh, or by the
            # policy (no genuine DataSecurityCertification) while it relies on claims it verified moments ago
            return self._negotiate("logistics", "quality-measurements", facts=CONSUMER_FACTS,
                                   because=("signature", "certification"))

        self._attempt("forged certification refused", "TERMINATED", forge_and_ask,
                      needs=[self._offer("logistics", "quality-measurements")],
                      needs_what="the quality offer in the logistics firm's catalog")

    # -- chapter 9 -----------------------------------------------------------------------------------------
    def membership_revoked(self) -> None:
        recycler = self.space.company("recycler")
        self.n.chapter("9. Membership revoked mid-agreement",
                       f"{recycler.name} has a traceability agreement and a running transfer. The authority "
                       "revokes its membership; the supplier's policy monitor sees the status list change and "
                       "suspends the running transfer.")
        key = ("recycler", "part-traceability")
        self._attempt("recycler transfers part-traceability", "STARTED", lambda: self._transfer(*key),
                      needs=[self.mem.agreements.get(key)], needs_what="the recycler's traceability agreement")

        def revoke() -> tuple[str, str]:
            membership = self.mem.credentials.get("recycler", {}).get("MembershipCredential")
            if not membership:
                raise DemoError("the authority issued no membership credential to the recycler")
            answer = self.authority.revoke(membership)
            return ("revoked" if answer.get("revoked") else "not revoked"), \
                f"{membership}: bit {answer.get('statusListIndex')} of {answer.get('statusList')}"

        revoked = self._attempt("authority revokes the recycler's membership", "revoked", revoke,
                                needs=[self.mem.transfers.get(key)], needs_what="a started recycler transfer")

        def pull_after() -> tuple[str, str]:
            status, _body, reason = self._pull(*key)
            return ("refused" if status in (401, 403, 409, 410) else f"answered {status}"), reason

        self._attempt("data refused after revocation", "refused", pull_after,
                      needs=[revoked == "revoked"], needs_what="the revocation")

        def suspended() -> tuple[str, str]:
            supplier = self.mgmt["supplier"]
            transfer_id = self.mem.transfers[key]

            def provider_side() -> dict[str, Any] | None:
                rows = supplier.v3("POST", "/transferprocesses/request", {"@context": EDC_CONTEXT,
                                                                          "@type": "QuerySpec"})
                for row in rows:
                    if transfer_id in (row.get("@id"), row.get("consumerPid"), row.get("correlationId")):
                        return row if row.get("state") in ("SUSPENDED", "TERMINATED") else None
                return None

            row = wait_for(provider_side, timeout=10, interval=0.5)
            if not row:
                return "still running", "the supplier's transfer did not leave STARTED within 10 s"
            return str(row.get("state")), str(row.get("errorDetail") or row.get("errorCode") or "")

        self._attempt("revocation suspends the running transfer", "SUSPENDED", suspended,
                      needs=[revoked == "revoked"], needs_what="the revocation")

        def catalog_after() -> tuple[str, str]:
            supplier = self.space.company("supplier")
            refusal: list[str] = []

            def visible() -> list[str]:
                try:
                    catalog = self.mgmt["recycler"].v3("POST", "/catalog/request", {
                        "@context": EDC_CONTEXT, "counterPartyAddress": supplier.protocol_url,
                        "counterPartyId": supplier.did, "protocol": DSP_PROTOCOL})
                except ApiError as exc:
                    if "revoked" not in str(exc):
                        raise
                    refusal.append(str(exc))  # the supplier refuses a caller whose presentation is revoked
                    return []
                return sorted(_datasets(catalog))

            # the supplier may serve verified claims from its short cache; ask again until it has re-checked
            seen = visible()
            deadline = time.monotonic() + REVOCATION_CACHE_SECONDS
            while seen and time.monotonic() < deadline:
                time.sleep(1.0)
                seen = visible()
            if refusal:
                return "nothing", f"the supplier refuses the revoked member outright: {refusal[-1]}"
            return (", ".join(seen) or "nothing"), "membership is what every access policy asks for"

        self._attempt("revoked member sees the catalog", "nothing", catalog_after,
                      needs=[revoked == "revoked"], needs_what="the revocation")

    # -- chapter 10 ----------------------------------------------------------------------------------------
    def delete_duty(self) -> None:
        m = self.space.company("manufacturer")
        self.n.chapter("10. The consumer's delete duty",
                       f"The quality agreement obliges {m.name} to delete its copy; its connector deletes the "
                       "copy and sends the supplier a signed fulfilment report.")
        key = ("manufacturer", "quality-measurements")

        def fulfil() -> tuple[str, str]:
            transfer_id = self.mem.transfers[key]
            answer = self.mgmt["manufacturer"].v3("POST", f"/edrs/{transfer_id}/delete", {"@context": EDC_CONTEXT})
            return str(answer.get("state", "unknown")).upper(), json.dumps(answer)[:300]

        self._attempt("delete duty fulfilled and reported", "FULFILLED", fulfil,
                      needs=[self.mem.transfers.get(key)], needs_what="a started quality transfer")

    # -- chapter 11 ----------------------------------------------------------------------------------------
    def audit_trails(self) -> None:
        self.n.chapter("11. Audit trails and receipts",
                       "Both connectors re-verify their hash-chained audit trails and signed checkpoints; the "
                       "consumer's signed receipt of each download matches what the supplier sent.")
        keys = ("supplier", "manufacturer")
        for key in keys:
            self.n.ask(f"{self.space.company(key).name}'s operator", "pactum connector audit verify")
        verifying = {key: self._operator_cli(key, ["connector", "audit", "verify", "--json"]) for key in keys}
        for key in keys:
            self._attempt(f"{key} audit trail verifies", "verified", partial(self._verify_audit, verifying[key]))

        def receipts() -> tuple[str, str]:
            agreement = self.mem.agreements[("manufacturer", "part-traceability")]
            # the consumer's connector fetches through the EDR itself: it hashes, signs a receipt, sends it over
            pulled = self._connector_pull("manufacturer", "part-traceability")
            self.n.say(f"manufacturer's connector received {pulled.get('size')} bytes, digest "
                       f"{str(pulled.get('digest'))[:30]}")
            exports = [self._operator_cli(k, ["connector", "audit", "export"]) for k in ("supplier", "manufacturer")]
            sides = [{(r.get("digest"), r.get("size")) for r in self._audit_export(running)
                      if r.get("record") == "receipt" and r.get("agreementId") == agreement}
                     for running in exports]
            if sides[0] and sides[0] == sides[1]:
                digest, size = sorted(sides[0], key=str)[0]
                return "matched", f"{len(sides[0])} receipt(s) on both sides, e.g. {size} bytes {str(digest)[:30]}"
            return "mismatch", f"supplier {sorted(sides[0], key=str)}, manufacturer {sorted(sides[1], key=str)}"

        self._attempt("receipts match on both sides", "matched", receipts,
                      needs=[self.mem.transfers.get(("manufacturer", "part-traceability"))],
                      needs_what="the traceability transfer")

    def _operator_cli(self, key: str, args: list[str]) -> RunningCli:
        """Start one of the operator's ``pactum`` commands against the company's configuration."""
        company = self.space.company(key)
        return start_cli([*args, "--config", str(company.config_path)], env=company.env)

    @staticmethod
    def _verify_audit(running: RunningCli) -> tuple[str, str]:
        result = running.result()
        if not result.stdout.strip().startswith("{"):
            return "not possible", (result.stderr or result.stdout).strip()[-400:]
        report = result.json()
        return ("verified" if report.get("ok") and result.code == 0 else "broken"), \
            f"{report.get('entries')} entries, {report.get('checkpoints')} signed checkpoints, " \
            f"{report.get('receipts')} receipts; problems: {report.get('problems') or 'none'}"

    @staticmethod
    def _audit_export(running: RunningCli) -> list[dict[str, Any]]:
        result = running.result()
        if result.code != 0:
            raise DemoError(f"pactum connector audit export failed: {result.stderr.strip()[-300:]}")
        return [json.loads(line) for line in result.stdout.splitlines() if line.strip().startswith("{")]

def _datasets(catalog: Any) -> dict[str, Any]:
    """Dataset id -> dataset from a (compacted) DCAT catalog answer."""
    if not isinstance(catalog, dict):
        return {}
    raw = catalog.get("dataset", catalog.get("dcat:dataset", []))
    items = raw if isinstance(raw, list) else [raw]
    out = {}
    for item in items:
        if isinstance(item, dict):
            ident = item.get("@id") or item.get("id")
            if ident:
                out[str(ident)] = item
    return out


def _tally(statuses: list[int]) -> dict[int, int]:
    counts: dict[int, int] = {}
    for status in statuses:
        counts[status] = counts.get(status, 0) + 1
    return counts


def forge_credential(genuine_jwt: str, new_type: str) -> str:
    """A forged credential: a genuine JWT whose payload claims another type, with the original signature.

    Only the demo's "forged credential" step uses it, to show that verification catches tampering.
    """
    try:
        header, payload, signature = genuine_jwt.split(".")
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except ValueError as exc:
        raise DemoError("cannot forge: not a compact JWT") from exc
    body = claims.get("vc", claims)
    types = [t for t in body.get("type", []) if t == "VerifiableCredential"] + [new_type]
    body["type"] = types
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{header}.{forged}.{signature}"


def wait_for(predicate: Callable[[], Any], *, timeout: float = 15.0, interval: float = 0.2) -> Any:
    """Poll until ``predicate`` returns something truthy; returns it (or the last falsy value)."""
    deadline = time.monotonic() + timeout
    value = predicate()
    while not value and time.monotonic() < deadline:
        time.sleep(interval)
        value = predicate()
    return value
