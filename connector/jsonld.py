"""The connector's JSON-LD: pinned contexts only, EDC-style default vocabulary, expansion and compaction.

WHY: the management API speaks EDC's JSON-LD dialect (bare terms mean ``https://w3id.org/edc/v0.0.1/ns/``)
and DSP messages speak the DSP 2025-1 context. Both are read by expanding to full IRIs first, so a client
may use any spelling (bare, prefixed, full IRI) and still mean the same thing. Contexts are never fetched:
the loader serves the connector's pinned copies plus those of the policies and identity packages, and an
unknown context URL is a clear ``JsonLdError`` instead of a network call.
"""

from __future__ import annotations

import copy
import json
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

from cachetools import LRUCache
from pyld import jsonld  # type: ignore[import-untyped]
from pyld.context_resolver import ContextResolver  # type: ignore[import-untyped]

from connector.errors import ConnectorError

EDC = "https://w3id.org/edc/v0.0.1/ns/"
ODRL = "http://www.w3.org/ns/odrl/2/"
DCAT = "http://www.w3.org/ns/dcat#"
DCT = "http://purl.org/dc/terms/"
DSPACE = "https://w3id.org/dspace/2025/1/"
RDF_TYPE = "@type"

DSP_CONTEXT_URL = "https://w3id.org/dspace/2025/1/context.jsonld"
ODRL_CONTEXT_URL = "http://www.w3.org/ns/odrl.jsonld"

# The context management responses are compacted with (EDC's shape: @vocab edc plus the usual prefixes).
EDC_CONTEXT: dict[str, Any] = {
    "@vocab": EDC,
    "edc": EDC,
    "odrl": ODRL,
    "dcat": DCAT,
    "dct": DCT,
    "dspace": DSPACE,
}

_PREFIXES = {"edc": EDC, "odrl": ODRL, "dcat": DCAT, "dct": DCT, "dspace": DSPACE}


class JsonLdError(ConnectorError):
    """A JSON-LD document that cannot be read (syntax, unknown context, bad term definition)."""

    code = "jsonld_invalid"
    status = 400


@cache
def _connector_index() -> dict[str, str]:
    folder = resources.files("connector.resources.contexts")
    raw = json.loads(folder.joinpath("INDEX.json").read_text(encoding="utf-8"))
    return {url.split("#", 1)[0]: entry["file"] for url, entry in raw.items()}


@cache
def _connector_context(name: str) -> dict[str, Any]:
    folder = resources.files("connector.resources.contexts")
    doc: dict[str, Any] = json.loads(folder.joinpath(name).read_text(encoding="utf-8"))
    return doc


def pinned_context(url: str) -> dict[str, Any]:
    """The pinned document for ``url`` from the connector, policies or identity copies (a fresh copy)."""
    key = url.split("#", 1)[0]
    name = _connector_index().get(key)
    if name is not None:
        return copy.deepcopy(_connector_context(name))
    from policies.errors import PolicyError
    from policies.jsonld import pinned_context as policies_context

    try:
        return copy.deepcopy(policies_context(key))
    except PolicyError:
        pass
    from identity.errors import IdentityError
    from identity.jsonld import get_context as identity_context

    try:
        return identity_context(key)
    except IdentityError:
        pass
    raise JsonLdError(f"JSON-LD context {url} is not pinned in Pactum; refusing to fetch it "
                      f"(use an inline context or one of the pinned ones)", code="jsonld_context_unknown")


def document_loader(url: str, options: dict[str, Any] | None = None) -> dict[str, Any]:
    """pyld ``documentLoader`` that answers from the pinned copies only."""
    return {"contextUrl": None, "documentUrl": url, "document": pinned_context(url)}


