"""The ready policy library: every policy lints clean and every author test case in it passes."""

from __future__ import annotations

from pathlib import Path

import pytest

from policies import load_policy_file
from policies.authoring import find_suites, run_suite
from policies.lint import lint_file

LIBRARY = Path(__file__).resolve().parents[2] / "policies" / "library"
POLICY_FILES = sorted(p for p in LIBRARY.iterdir() if p.suffix in (".ttl", ".jsonld"))
SUITES = find_suites([LIBRARY])


def test_library_has_the_promised_policies() -> None:
    names = {p.name for p in POLICY_FILES}
    assert {"supply-chain.ttl", "core-stays-home.ttl", "important-certified.ttl", "general-open.ttl",
            "carbon-footprint-purpose.ttl", "traceability-members.ttl"} <= names
    assert any(n.startswith("catenax-") and n.endswith(".jsonld") for n in names)


@pytest.mark.parametrize("policy", POLICY_FILES, ids=lambda p: p.name)
def test_policy_lints_clean_and_parses(policy: Path) -> None:
    assert lint_file(policy) == []
    parsed = load_policy_file(policy)
    assert parsed.uid and parsed.uid.startswith("https://w3id.org/pactum/library/")


@pytest.mark.parametrize("policy", POLICY_FILES, ids=lambda p: p.name)
def test_every_policy_has_its_own_test_suite(policy: Path) -> None:
    suite = LIBRARY / f"{policy.stem}.test.yaml"
    assert suite.is_file(), f"{policy.name} has no {suite.name}"


@pytest.mark.parametrize("suite", SUITES, ids=lambda p: p.name)
def test_library_suite_passes(suite: Path) -> None:
    result = run_suite(suite)
    failures = [f"{c.name}: {c.error or c.diff}" for c in result.cases if not c.passed]
    assert not failures, "\n".join(failures)
    decisions = {c.name for c in result.cases}
    assert len(decisions) == len(result.cases), "case names must be unique"
