"""Deterministic, realistic data for the demo's datasets (CSV and JSON, a few MB), generated on demand.

Why generated and not committed: a few MB of synthetic records would bloat the repository; a seed makes
every run (and every machine) produce byte-identical files, so digests in receipts are reproducible.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from connector.demo.errors import DemoError

DEFAULT_SEED = 20250101
_EPOCH = datetime(2025, 1, 6, 6, 0, tzinfo=UTC)  # fixed: the data must not depend on today's date

_PLANTS = [("DE-STR-01", "Stuttgart", "DE"), ("DE-RGB-02", "Regensburg", "DE"), ("DE-DRS-03", "Dresden", "DE")]
_PARTS = [
    ("BRK-CAL-4410", "brake caliper, aluminium, front axle", 2.91),
    ("BRK-DSC-2203", "ventilated brake disc 330 mm", 8.40),
    ("STR-RCK-7710", "electric power steering rack", 6.12),
    ("INV-SIC-800V", "800 V silicon-carbide traction inverter", 9.75),
    ("BAT-MOD-96S", "battery module 96S, NMC 811", 31.20),
    ("SNS-ABS-0042", "wheel-speed sensor, Hall effect", 0.08),
    ("HSG-GBX-3301", "gearbox housing, die-cast", 14.60),
    ("CTL-ECU-5521", "brake control ECU", 0.62),
]
_FIRST = ["Anna", "Lukas", "Mia", "Jonas", "Lea", "Felix", "Emma", "Paul", "Sofia", "Noah", "Hannah", "Elias"]
_LAST = ["Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker", "Hoffmann", "Koch"]
_CHARACTERISTICS = [
    ("bore_diameter_mm", 42.000, 0.012), ("surface_roughness_ra_um", 0.80, 0.05),
    ("flatness_mm", 0.020, 0.004), ("hardness_hrc", 58.0, 1.1), ("torque_nm", 120.0, 2.5),
    ("leak_rate_ml_min", 0.30, 0.06),
]


@dataclass(frozen=True)
class GeneratedFile:
    """One file the generator wrote, with what the catalog needs to describe it."""

    dataset: str
    path: Path
    media_type: str
    size: int
    sha256: str


def _write(path: Path, text: str) -> tuple[int, str]:
    data = text.encode("utf-8")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return len(data), hashlib.sha256(data).hexdigest()


def _csv(rows: list[list[object]], header: list[str]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def traceability_records(rng: random.Random, count: int) -> str:
    """Part traceability (CSV): serial, batch, plant, parent assembly - the 'general, members only' set."""
    rows: list[list[object]] = []
    for i in range(count):
        part, description, _ = _PARTS[rng.randrange(len(_PARTS))]
        plant, city, country = _PLANTS[rng.randrange(len(_PLANTS))]
        produced = _EPOCH + timedelta(minutes=7 * i + rng.randrange(7))
        batch = f"B{produced:%y%j}-{rng.randrange(1, 40):02d}"
        rows.append([f"urn:uuid:{_uuid(rng)}", f"{part}-{i:07d}", part, description, batch, plant, city, country,
                     _iso(produced), f"VIN-WVW{rng.randrange(10**9):09d}", rng.choice(["OK", "OK", "OK", "REWORK"])])
    return _csv(rows, ["catenaXId", "serial_number", "part_number", "description", "batch", "plant_id", "city",
                       "country", "manufactured_at", "parent_assembly", "status"])


def carbon_footprints(rng: random.Random) -> str:
    """Product carbon footprints (JSON, PACT-shaped) - 'general, purpose-bound'."""
    footprints = []
    for part, description, base in _PARTS:
        for year in (2023, 2024):
            fossil = round(base * rng.uniform(0.85, 1.15), 3)
            footprints.append({
                "id": f"urn:uuid:{_uuid(rng)}", "specVersion": "2.2.0", "version": 1,
                "created": _iso(_EPOCH - timedelta(days=rng.randrange(30, 300))), "status": "Active",
                "companyName": "Schwarzwald Präzisionsteile GmbH", "productIds": [f"urn:pactum:part:{part}"],
                "productDescription": description, "productCategoryCpc": "4931",
                "pcf": {"declaredUnit": "piece", "unitaryProductAmount": "1", "pCfExcludingBiogenic": str(fossil),
                        "fossilGhgEmissions": str(fossil), "biogenicCarbonContent": "0",
                        "referencePeriodStart": f"{year}-01-01T00:00:00Z",
                        "referencePeriodEnd": f"{year + 1}-01-01T00:00:00Z",
                        "geographyCountry": "DE", "characterizationFactors": "AR6",
                        "primaryDataShare": round(rng.uniform(35, 92), 1),
                        "boundaryProcessesDescription": "cradle-to-gate incl. inbound logistics"},
            })
    return json.dumps({"data": footprints}, ensure_ascii=False, indent=1)


# Each download of the quality data is one use, and the demo spends every use the library policy grants
# (1000): the file is kept small so those downloads (each one anonymised afresh) take seconds, not minutes.
QUALITY_ROWS = 400


def quality_measurements(rng: random.Random, count: int) -> str:
    """Production quality measurements (CSV) with operator name, email, phone - 'important' data."""
    rows: list[list[object]] = []
    for i in range(count):
        part = _PARTS[rng.randrange(len(_PARTS))][0]
        plant = _PLANTS[rng.randrange(len(_PLANTS))][0]
        name, nominal, sigma = _CHARACTERISTICS[rng.randrange(len(_CHARACTERISTICS))]
        value = rng.gauss(nominal, sigma)
        first, last = rng.choice(_FIRST), rng.choice(_LAST)
        rows.append([f"M{i:08d}", _iso(_EPOCH + timedelta(seconds=41 * i)), plant, f"{part}-{rng.randrange(10**7):07d}",
                     name, f"{value:.4f}", f"{nominal - 3 * sigma:.4f}", f"{nominal + 3 * sigma:.4f}",
                     "PASS" if abs(value - nominal) <= 3 * sigma else "FAIL", f"{first} {last}",
                     f"{first.lower()}.{last.lower()}@schwarzwald-praezision.example",
                     f"+49 711 {rng.randrange(1000000, 9999999)}"])
    return _csv(rows, ["measurement_id", "measured_at", "plant_id", "serial_number", "characteristic", "value",
                       "lower_limit", "upper_limit", "result", "name", "email", "phone"])


def process_know_how(rng: random.Random) -> str:
    """Process know-how (JSON): sintering and die-casting recipes - 'core', never leaves Germany."""
    recipes = []
    for part, description, _ in _PARTS:
        steps = []
        temperature = rng.uniform(620, 690)
        for step in range(1, 13):
            temperature += rng.uniform(-15, 25)
            steps.append({"step": step, "temperature_c": round(temperature, 1),
                          "pressure_bar": round(rng.uniform(600, 1100), 0), "dwell_s": rng.randrange(4, 90),
                          "cooling_rate_k_s": round(rng.uniform(1.5, 12.0), 2)})
        recipes.append({"part_number": part, "description": description, "revision": f"R{rng.randrange(3, 19)}",
                        "alloy": rng.choice(["AlSi10MnMg", "AlSi9Cu3", "GJS-500-7", "42CrMo4"]),
                        "steps": steps, "classification": "core", "origin": "DE"})
    return json.dumps({"recipes": recipes}, ensure_ascii=False, indent=1)


def shipments(rng: random.Random, count: int) -> str:
    """Logistics shipments (CSV) for the logistics firm's own small catalog."""
    rows: list[list[object]] = []
    for i in range(count):
        leave = _EPOCH + timedelta(hours=3 * i)
        rows.append([f"SHP-{i:06d}", _PLANTS[rng.randrange(len(_PLANTS))][1], rng.choice(["Nagoya", "Toyota City",
                     "Hiroshima", "Detroit"]), _iso(leave), _iso(leave + timedelta(days=rng.randrange(18, 41))),
                     rng.randrange(2, 40), rng.choice(["sea", "sea", "air", "rail+sea"])])
    return _csv(rows, ["shipment_id", "origin_city", "destination_city", "departed_at", "eta", "pallets", "mode"])


