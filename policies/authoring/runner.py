"""Policy unit tests written by authors: YAML suites of request + state -> expected decision and duties.

A suite file (``*.test.yaml``) looks like this (paths are relative to the suite file):

    policy: supply-chain.ttl
    defaults:                       # merged (deeply) under every case's request and state
      request: {action: use, target: "urn:pactum:asset", purpose: quality-analysis}
      state: {now: "2026-01-10T00:00:00Z"}     # a case may remove a default key with null
    cases:
      - name: a member analysing quality is permitted
        state: {credentials: [{type: [MembershipCredential]}], counters: {"urn:pactum:asset": 5}}
        expect:
          decision: permit
          duties: [{action: delete, state: unfulfilled}]   # optional; each listed duty must be reported

Expected duties match when every key given (action, state, parameters, ...) equals the reported value;
``duties: []`` means "no duty binds".
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from policies import Policy, Report, evaluate, load_policy_file
from policies.errors import PolicyError

from .inputs import InputError, read_structured, request_from_dict, state_from_dict

SUITE_SUFFIXES = (".test.yaml", ".test.yml")
SUITE_KEYS = ("policy", "description", "defaults", "cases")
CASE_KEYS = ("name", "description", "request", "state", "expect")
EXPECT_KEYS = ("decision", "duties", "reasons")


@dataclass(frozen=True, slots=True)
class CaseResult:
    """The outcome of one case: passed or not, and a readable diff when not."""

    suite: str
    name: str
    passed: bool
    diff: str = ""
    error: str = ""

    def to_json(self) -> dict[str, Any]:
        """Plain dict for ``--json``."""
        return {"suite": self.suite, "case": self.name, "passed": self.passed, "diff": self.diff,
                "error": self.error}


@dataclass(slots=True)
class SuiteResult:
    """Every case of one suite file."""

    path: str
    policy: str
    cases: list[CaseResult] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """True when every case passed."""
        return all(c.passed for c in self.cases)


def deep_merge(base: Any, override: Any) -> Any:
    """``override`` on top of ``base``: mappings merge key by key (``null`` removes a key), else replace."""
    if isinstance(base, Mapping) and isinstance(override, Mapping):
        merged = dict(base)
        for key, value in override.items():
            if value is None:
                merged.pop(key, None)
            else:
                merged[key] = deep_merge(base.get(key), value) if key in base else value
        return merged
    return override if override is not None else base


def find_suites(paths: list[str | Path]) -> list[Path]:
    """Suite files under each directory (recursively), or the files given."""
    suites: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            suites.extend(sorted(p for p in path.rglob("*") if p.is_file() and p.name.endswith(SUITE_SUFFIXES)))
        elif path.is_file():
            suites.append(path)
        else:
            raise InputError(f"{raw}: no such file or directory")
    return suites


def _check_keys(data: Mapping[str, Any], allowed: tuple[str, ...], what: str) -> None:
    unknown = sorted(set(data) - set(allowed))
    if unknown:
        raise InputError(f"{what}: unknown key(s) {', '.join(map(str, unknown))}; allowed: {', '.join(allowed)}")


def _dump(data: Any) -> list[str]:
    return yaml.safe_dump(data, sort_keys=True, default_flow_style=False, allow_unicode=True).splitlines()


def _same_value(expected: Any, actual: Any) -> bool:
    """Parameters compare by text; lists as sets, because the order of a right-operand list carries no meaning."""
    if isinstance(expected, list):
        return isinstance(actual, list | tuple) and sorted(map(str, expected)) == sorted(map(str, actual))
    return str(expected) == str(actual)


def _duty_matches(expected: Mapping[str, Any], actual: Mapping[str, Any]) -> bool:
    for key, value in expected.items():
        if key == "parameters" and isinstance(value, Mapping):
            got = actual.get("parameters") or {}
            if any(k not in got or not _same_value(v, got[k]) for k, v in value.items()):
                return False
        elif actual.get(key) != value:
            return False
    return True


def compare(expect: Mapping[str, Any], report: Report) -> tuple[bool, dict[str, Any], dict[str, Any]]:
    """Whether ``report`` meets ``expect``; also the expected and actual views used for the diff."""
    actual_duties = [d.to_json() for d in report.duties]
    expected_view: dict[str, Any] = {}
    actual_view: dict[str, Any] = {}
    ok = True
    if "decision" in expect:
        expected_view["decision"] = expect["decision"]
        actual_view["decision"] = report.decision
        ok &= expect["decision"] == report.decision
    if "duties" in expect:
        wanted = expect["duties"] or []
        if not isinstance(wanted, list) or not all(isinstance(d, Mapping) for d in wanted):
            raise InputError("expect.duties must be a list of mappings (action, state, parameters, ...)")
        keys = sorted({k for d in wanted for k in d} | {"action", "state"})
        expected_view["duties"] = [dict(d) for d in wanted]
        actual_view["duties"] = [{k: d.get(k) for k in keys if k in d} for d in actual_duties]
        if not wanted:
            ok &= not actual_duties
        else:
            ok &= all(any(_duty_matches(w, a) for a in actual_duties) for w in wanted)
    if "reasons" in expect:
        wanted_reasons = [str(r) for r in (expect["reasons"] or [])]
        expected_view["reasons"] = wanted_reasons
        actual_view["reasons"] = list(report.reasons)
        ok &= all(any(w in r for r in report.reasons) for w in wanted_reasons)
    return ok, expected_view, actual_view


def _diff(expected: dict[str, Any], actual: dict[str, Any], report: Report) -> str:
    lines = list(difflib.unified_diff(_dump(expected), _dump(actual), "expected", "actual", lineterm="", n=3))
    if report.reasons and "reasons" not in expected:
        lines.append("reasons: " + "; ".join(report.reasons))
    return "\n".join(lines)


def run_case(suite: str, policy: Policy, case: Mapping[str, Any], defaults: Mapping[str, Any],
             index: int) -> CaseResult:
    """Evaluate one case; input errors in the case become a failed result naming the case."""
    name = str(case.get("name") or f"case {index + 1}")
    try:
        _check_keys(case, CASE_KEYS, f"{suite}: {name}")
        expect = case.get("expect")
        if not isinstance(expect, Mapping) or not expect:
            raise InputError("expect is required (at least a decision: permit or deny)")
        _check_keys(expect, EXPECT_KEYS, f"{name}: expect")
        if "decision" in expect and expect["decision"] not in ("permit", "deny"):
            raise InputError(f"expect.decision must be permit or deny, got {expect['decision']!r}")
        request = request_from_dict(deep_merge(defaults.get("request") or {}, case.get("request") or {}))
        state = state_from_dict(deep_merge(defaults.get("state") or {}, case.get("state") or {}))
        report = evaluate(policy, request, state)
        ok, expected_view, actual_view = compare(expect, report)
    except PolicyError as exc:
        return CaseResult(suite, name, False, error=str(exc))
    return CaseResult(suite, name, ok, "" if ok else _diff(expected_view, actual_view, report))


def run_suite(path: str | Path) -> SuiteResult:
    """Run every case of one suite file; a bad suite file raises InputError (or PolicyParseError)."""
    suite_path = Path(path)
    data = read_structured(suite_path)
    if not isinstance(data, Mapping):
        raise InputError(f"{suite_path}: a test suite must be a mapping with 'policy' and 'cases'")
    _check_keys(data, SUITE_KEYS, str(suite_path))
    policy_ref = data.get("policy")
    if not isinstance(policy_ref, str):
        raise InputError(f"{suite_path}: 'policy' (path of the policy file, relative to the suite) is required")
    policy_file = (suite_path.parent / policy_ref)
    if not policy_file.is_file():
        raise InputError(f"{suite_path}: policy file {policy_ref} not found next to the suite")
    policy = load_policy_file(policy_file)
    cases = data.get("cases")
    if not isinstance(cases, list) or not cases:
        raise InputError(f"{suite_path}: 'cases' must be a non-empty list")
    defaults = data.get("defaults") or {}
    if not isinstance(defaults, Mapping):
        raise InputError(f"{suite_path}: 'defaults' must be a mapping with request and/or state")
    result = SuiteResult(str(suite_path), str(policy_file))
    for index, case in enumerate(cases):
        if not isinstance(case, Mapping):
            result.cases.append(CaseResult(str(suite_path), f"case {index + 1}", False,
                                           error="a case must be a mapping with request, state and expect"))
            continue
        result.cases.append(run_case(str(suite_path), policy, case, defaults, index))
    return result


def run_suites(paths: list[str | Path]) -> list[SuiteResult]:
    """Run every suite found under ``paths``; InputError when none is found."""
    suites = find_suites(paths)
    if not suites:
        raise InputError(f"no test suites (*.test.yaml) found in {', '.join(str(p) for p in paths)}")
    return [run_suite(s) for s in suites]
