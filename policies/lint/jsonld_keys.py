"""Find JSON-LD keys the context does not define: JSON-LD expansion drops them without a word.

``"permision": [...]`` in a DSP policy is not an error to a JSON-LD processor, it simply vanishes, and the
policy then means something else (here: no rules at all). Lint processes each object's active context with
the pinned contexts and reports keys that are neither keywords, compact/absolute IRIs, nor defined terms.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from typing import Any

from pyld import jsonld

from policies.jsonld import document_loader
from policies.parse import DEFAULT_CONTEXT

from .findings import Finding, Severity

_OPTIONS: dict[str, Any] = {}


def _options() -> dict[str, Any]:
    if not _OPTIONS:
        _OPTIONS.update({"documentLoader": document_loader(), "base": ""})
    return _OPTIONS


def _process(processor: jsonld.JsonLdProcessor, active: Any, local: Any) -> Any:
    return processor.process_context(active, local, _options())


def unmapped_keys(path: str, text: str, document: Any) -> list[Finding]:
    """Findings for keys that JSON-LD expansion would silently drop; [] when the context cannot be read."""
    processor = jsonld.JsonLdProcessor()
    try:
        initial = processor._get_initial_context(_options())
    except Exception:  # pragma: no cover - pyld internals changed: skip this check rather than fail lint
        return []
    findings: list[Finding] = []
    cursor = {"offset": 0}

    def visit(node: Any, active: Any, depth: int) -> None:
        if depth > 64:
            return
        if isinstance(node, list):
            for item in node:
                visit(item, active, depth + 1)
            return
        if not isinstance(node, Mapping):
            return
        if "@context" in node:
            try:
                active = _process(processor, active, node["@context"])
            except Exception:
                return  # the graph reader reports unreadable contexts
        elif depth == 0:
            try:
                active = _process(processor, active, DEFAULT_CONTEXT)
            except Exception:
                return
        mappings = active.get("mappings", {})
        vocab = active.get("@vocab")
        for key, value in node.items():
            if key.startswith("@"):
                if key in ("@graph", "@list", "@set", "@included", "@reverse"):
                    visit(value, active, depth + 1)
                continue
            definition = mappings.get(key)
            if definition is None and ":" not in key and vocab is None:
                findings.append(_finding(path, text, key, list(mappings), cursor))
                continue
            if isinstance(definition, Mapping) and definition.get("@type") == "@json":
                continue
            visit(value, active, depth + 1)

    visit(document, initial, 0)
    return findings


def _finding(path: str, text: str, key: str, terms: list[str], cursor: dict[str, int]) -> Finding:
    pattern = re.compile(f'"{re.escape(key)}"\\s*:')
    match = pattern.search(text, cursor["offset"]) or pattern.search(text)
    line = None
    if match is not None:
        cursor["offset"] = match.end()
        line = text.count("\n", 0, match.start()) + 1
    close = difflib.get_close_matches(key, terms, n=1, cutoff=0.75)
    hint = f"did you mean {close[0]!r}?" if close else "define the term in @context or use a full IRI"
    return Finding(path, "unmapped-key", Severity.ERROR,
                   f"JSON-LD key {key!r} is not defined by the @context, so it is dropped", hint, line)
