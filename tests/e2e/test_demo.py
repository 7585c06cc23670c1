"""``pactum demo`` end to end: every party a real process, the whole story through the public APIs, every
expected outcome must happen, and nothing is left running afterwards - also when interrupted."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from connector.dataplane.duties import count_limit
from policies import parse_policy

ROOT = Path(__file__).resolve().parents[2]
PACTUM = [sys.executable, "-m", "connector.cli"]


def processes_mentioning(text: str) -> list[str]:
    """Command lines of live processes that mention ``text`` (the demo's working directory)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if text in cmdline and state != "Z":
            found.append(f"{entry.name}: {cmdline[:160]}")
    return found


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PACTUM_")}
    env["PYTHONPATH"] = str(ROOT)
    return env


@pytest.mark.slow
def test_demo_tells_the_whole_story(tmp_path: Path) -> None:
    workdir, outcomes_file = tmp_path / "space", tmp_path / "outcomes.json"
    started = time.monotonic()
    done = subprocess.run([*PACTUM, "demo", "--json", str(outcomes_file), "--workdir", str(workdir), "--quiet"],
                          capture_output=True, text=True, timeout=170, env=_env(), cwd=tmp_path)
    wall = time.monotonic() - started
    assert outcomes_file.exists(), done.stdout + done.stderr
    report = json.loads(outcomes_file.read_text())
    failed = [o for o in report["outcomes"] if not o["ok"]]
    assert not failed, "\n".join(f"{o['step']}: expected {o['expected']}, got {o['actual']} ({o['reason']})"
                                 for o in failed)
    assert report["ok"] is True and done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert len(report["outcomes"]) >= 30
    assert {"step", "expected", "actual", "ok", "reason"} <= set(report["outcomes"][0])
    steps = " | ".join(o["step"] for o in report["outcomes"])
    for story_point in ("purpose marketing", "logistics negotiates quality-measurements", "process-know-how",
                        "forged", "revocation", "delete duty", "audit trail", "receipts"):
        assert story_point in steps, story_point
    # the quality policy is published as the library wrote it, and its whole count is spent
    library = (ROOT / "policies" / "library" / "important-certified.ttl").read_text("utf-8")
    limit = count_limit(parse_policy(library, format="turtle"))
    assert limit is not None and f"use {limit + 1} of quality data refused" in steps
    assert report["seconds"] < 90, f"the demo took {report['seconds']} s (wall {wall:.0f} s)"
    assert not processes_mentioning(str(workdir)), "parties left running after the demo"


@pytest.mark.slow
def test_ctrl_c_stops_every_party(tmp_path: Path) -> None:
    workdir = tmp_path / "space"
    proc = subprocess.Popen([*PACTUM, "demo", "--workdir", str(workdir), "--quiet", "--json",
                             str(tmp_path / "out.json")], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            env=_env(), cwd=tmp_path, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        def started() -> bool:  # the authority and all four connectors are running: interrupt now
            return len(processes_mentioning(str(workdir / "config"))) >= 5

        while time.monotonic() < deadline and not started():
            time.sleep(0.2)
        assert started(), "the parties did not start"
        time.sleep(1.0)
        os.kill(proc.pid, signal.SIGINT)
        output, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 130, output.decode(errors="replace")[-2000:]
    assert not processes_mentioning(str(workdir)), "parties left running after Ctrl-C"
    report = json.loads((tmp_path / "out.json").read_text())
    assert report["ok"] is False and report["outcomes"][-1]["step"] == "demo interrupted"