def _options(**extra: Any) -> dict[str, Any]:
    """pyld options: pinned loader, relative ids kept, and a context cache of this call's own.

    ``base`` None keeps relative ids such as "asset-1" as they are (EDC ids are plain strings, not IRIs).
    WHY a private ContextResolver: pyld's shared resolved-context cache mixes up a context used both as a
    referenced context and as an ``@import`` (the DSP ODRL profile is both: next to the DSP context in
    standalone policies, imported by the DSP context's message types); a later DSP compaction anywhere in
    the process then fails with "a term definition must not contain xsd". A per-call cache cannot leak.
    """
    resolver = ContextResolver(LRUCache(maxsize=64), document_loader)
    return {"documentLoader": document_loader, "base": None, "contextResolver": resolver, **extra}


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def with_default_vocab(document: Mapping[str, Any], vocab: str = EDC) -> dict[str, Any]:
    """A copy whose context starts with ``@vocab`` (and the usual prefixes), as EDC injects it.

    The client's own context comes after ours, so a client that sets its own ``@vocab`` or redefines a
    prefix wins; a client that sends no context at all still gets bare terms read in the EDC namespace.
    """
    doc = dict(document)
    default = {**EDC_CONTEXT, "@vocab": vocab}
    doc["@context"] = [default, *_as_list(doc.get("@context"))]
    return doc


def expand(document: Any, *, default_vocab: str | None = EDC) -> list[dict[str, Any]]:
    """Expanded JSON-LD (a list of node objects); ``default_vocab`` None leaves the context as given.

    The common management bodies take the fast path (:func:`_fast_expand`); whatever it does not handle, and
    every invalid document, is expanded by pyld itself, so results and error messages are pyld's.
    """
    if isinstance(document, Mapping) and default_vocab is not None:
        document = with_default_vocab(document, default_vocab)
    fast = _fast_expand(document)
    if fast is not None:
        return fast
    return pyld_expand(document)


def pyld_expand(document: Any) -> list[dict[str, Any]]:
    """pyld's own expansion of ``document`` as given (the reference the fast path must equal)."""
    try:
        result: list[dict[str, Any]] = jsonld.expand(document, _options())
    except ConnectorError:
        raise
    except jsonld.JsonLdError as exc:
        raise _ours(exc) or JsonLdError(f"invalid JSON-LD: {_pyld_message(exc)}") from exc
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        raise JsonLdError(f"invalid JSON-LD: {exc}") from exc
    return result


# ---- fast expansion of the common management bodies ---------------------------------------------------------
#
# WHY: pyld re-processes every context of every request (a fresh resolver per call keeps its cache bug away, see
# _options) and walks each value through its general algorithm; a QuerySpec with 50 ids took ~1.5 ms. The fast
# path below reuses the *processed* active context of each distinct context value and walks the document with
# only the JSON-LD features management bodies use: terms, prefixes, @vocab, @id, @type, type coercion (done by
# pyld's own _expand_value), nested node objects, typed literals, arrays and nested @context values. Every IRI
# and value is expanded by pyld's own functions against pyld's own active context; anything else (@language,
# @list, @graph, @reverse, containers other than @set, scoped contexts, @propagate, a keyword collision, an error
# of any kind) makes the fast path give up and the document is expanded by pyld from scratch.

_PROCESSOR = jsonld.JsonLdProcessor()
_ARRAY_CONTAINERS: tuple[list[str], ...] = ([], ["@set"])
_VALUE_OPTIONS: dict[str, Any] = {"base": None}  # all _expand_value reads from the options
_MAX_CONTEXTS = 256
_MAX_MEMO = 1024


class _NotFast(Exception):
    """The document uses something the fast path leaves to pyld."""


@dataclass
class _ActiveContext:
    """pyld's processed active context for one context chain, plus memoised term expansions.

    ``iris`` memoises ``_expand_iri(active, term, vocab=True)``, ``properties`` what a key expands to as a
    property and ``plain`` whether a term's values need no coercion; all are pure functions of ``active``,
    which is never modified after it is built, so they never go stale (each is cleared when it gets large).
    """

    key: str
    active: dict[str, Any]
    iris: dict[str, Any] = field(default_factory=dict)
    properties: dict[str, str] = field(default_factory=dict)
    plain: dict[str, bool] = field(default_factory=dict)

    def iri(self, term: str) -> Any:
        found = self.iris.get(term, self)
        if found is self:
            if len(self.iris) >= _MAX_MEMO:
                self.iris.clear()
            found = self.iris[term] = _PROCESSOR._expand_iri(self.active, term, vocab=True)
        return found

    def property_of(self, key: str) -> str:
        """The expanded key: a keyword, an absolute IRI, or "" for a key pyld drops; _NotFast if unusual."""
        found = self.properties.get(key)
        if found is None:
            prop = self.iri(key)
            if type(prop) is not str or not prop:
                raise _NotFast
            if prop[0] != "@" and not jsonld._is_absolute_iri(prop):
                prop = ""  # pyld drops properties that expand to no absolute IRI
            if len(self.properties) >= _MAX_MEMO:
                self.properties.clear()
            found = self.properties[key] = prop
        return found

    def is_plain(self, term: str) -> bool:
        """True when a scalar value of ``term`` expands to ``{"@value": value}`` unchanged."""
        found = self.plain.get(term)
        if found is None:
            if len(self.plain) >= _MAX_MEMO:
                self.plain.clear()
            mapping = self.active["mappings"].get(term) or {}
            found = self.plain[term] = not any(k in mapping or k in self.active
                                               for k in ("@type", "@language", "@direction"))
        return found


