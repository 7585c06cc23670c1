"""The demo data generator: deterministic with a seed, realistic shapes, a few MB."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

from connector.demo.datagen import QUALITY_ROWS, generate
from connector.demo.errors import DemoError

ROOT = Path(__file__).resolve().parents[2]


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path: Path) -> None:
    a = generate(tmp_path / "a", seed=7, scale=0.05)
    b = generate(tmp_path / "b", seed=7, scale=0.05)
    c = generate(tmp_path / "c", seed=8, scale=0.05)
    assert [f.sha256 for f in a] == [f.sha256 for f in b]
    assert [f.sha256 for f in a] != [f.sha256 for f in c]


def test_files_have_the_fields_the_policies_talk_about(tmp_path: Path) -> None:
    files = {f.dataset: f for f in generate(tmp_path, seed=1, scale=0.02)}
    assert set(files) == {"traceability", "carbon-footprint", "quality", "know-how", "shipments"}
    with files["quality"].path.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == int(QUALITY_ROWS * 0.02)
    assert {"name", "email", "phone"} <= set(rows[0])  # the fields the anonymise duty names
    assert all("@" in r["email"] and r["result"] in ("PASS", "FAIL") for r in rows)
    recipes = json.loads(files["know-how"].path.read_text())["recipes"]
    assert all(r["classification"] == "core" and r["origin"] == "DE" for r in recipes)
    pcf = json.loads(files["carbon-footprint"].path.read_text())["data"]
    assert all(float(p["pcf"]["pCfExcludingBiogenic"]) > 0 for p in pcf)


def test_full_scale_is_a_few_megabytes(tmp_path: Path) -> None:
    total = sum(f.size for f in generate(tmp_path))
    assert 2_000_000 < total < 12_000_000


def test_bad_scale_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DemoError, match="scale must be positive"):
        generate(tmp_path, scale=0)


def test_script_prints_each_file(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, str(ROOT / "scripts" / "generate_demo_data.py"), "--out", str(tmp_path),
                          "--scale", "0.01"], capture_output=True, text=True, check=True)
    assert out.stdout.count("sha256:") == 5
    assert (tmp_path / "supplier" / "quality" / "measurements.csv").exists()
