"""``pactum policies lint``: find mistakes in ODRL policy files before they are published.

Two layers: the W3C ODRL SHACL shapes (structure) and semantic checks (unknown terms, operand types,
contradictions, Offer gaps, inheritance cycles). Findings carry file, line, rule id, severity and a hint.

    from policies.lint import lint_file, lint_paths
    findings = lint_file("policies/library/supply-chain.ttl")
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from .findings import Finding, Severity, has_errors
from .jsonld_keys import unmapped_keys
from .locate import Locator
from .semantic import run_semantic_checks
from .shacl import run_shacl
from .source import LintInputError, PolicySource, read_policy_source

POLICY_SUFFIXES = (".ttl", ".jsonld", ".json")

# A semantic finding on a rule makes the SHACL one saying the same thing redundant.
_COVERS = {"offer-without-target": "shacl-target", "offer-without-assigner": "shacl-assigner"}


def lint_source(source: PolicySource) -> list[Finding]:
    """Findings for one already-read policy source, sorted by line."""
    if source.syntax_error is not None:
        return [source.syntax_error]
    assert source.graph is not None
    if len(source.graph) == 0:
        return [Finding(source.path, "empty", Severity.ERROR, "the file contains no RDF statements",
                        "write an ODRL policy (odrl:Set, odrl:Offer or odrl:Agreement)", 1)]
    locator = Locator(source.text, source.syntax, source.graph)
    semantic = run_semantic_checks(source.path, source.graph, locator)
    covered = {(_COVERS[f.rule], f.line) for f in semantic if f.rule in _COVERS}
    cycles = any(f.rule == "inherit-cycle" for f in semantic)
    structural = [f for f in run_shacl(source.path, source.graph, locator)
                  if (f.rule, f.line) not in covered and not (cycles and f.rule == "inherit-cycle")]
    findings = structural + semantic
    if source.document is not None:
        findings.extend(unmapped_keys(source.path, source.text, source.document))
    if not any(True for _ in _policies(source)):
        findings.append(Finding(source.path, "no-policy", Severity.ERROR, "no ODRL policy found in the file",
                                "type the policy as odrl:Set, odrl:Offer or odrl:Agreement", 1))
    unique = list({(f.rule, f.line, f.message): f for f in findings}.values())
    return sorted(unique, key=lambda f: (f.line or 0, f.rule, f.message))


def _policies(source: PolicySource) -> Iterable[object]:
    from .walk import policy_nodes

    assert source.graph is not None
    return policy_nodes(source.graph)


def lint_text(text: str, *, path: str = "<input>") -> list[Finding]:
    """Lint policy text; ``path`` names it in findings and its extension selects Turtle or JSON-LD."""
    return lint_source(read_policy_source(path, text))


def lint_file(path: str | Path) -> list[Finding]:
    """Lint one policy file (Turtle or JSON-LD); LintInputError when it cannot be read."""
    return lint_source(read_policy_source(path))


def expand_paths(paths: Iterable[str | Path]) -> list[Path]:
    """Files to lint: each file as given, each directory's policy files (recursively, sorted)."""
    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            files.extend(sorted(p for p in path.rglob("*") if p.is_file() and p.suffix in POLICY_SUFFIXES))
        elif path.is_file():
            files.append(path)
        else:
            raise LintInputError(f"{raw}: no such file or directory")
    return files


def lint_paths(paths: Iterable[str | Path]) -> list[Finding]:
    """Lint every file (directories expand to their .ttl/.jsonld/.json files)."""
    findings: list[Finding] = []
    for file in expand_paths(paths):
        findings.extend(lint_file(file))
    return findings


__all__ = ["Finding", "LintInputError", "Severity", "expand_paths", "has_errors", "lint_file", "lint_paths",
           "lint_source", "lint_text"]