class _ContextCache:
    """Processed active contexts by context chain: ``key`` is the JSON text of every context from the root down.

    Invalidation: none is needed because nothing a key depends on can change. The key holds the complete context
    values (serialised at the time of the call, so a caller that later mutates its dict gets a new key), the
    parent chain, and the pinned context documents are package files loaded once. Entries are evicted least
    recently used beyond ``_MAX_CONTEXTS`` so arbitrary client contexts cannot grow memory without bound.
    """

    def __init__(self, size: int) -> None:
        self._entries: LRUCache[str, _ActiveContext | None] = LRUCache(maxsize=size)
        self._lock = threading.Lock()

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)

    def child(self, parent: _ActiveContext, local: Any) -> _ActiveContext:
        """The active context after ``local`` is applied to ``parent`` (processed by pyld on a miss)."""
        if not _plain_json(local):
            raise _NotFast  # e.g. a non-string key, which json.dumps would quietly turn into one
        try:
            key = parent.key + "\n" + json.dumps(local, ensure_ascii=False, allow_nan=False)
        except ValueError as exc:
            raise _NotFast from exc
        with self._lock:
            found = self._entries.get(key, parent)
        if found is parent:
            found = _processed(key, parent, local)
            with self._lock:
                self._entries[key] = found
        if found is None:
            raise _NotFast
        return found


_CONTEXTS = _ContextCache(_MAX_CONTEXTS)
_INITIAL = _ActiveContext("", _PROCESSOR._get_initial_context({"processingMode": "json-ld-1.1"}))


_JSON_SCALARS = frozenset({str, int, float, bool, type(None)})


def _plain_json(value: Any) -> bool:
    """True when ``value`` is dicts with string keys, lists and JSON scalars only (so its JSON text is exact)."""
    stack = [value]
    while stack:
        node = stack.pop()
        kind = type(node)
        if kind is dict:
            if any(type(k) is not str for k in node):
                return False
            stack.extend(node.values())
        elif kind is list:
            stack.extend(node)
        elif kind not in _JSON_SCALARS:
            return False
    return True


def _processed(key: str, parent: _ActiveContext, local: Any) -> _ActiveContext | None:
    """pyld's processing of ``local`` on ``parent``; None when the result needs features the fast path lacks."""
    try:
        active = _PROCESSOR._process_context(parent.active, local, _expansion_options())
    except Exception:  # pyld reports it again, with its own message, on the full expansion
        return None
    if active.get("previousContext") is not None:
        return None
    for mapping in active["mappings"].values():
        if mapping is None:
            continue
        if (mapping.get("reverse") or "@context" in mapping or "@nest" in mapping or mapping.get("@type") == "@json"
                or _as_list(mapping.get("@container")) not in _ARRAY_CONTAINERS):
            return None
    return _ActiveContext(key, active)


def _expansion_options() -> dict[str, Any]:
    """The options pyld's expand() works with after its defaults are applied (see _options)."""
    return {"isFrame": False, "keepFreeFloatingNodes": False, "extractAllScripts": False,
            "processingMode": "json-ld-1.1", **_options()}


def _fast_expand(document: Any) -> list[dict[str, Any]] | None:
    """The expansion pyld gives for ``document``, or None when the fast path does not handle it."""
    if type(document) is not dict:
        return None
    try:
        node = _node(_INITIAL, document, top=True)
    except Exception:  # _NotFast, or anything odd: pyld, the reference, expands it and words any error
        return None
    return [] if node is None else [node]


def _add(subject: dict[str, Any], prop: str, value: Any, as_array: bool) -> None:
    """pyld's ``add_value`` with duplicates allowed (what expansion uses)."""
    if type(value) is list:
        if not value and as_array and prop not in subject:
            subject[prop] = []
        for item in value:
            _add(subject, prop, item, as_array)
    elif prop in subject:
        if type(subject[prop]) is not list:
            subject[prop] = [subject[prop]]
        subject[prop].append(value)
    else:
        subject[prop] = [value] if as_array else value


