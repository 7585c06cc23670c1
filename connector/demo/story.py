"""The supply-chain story ``pactum demo`` tells, step by step, against a running data space.

Every expectation is recorded with :meth:`Narrator.expect`: what was asked, what the parties decided and
why (the engine's explanation from the API's answer). When a step cannot be carried out because the API it
needs is missing or an earlier step did not produce what it needs, the outcome says so ("not possible")
and the demo fails - nothing is ever assumed to have worked.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from connector.demo.clients import (
    DSP_PROTOCOL,
    EDC_CONTEXT,
    ApiError,
    AuthorityClient,
    ManagementClient,
    start_cli,
)
from connector.demo.errors import DemoError
from connector.demo.narrate import Narrator
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
DEMO_MAX_USES = 3  # the supplier sets important-certified's "at most N uses" to 3 so the demo can spend it


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
                "knowhow/process-parameters.json", "application/json", "core", ("core",), "core-stays-home",
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
        self.authority = AuthorityClient(space.authority)
        self.mgmt = {key: ManagementClient(c) for key, c in space.companies.items()}

    def close(self) -> None:
        self.authority.close()
        for client in self.mgmt.values():
            client.close()

    # -- the whole story -----------------------------------------------------------------------------------
    def run(self) -> None:
        chapters: list[Callable[[], None]] = [
            self.authority_opens, self.companies_join, self.supplier_publishes, self.manufacturer_browses,
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
                doc = httpx.get(company.identity_url + "/.well-known/did.json", timeout=10).json()
                services = {s.get("type") for s in doc.get("service", [])}
                actual = "published" if doc.get("id") == company.did and "CredentialService" in services \
                    else "incomplete"
                reason = f"services: {', '.join(sorted(str(s) for s in services)) or 'none'}"
            except (httpx.HTTPError, ValueError) as exc:
                actual, reason = "unreachable", str(exc)
            self.n.expect(f"{key}: wallet and did:web document", "published", actual, reason)

        requests = {}
        for key, company in self.space.companies.items():
            wanted = CREDENTIALS[key]
            self.n.ask(company.name, f"credentials {', '.join(wanted)} from the authority")
            args = ["identity", "request", "--issuer", self.space.authority.url, "--dir", str(company.wallet_dir),
                    "--wait", "20", "--json"]
            for credential in wanted:
                args += ["--credential", credential]
            # the four operators work at the same time, as they would in reality
            requests[key] = start_cli(args, env={"PACTUM_WALLET_PASSPHRASE": company.wallet_passphrase})
        for key, company in self.space.companies.items():
            result = requests[key].result()
            if result.code == 0:
                status = str(result.json().get("status"))
                reason = f"request {result.json().get('location')}"
            else:
                status, reason = "failed", (result.stderr or result.stdout).strip()[-400:]
            try:
                issued = {c["type"]: c["id"] for c in self.authority.issued(company.did) if not c.get("revoked")}
                self.mem.credentials[key] = issued
                reason += f"; holds {', '.join(sorted(issued))}"
            except DemoError as exc:
                reason += f"; cannot list issued credentials: {exc}"
            self.n.expect(f"{key}: credentials issued over DCP", "ISSUED", status, reason)

    # -- chapter 3 -----------------------------------------------------------------------------------------
    def supplier_publishes(self) -> None:
        supplier = self.space.company("supplier")
        self.n.chapter("3. The supplier publishes its catalog",
                       f"{supplier.name} publishes four datasets; each offer's policy is a file from "
                       "policies/library (the quality policy with N = "
                       f"{DEMO_MAX_USES} uses so the demo can spend it).")
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

    def _policy_text(self, name: str) -> str:
        path = LIBRARY / f"{name}.ttl"
        try:
            text = path.read_text("utf-8")
        except OSError as exc:
            raise DemoError(f"cannot read library policy {path}: {exc.strerror or exc}") from exc
        if name == "important-certified":
            text = text.replace('odrl:rightOperand "1000"^^xsd:integer', f'odrl:rightOperand "{DEMO_MAX_USES}"'
                                '^^xsd:integer')
        return text

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
        expected_views = {
            "manufacturer": ["part-traceability", "product-carbon-footprint", "quality-measurements"],
            "logistics": ["part-traceability", "product-carbon-footprint", "quality-measurements"],
            "recycler": ["part-traceability", "process-know-how", "product-carbon-footprint",
                         "quality-measurements"],
        }
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
