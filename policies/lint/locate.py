"""Find the source line of an RDF node in the policy text, so findings point where the author has to look.

Parsers throw positions away, so we search the text: an IRI by any spelling it may have (full, prefixed,
bare JSON-LD term), a blank node by the predicate/object pairs it carries (``odrl:leftOperand odrl:count``),
picking the occurrence where most of its pairs sit close together.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

import rdflib
from rdflib.term import BNode, Literal, Node, URIRef


@dataclass
class Locator:
    """Maps graph nodes to 1-based line numbers in one file's text."""

    text: str
    syntax: str
    graph: rdflib.Graph
    _prefixes: dict[str, str] = field(default_factory=dict)
    _line_starts: list[int] = field(default_factory=list)
    _brackets: list[tuple[int, int]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._line_starts = [0] + [m.end() for m in re.finditer("\n", self.text)]
        self._brackets = _bracket_pairs(self.text, turtle=self.syntax == "turtle")
        if self.syntax == "turtle":
            self._prefixes = {p: str(ns) for p, ns in self.graph.namespace_manager.namespaces()
                              if f"{p}:" in self.text}
        else:
            self._prefixes = _jsonld_prefixes(self.text)

    def line_of_offset(self, offset: int) -> int:
        """1-based line containing character ``offset``."""
        low, high = 0, len(self._line_starts) - 1
        while low < high:
            mid = (low + high + 1) // 2
            if self._line_starts[mid] <= offset:
                low = mid
            else:
                high = mid - 1
        return low + 1

    def spellings(self, iri: str) -> list[str]:
        """Every way the text may spell ``iri``: ``<iri>``, ``prefix:local``, and (JSON-LD) bare terms."""
        forms: list[str] = []
        if self.syntax == "turtle":
            forms.append(f"<{iri}>")
            if iri == str(rdflib.RDF.type):
                forms.append("a")
        else:
            forms.append(iri)
        for prefix, namespace in self._prefixes.items():
            if iri.startswith(namespace) and len(iri) > len(namespace):
                local = iri[len(namespace):]
                forms.append(f"{prefix}:{local}")
                if self.syntax != "turtle":
                    forms.append(local)
        if self.syntax != "turtle":
            # JSON-LD terms and @vocab-relative names: the bare local name is how the author wrote it
            local = iri.rsplit("#", 1)[-1].rsplit("/", 1)[-1]
            if local and local != iri:
                forms.append(local)
        # longer spellings first so "odrl:use" wins over "use"
        return sorted(set(forms), key=len, reverse=True)

    def _value_pattern(self, node: Node) -> str | None:
        if isinstance(node, URIRef):
            alternatives = "|".join(re.escape(s) for s in self.spellings(str(node)))
            if self.syntax == "turtle":
                return f"(?:{alternatives})(?![\\w:/#.-]*\\w)"
            return f'"(?:{alternatives})"'
        if isinstance(node, Literal):
            lexical = re.escape(str(node))
            return f'"{lexical}"' if self.syntax == "turtle" or node.datatype is None else f'"?{lexical}"?'
        return None

    def _pair_pattern(self, predicate: URIRef, obj: Node) -> str | None:
        value = self._value_pattern(obj)
        if value is None:
            return None
        preds = "|".join(re.escape(s) for s in self.spellings(str(predicate)))
        if self.syntax == "turtle":
            return f"(?<![\\w:])(?:{preds})\\s+{value}"
        return f'"(?:{preds})"\\s*:\\s*(?:\\[\\s*)?(?:\\{{\\s*"@(?:id|value)"\\s*:\\s*)?{value}'

    def _subject_offset(self, iri: URIRef) -> int | None:
        spellings = [re.escape(s) for s in self.spellings(str(iri))]
        if not spellings:
            return None
        alternatives = "|".join(spellings)
        if self.syntax == "turtle":
            match = re.search(f"^\\s*(?:{alternatives})(?=\\s)", self.text, re.MULTILINE)
            if match is None:
                match = re.search(f"(?:{alternatives})", self.text)
        else:
            match = re.search(f'"(?:@id|uid)"\\s*:\\s*"(?:{alternatives})"', self.text)
            if match is None:
                match = re.search(f'"(?:{alternatives})"', self.text)
        return match.start() if match else None

    def _bnode_offset(self, node: BNode, depth: int = 0) -> int | None:
        anchor = self._parent_offset(node, depth)
        patterns = [p for p in (self._pair_pattern(pred, obj) for pred, obj in self.graph.predicate_objects(node)
                                if isinstance(pred, URIRef)) if p]
        if patterns:
            best: tuple[tuple[int, int, int], int] | None = None
            for match in re.finditer(patterns[0], self.text):
                open_at, close_at = self._scope(match.start())
                scope = self.text[open_at:close_at]
                found = sum(1 for other in patterns[1:] if re.search(other, scope))
                # most pairs inside the same [...] / {...} wins, then the tightest scope, then the first
                # occurrence after the node's parent
                distance = match.start() - anchor if anchor is not None and match.start() >= anchor else 10**9
                key = (found, -(close_at - open_at), -distance)
                if best is None or key > best[0]:
                    best = (key, match.start())
            if best is not None:
                return best[1]
        return anchor

    def _scope(self, offset: int) -> tuple[int, int]:
        """The innermost bracket pair (``[]``, ``{}``, ``()``) around ``offset``, or the whole text."""
        best = (0, len(self.text))
        for open_at, close_at in self._brackets:
            if open_at < offset < close_at and close_at - open_at < best[1] - best[0]:
                best = (open_at, close_at)
        return best

    def _parent_offset(self, node: BNode, depth: int) -> int | None:
        if depth >= 4:
            return None
        for parent in self.graph.subjects(None, node):
            offset = self.offset_of(parent, depth + 1)
            if offset is not None:
                return offset
        return None

    def offset_of(self, node: Node, depth: int = 0) -> int | None:
        """Character offset where ``node`` is best found, or ``None``."""
        if isinstance(node, URIRef):
            return self._subject_offset(node)
        if isinstance(node, BNode):
            return self._bnode_offset(node, depth)
        return None

    def line_of(self, node: Node | None) -> int | None:
        """1-based line of ``node`` in the text, or ``None`` when it cannot be found."""
        if node is None:
            return None
        offset = self.offset_of(node)
        return None if offset is None else self.line_of_offset(offset)

    def line_of_term(self, term: URIRef, near: Node | None = None) -> int | None:
        """Line where ``term`` is used (e.g. an unknown action), preferring the occurrence near ``near``."""
        value = self._value_pattern(term)
        if value is None:
            return self.line_of(near)
        anchor = self.offset_of(near) if near is not None else None
        matches = [m.start() for m in re.finditer(value, self.text)]
        if not matches:
            return self.line_of(near)
        if anchor is None:
            return self.line_of_offset(matches[0])
        after = [m for m in matches if m >= anchor]
        return self.line_of_offset(after[0] if after else matches[-1])


_CLOSERS = {"]": "[", "}": "{", ")": "("}


def _bracket_pairs(text: str, *, turtle: bool) -> list[tuple[int, int]]:
    """Matching bracket positions, skipping strings, Turtle IRIs ``<...>`` and ``#`` comments."""
    pairs: list[tuple[int, int]] = []
    stack: list[tuple[str, int]] = []
    i, n = 0, len(text)
    while i < n:
        char = text[i]
        if char == '"':
            i += 1
            while i < n and text[i] != '"':
                i += 2 if text[i] == "\\" else 1
        elif turtle and char == "<":
            end = text.find(">", i)
            i = end if end != -1 else n
        elif turtle and char == "#":
            end = text.find("\n", i)
            i = end if end != -1 else n
        elif char in "[{(":
            stack.append((char, i))
        elif char in _CLOSERS and stack and stack[-1][0] == _CLOSERS[char]:
            pairs.append((stack.pop()[1], i))
        i += 1
    return pairs


def _jsonld_prefixes(text: str) -> dict[str, str]:
    """Prefix definitions (``"cx-policy": "https://..."``) of every inline context in a JSON-LD document."""
    try:
        document = json.loads(text)
    except ValueError:
        return {}
    prefixes: dict[str, str] = {"odrl": "http://www.w3.org/ns/odrl/2/"}

    def visit(value: object) -> None:
        if isinstance(value, dict):
            context = value.get("@context")
            for ctx in _as_list(context):
                if isinstance(ctx, dict):
                    for key, iri in ctx.items():
                        if isinstance(iri, str) and iri.endswith(("/", "#")) and not key.startswith("@"):
                            prefixes[key] = iri
            for child in value.values():
                visit(child)
        elif isinstance(value, list):
            for child in value:
                visit(child)

    visit(document)
    return prefixes


def _as_list(value: object) -> Iterable[object]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]