def _node(ctx: _ActiveContext, element: dict[str, Any], *, top: bool = False) -> dict[str, Any] | None:
    """One node or value object (pyld's _expand on an object without list, set, graph or reverse features)."""
    if "@context" in element:
        ctx = _CONTEXTS.child(ctx, element["@context"])
    out: dict[str, Any] = {}
    type_as_list = False
    for key, value in sorted(element.items()):
        if key == "@context":
            continue
        if type(key) is not str:
            raise _NotFast
        prop = ctx.property_of(key)
        if not prop:
            continue
        if prop[0] == "@":
            if prop in out and prop != "@type":
                raise _NotFast  # colliding keywords: pyld's error
            if prop == "@id":
                if type(value) is not str:
                    raise _NotFast
                out["@id"] = _PROCESSOR._expand_iri(ctx.active, value, base=None)
            elif prop == "@type":
                type_as_list = type_as_list or type(value) is list
                types = value if type(value) is list else [value]
                if any(type(t) is not str for t in types):
                    raise _NotFast
                expanded_types = [ctx.iri(t) for t in types]
                if any(type(t) is not str for t in expanded_types):
                    raise _NotFast  # a type term mapped to null
                _add(out, "@type", expanded_types, False)
            elif prop == "@value" and not top and type(value) in _LITERALS:
                out["@value"] = value
            else:
                raise _NotFast
            continue
        expanded = _value(ctx, key, value)
        if expanded is not None:
            _add(out, prop, expanded, True)
    if "@value" in out:
        return _value_object(out, type_as_list)
    if "@type" in out and type(out["@type"]) is not list:
        out["@type"] = [out["@type"]]
    if top and (not out or (len(out) == 1 and "@id" in out)):
        return None
    return out


_LITERALS = frozenset({str, int, float, bool})


def _value_object(out: dict[str, Any], type_as_list: bool) -> dict[str, Any]:
    """A literal with an optional datatype, as pyld checks it; anything else (language, errors) goes to pyld."""
    datatype = out.get("@type")
    if (set(out) - {"@value", "@type"} or type_as_list
            or (datatype is not None and (type(datatype) is not str or datatype.startswith("_:")
                                          or not jsonld._is_absolute_iri(datatype)))):
        raise _NotFast
    return out


def _value(ctx: _ActiveContext, term: str, value: Any) -> Any:
    """The expansion of the value of property ``term`` (None: dropped)."""
    kind = type(value)
    if kind is str or kind is int or kind is float or kind is bool:
        if ctx.is_plain(term):
            return {"@value": value}
        return _PROCESSOR._expand_value(ctx.active, term, value, _VALUE_OPTIONS)
    if value is None:
        return None
    if kind is list:
        out: list[Any] = []
        for item in value:
            expanded = _value(ctx, term, item)
            if expanded is None:
                continue
            if type(expanded) is list:
                out.extend(expanded)
            else:
                out.append(expanded)
        return out
    if kind is dict:
        return _node(ctx, value)
    raise _NotFast


def expand_one(document: Any, *, default_vocab: str | None = EDC, what: str = "document") -> dict[str, Any]:
    """Exactly one top-level node (the usual shape of a management request body)."""
    nodes = expand(document, default_vocab=default_vocab)
    if not nodes and isinstance(document, Mapping) and isinstance(document.get("@id"), str):
        return {"@id": document["@id"]}  # JSON-LD drops a node that has nothing but its @id
    if len(nodes) != 1:
        raise JsonLdError(f"expected one JSON-LD {what}, found {len(nodes)} top-level nodes")
    return nodes[0]


def compact(document: Any, context: Any = None) -> dict[str, Any]:
    """Compact with ``context`` (EDC's management context by default); the context is included in the output."""
    ctx = EDC_CONTEXT if context is None else context
    try:
        result: dict[str, Any] = jsonld.compact(document, ctx, _options(compactArrays=True))
    except ConnectorError:
        raise
    except jsonld.JsonLdError as exc:
        raise _ours(exc) or JsonLdError(f"cannot compact JSON-LD: {_pyld_message(exc)}") from exc
    return result