def _uuid(rng: random.Random) -> str:
    value = rng.getrandbits(128)
    hexed = f"{value:032x}"
    return f"{hexed[:8]}-{hexed[8:12]}-4{hexed[13:16]}-a{hexed[17:20]}-{hexed[20:]}"


def generate(folder: Path, *, seed: int = DEFAULT_SEED, scale: float = 1.0) -> list[GeneratedFile]:
    """Write every party's data files under ``folder/<party>/`` and return what was written.

    ``scale`` multiplies the row counts (tests use a small scale; the demo the default, a few MB).
    """
    if scale <= 0:
        raise DemoError(f"scale must be positive, not {scale}")
    rng = random.Random(seed)
    plan = [
        ("traceability", "supplier/traceability/parts.csv", "text/csv",
         lambda: traceability_records(rng, int(12000 * scale))),
        ("carbon-footprint", "supplier/pcf/product-carbon-footprints.json", "application/json",
         lambda: carbon_footprints(rng)),
        ("quality", "supplier/quality/measurements.csv", "text/csv",
         lambda: quality_measurements(rng, max(1, int(QUALITY_ROWS * scale)))),
        ("know-how", "supplier/knowhow/process-parameters.json", "application/json", lambda: process_know_how(rng)),
        ("shipments", "logistics/shipments/shipments.csv", "text/csv", lambda: shipments(rng, int(3000 * scale))),
    ]
    written = []
    for dataset, relative, media_type, produce in plan:
        path = folder / relative
        try:
            size, digest = _write(path, produce())
        except OSError as exc:
            raise DemoError(f"cannot write demo data {path}: {exc.strerror or exc}") from exc
        written.append(GeneratedFile(dataset, path, media_type, size, digest))
    return written
