"""``pactum policies`` commands: output, exit codes and one-line errors (in-process and as a real process)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from policies.cli import main

ROOT = Path(__file__).resolve().parents[2]
LIBRARY = ROOT / "policies" / "library"
SUPPLY = str(LIBRARY / "supply-chain.ttl")

MEMBER = {"type": ["VerifiableCredential", "MembershipCredential"], "credentialSubject": {"id": "did:web:c"}}


@pytest.fixture()
def inputs(tmp_path: Path) -> tuple[str, str]:
    request = tmp_path / "request.json"
    request.write_text(json.dumps({"action": "use", "target": "urn:pactum:asset", "purpose": "quality-analysis"}))
    state = tmp_path / "state.json"
    state.write_text(json.dumps({"now": "2026-01-10T00:00:00Z", "agreement_time": "2026-01-01T00:00:00Z",
                                 "counters": {"urn:pactum:asset": 3}, "credentials": [MEMBER]}))
    return str(request), str(state)


def test_lint_clean_library(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["lint", str(LIBRARY)]) == 0
    assert "no errors" in capsys.readouterr().out


def test_lint_errors_exit_1_with_findings(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.ttl"
    bad.write_text("@prefix odrl: <http://www.w3.org/ns/odrl/2/> .\n<urn:p> a odrl:Offer ;\n"
                   "  odrl:permission [ odrl:action odrl:yoink ] .\n")
    assert main(["lint", str(bad)]) == 1
    captured = capsys.readouterr()
    assert f"{bad}:3: error [unknown-action]" in captured.out
    assert captured.err.strip().startswith("error: lint found")


def test_lint_json_prints_only_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.ttl"
    bad.write_text("@prefix odrl: <http://www.w3.org/ns/odrl/2/> .\n<urn:p> a odrl:Set ;\n  odrl:permission [ ")
    assert main(["lint", "--json", str(bad), SUPPLY]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["errors"] == 1
    [finding] = data["findings"]
    assert finding["rule"] == "syntax" and finding["line"] == 3 and finding["column"] is not None


def test_eval_text_json_and_turtle(inputs: tuple[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    request, state = inputs
    assert main(["eval", SUPPLY, "--request", request, "--sotw", state]) == 0
    out = capsys.readouterr().out
    assert out.startswith("permit") and "duty delete: unfulfilled" in out
    assert main(["eval", SUPPLY, "-r", request, "-s", state, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["decision"] == "permit" and data["rules"]
    assert main(["eval", SUPPLY, "-r", request, "-s", state, "--report", "ttl"]) == 0
    turtle = capsys.readouterr().out
    import rdflib

    graph = rdflib.Graph().parse(data=turtle, format="turtle")
    assert any("PolicyReport" in str(o) for o in graph.objects())


def test_eval_deny(tmp_path: Path, inputs: tuple[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    _, state = inputs
    request = tmp_path / "distribute.yaml"
    request.write_text("action: distribute\ntarget: urn:pactum:asset\npurpose: quality-analysis\n")
    assert main(["eval", SUPPLY, "-r", str(request), "-s", state, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["decision"] == "deny"


def test_explain_tree(inputs: tuple[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    request, state = inputs
    assert main(["explain", SUPPLY, "-r", request, "-s", state]) == 0
    out = capsys.readouterr().out
    assert out.startswith("PERMIT") and "purpose eq 'quality-analysis': satisfied" in out
    assert "duty delete: unfulfilled" in out


@pytest.mark.parametrize(("args", "message"), [
    (["eval", SUPPLY, "-r", "/nonexistent.json", "-s", "/nonexistent.json"], "no such file"),
    (["eval", SUPPLY], "Missing option"),
    (["eval", SUPPLY, "-r", "x", "-s", "y", "--report", "pdf"], "only 'ttl'"),
    (["lint", "/nonexistent.ttl"], "no such file"),
    (["test", "/nonexistent"], "no such file"),
    (["frobnicate"], "No such command"),
])
def test_user_errors_are_one_line(args: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(args) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and message in err and "Traceback" not in err
    assert len(err.splitlines()) == 1


def test_malformed_policy_surfaces_line_and_column(tmp_path: Path, inputs: tuple[str, str],
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    request, state = inputs
    bad = tmp_path / "bad.jsonld"
    bad.write_text('{\n  "@type": "Set",\n  "permission": [,]\n}')
    assert main(["eval", str(bad), "-r", request, "-s", state]) == 1
    err = capsys.readouterr().err
    assert "line 3" in err or ":3:" in err


def test_test_command_pass_and_fail(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["test", str(LIBRARY)]) == 0
    assert "passed" in capsys.readouterr().out
    (tmp_path / "p.ttl").write_text((LIBRARY / "general-open.ttl").read_text())
    (tmp_path / "p.test.yaml").write_text(
        "policy: p.ttl\ncases:\n  - name: expects the wrong thing\n"
        "    request: {action: use, target: 'urn:pactum:asset'}\n"
        "    state: {now: '2026-01-01T00:00:00Z', asset: {dataClass: general}}\n"
        "    expect: {decision: permit}\n")
    assert main(["test", str(tmp_path)]) == 1
    captured = capsys.readouterr()
    assert "expects the wrong thing" in captured.out and "+decision: deny" in captured.out
    assert "1 of 1 policy test case(s) failed" in captured.err
    assert main(["test", "--json", str(tmp_path)]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["failed"] == 1 and data["results"][0]["passed"] is False


def test_profiles_listing(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["profiles", "--json"]) == 0
    prefixes = {p["prefix"] for p in json.loads(capsys.readouterr().out)}
    assert {"xb", "cx-policy"} <= prefixes


def test_help_has_examples(capsys: pytest.CaptureFixture[str]) -> None:
    for command in ("lint", "eval", "explain", "test"):
        assert main([command, "--help"]) == 0
        assert "pactum policies " + command in capsys.readouterr().out


def test_standalone_module_in_a_real_process(tmp_path: Path) -> None:
    bad = tmp_path / "bad.ttl"
    bad.write_text("this is not turtle")
    proc = subprocess.run([sys.executable, "-m", "policies.cli", "lint", "--json", str(bad)], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert json.loads(proc.stdout)["findings"][0]["rule"] == "syntax"
    assert proc.stderr.startswith("error:") and "Traceback" not in proc.stderr
    ok = subprocess.run([sys.executable, "-m", "policies.cli", "test", str(LIBRARY)], cwd=ROOT,
                        capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0, ok.stdout + ok.stderr