def _causes(exc: BaseException) -> list[BaseException]:
    """The chain below a pyld error (pyld keeps it in ``cause``, ``details['cause']`` or ``__cause__``)."""
    chain: list[BaseException] = []
    current: Any = exc
    for _ in range(10):
        details = getattr(current, "details", None)
        nxt = (getattr(current, "cause", None) or (details.get("cause") if isinstance(details, dict) else None)
               or current.__cause__ or current.__context__)
        if not isinstance(nxt, BaseException) or nxt in chain:
            break
        chain.append(nxt)
        current = nxt
    return chain


def _ours(exc: BaseException) -> ConnectorError | None:
    """Our own error (e.g. an unpinned context) that pyld wrapped."""
    return next((c for c in _causes(exc) if isinstance(c, ConnectorError)), None)


def _pyld_message(exc: BaseException) -> str:
    """pyld nests the real reason; surface the innermost readable message."""
    chain = _causes(exc)
    current = chain[-1] if chain else exc
    args = getattr(current, "args", ())
    text = args[0] if args and isinstance(args[0], str) else str(current)
    return text.splitlines()[0] if text else current.__class__.__name__


def expand_iri(term: str, vocab: str = EDC) -> str:
    """A bare, prefixed (``edc:name``) or full IRI term as a full IRI; bare terms go to ``vocab``."""
    if term.startswith(("http://", "https://", "urn:", "did:")):
        return term
    prefix, sep, local = term.partition(":")
    if sep and prefix in _PREFIXES:
        return _PREFIXES[prefix] + local
    return vocab + term


def compact_iri(iri: str, vocab: str = EDC) -> str:
    """The short spelling EDC_CONTEXT would give: bare for ``vocab`` terms, ``prefix:local`` for known ones."""
    if iri.startswith(vocab) and "/" not in iri[len(vocab):] and "#" not in iri[len(vocab):]:
        return iri[len(vocab):]
    for prefix, ns in _PREFIXES.items():
        if iri.startswith(ns) and ns != vocab:
            return f"{prefix}:{iri[len(ns):]}"
    return iri


# ---- reading expanded nodes ------------------------------------------------------------------------------

def values(node: Mapping[str, Any], iri: str) -> list[Any]:
    """Every value of property ``iri`` in an expanded node."""
    return _as_list(node.get(iri))


def plain(value: Any) -> Any:
    """An expanded value as plain JSON: literals unwrapped, IRIs as strings, nodes as dicts keyed by IRI."""
    if isinstance(value, list):
        items = [plain(v) for v in value]
        return items[0] if len(items) == 1 else items
    if not isinstance(value, Mapping):
        return value
    if "@value" in value:
        return value["@value"]
    if "@list" in value:
        return [plain(v) for v in value["@list"]]
    if set(value) == {"@id"}:
        return value["@id"]
    out: dict[str, Any] = {}
    for key, inner in value.items():
        if key == "@type":
            types = _as_list(inner)
            out["@type"] = types[0] if len(types) == 1 else types
        elif key == "@id":
            out["@id"] = inner
        else:
            out[key] = plain(inner)
    return out


def first(node: Mapping[str, Any], iri: str, default: Any = None) -> Any:
    """The first value of ``iri`` as plain JSON, or ``default``."""
    found = values(node, iri)
    return plain(found[0]) if found else default


def string(node: Mapping[str, Any], iri: str, *, what: str, required: bool = False) -> str | None:
    """A single string property; JsonLdError naming the field when it has another shape."""
    found = values(node, iri)
    if not found:
        if required:
            raise JsonLdError(f"'{compact_iri(iri)}' is required")
        return None
    if len(found) > 1:
        raise JsonLdError(f"'{compact_iri(iri)}' must have one value, found {len(found)} ({what})")
    value = plain(found[0])
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise JsonLdError(f"'{compact_iri(iri)}' must be a string ({what})")
    return str(value)


def types_of(node: Mapping[str, Any]) -> list[str]:
    return [str(t) for t in _as_list(node.get("@type"))]


def properties_of(node: Mapping[str, Any], skip: Iterable[str] = ()) -> dict[str, Any]:
    """All non-keyword properties of an expanded node as ``{IRI: plain value}``."""
    skipped = set(skip)
    return {k: plain(v) for k, v in node.items() if not k.startswith("@") and k not in skipped}
