"""Read a policy file into an rdflib graph for linting, turning syntax errors into findings with line and column.

Lint needs the raw RDF graph (SHACL and the semantic checks work on triples, not on the engine's model), so it
parses the file itself. JSON-LD contexts are resolved only from the pinned copies in ``policies/resources``:
lint never touches the network.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import rdflib
from rdflib.plugins.parsers.notation3 import BadSyntax

from policies.errors import PolicyError
from policies.jsonld import ContextNotPinnedError
from policies.parse import to_graph

from .findings import Finding, Severity


class LintInputError(PolicyError):
    """The file to lint cannot be read at all (missing, not a file, not UTF-8)."""

    code = "lint_input"


@dataclass(frozen=True, slots=True)
class PolicySource:
    """A policy file's text, its syntax (``turtle`` or ``json-ld``) and, when it parsed, its RDF graph."""

    path: str
    text: str
    syntax: str
    graph: rdflib.Graph | None
    syntax_error: Finding | None
    document: Any = None  # the parsed JSON of a JSON-LD file


def detect_syntax(path: str, text: str) -> str:
    """Pick the parser from the extension, falling back to the first character (JSON starts with ``{``/``[``)."""
    lower = path.lower()
    if lower.endswith((".jsonld", ".json")):
        return "json-ld"
    if lower.endswith((".ttl", ".turtle", ".n3", ".nt")):
        return "turtle"
    return "json-ld" if text.lstrip()[:1] in ("{", "[") else "turtle"


# rdflib logs (and keeps) ill-typed literals such as "abc"^^xsd:integer; lint reports them as findings instead.
logging.getLogger("rdflib.term").setLevel(logging.ERROR)


def _turtle_graph(path: str, text: str) -> tuple[rdflib.Graph | None, Finding | None]:
    graph = rdflib.Graph()
    try:
        graph.parse(data=text, format="turtle", publicID=Path(path).resolve().as_uri())
    except BadSyntax as exc:
        line = exc.lines + 1
        offset = getattr(exc, "_i", 0)
        line_start = text.rfind("\n", 0, offset) + 1
        why = getattr(exc, "_why", "bad syntax")
        return None, Finding(path, "syntax", Severity.ERROR, f"Turtle syntax error: {why}",
                             "fix the Turtle syntax at this position", line, offset - line_start + 1)
    except Exception as exc:  # rdflib raises plain exceptions for e.g. undefined prefixes
        return None, Finding(path, "syntax", Severity.ERROR, f"Turtle syntax error: {exc}",
                             "check prefixes and IRIs", None, None)
    return graph, None


def _jsonld_graph(path: str, text: str) -> tuple[rdflib.Graph | None, Finding | None]:
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        return None, Finding(path, "syntax", Severity.ERROR, f"JSON syntax error: {exc.msg}",
                             "fix the JSON syntax at this position", exc.lineno, exc.colno)
    try:
        # the engine's own JSON-LD reading: pinned contexts, DSP 2025-1 context when none is given
        return to_graph(document, format="json-ld"), None
    except ContextNotPinnedError as exc:
        return None, Finding(path, "jsonld-context", Severity.ERROR, str(exc),
                             "use one of the pinned contexts, e.g. http://www.w3.org/ns/odrl.jsonld")
    except PolicyError as exc:
        return None, Finding(path, "jsonld", Severity.ERROR, str(exc), "check @context and keyword usage")


def read_policy_source(path: str | Path, text: str | None = None) -> PolicySource:
    """Read and parse ``path`` (or the given ``text``); a syntax error becomes a finding, not an exception."""
    name = str(path)
    if text is None:
        file = Path(path)
        if not file.is_file():
            raise LintInputError(f"{name}: no such file")
        try:
            text = file.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise LintInputError(f"{name}: not UTF-8 text ({exc.reason})") from exc
    syntax = detect_syntax(name, text)
    document: Any = None
    if syntax == "turtle":
        graph, error = _turtle_graph(name, text)
    else:
        graph, error = _jsonld_graph(name, text)
        if error is None:
            document = json.loads(text)
    return PolicySource(name, text, syntax, graph, error, document)
