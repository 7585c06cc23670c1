"""JSON-LD for DSP messages with pinned contexts only (never fetched from the network).

Inbound messages are brought to the compact form the DSP schemas describe: a message in that form (the
usual case, or plain JSON without ``@context``) is taken as it is; any other JSON-LD form (expanded, other
prefixes) is expanded and compacted again with the DSP context, using only the pinned context copies.

"In that form" means more than naming the DSP context: a message that names it but writes a property or
type the context has a term for as a compact or full IRI (``dspace:agreement``, ``odrl:permission``,
``odrl:Agreement``) says the same thing as the compact form, yet taken as it stands its ``agreement`` (or
``offer``, pids ...) would be missing. Such a message takes the expand/compact path too. An IRI the
context has no term for (``odrl:conflict``) is already what compaction would write, so it stays as sent.
"""

from __future__ import annotations

import copy
import json
from functools import cache
from importlib import resources
from typing import Any

from cachetools import LRUCache
from pyld import jsonld
from pyld.context_resolver import ContextResolver  # type: ignore[import-untyped]

from connector.protocol.errors import MessageInvalid

DSP_CONTEXT = "https://w3id.org/dspace/2025/1/context.jsonld"
ODRL_PROFILE_CONTEXT = "https://w3id.org/dspace/2025/1/odrl-profile.jsonld"
DSPACE_NS = "https://w3id.org/dspace/2025/1/"
ODRL_NS = "http://www.w3.org/ns/odrl/2/"
_PREFIXES = {"dspace:": DSPACE_NS, "odrl:": ODRL_NS}
_NOT_COMPACT = ("dspace:", "odrl:", DSPACE_NS, ODRL_NS)  # how IRIs that may have terms start


@cache
def pinned_contexts() -> dict[str, dict[str, Any]]:
    """URL -> context document, from ``connector/resources/contexts/INDEX.json``."""
    root = resources.files("connector.resources") / "contexts"
    index = json.loads((root / "INDEX.json").read_text("utf-8"))
    return {url: json.loads((root / entry["file"]).read_text("utf-8")) for url, entry in index.items()}


def document_loader(url: str, _options: dict[str, Any] | None = None) -> dict[str, Any]:
    """pyld loader that only knows the pinned copies; anything else is refused (no network at run time)."""
    document = pinned_contexts().get(url) or pinned_contexts().get(url.rstrip("/"))
    if document is None:
        raise MessageInvalid(f"JSON-LD context {url} is not one of the pinned contexts", code="context_not_pinned")
    return {"contextUrl": None, "documentUrl": url, "document": copy.deepcopy(document)}


def _context_urls(context: Any) -> list[Any]:
    return context if isinstance(context, list) else [context]


def is_compact_dsp(message: dict[str, Any]) -> bool:
    """True when the message uses exactly the DSP context (optionally with the ODRL profile) and its terms."""
    urls = _context_urls(message.get("@context"))
    return (bool(urls) and urls[0] == DSP_CONTEXT and all(u in (DSP_CONTEXT, ODRL_PROFILE_CONTEXT) for u in urls)
            and not _uses_iris_for_terms(message))


@cache
def termed_iris() -> frozenset[str]:
    """Every DSP/ODRL IRI the DSP context (with its type-scoped contexts and the ODRL profile) has a term for."""
    found: set[str] = set()

    def collect(context: Any) -> None:
        if not isinstance(context, dict):
            return
        for term, definition in context.items():
            if term.startswith("@"):
                continue
            iri = definition.get("@id") if isinstance(definition, dict) else definition
            if isinstance(iri, str) and iri != term:
                found.add(_expand_prefix(iri))
            if isinstance(definition, dict):
                collect(definition.get("@context"))

    for url in (DSP_CONTEXT, ODRL_PROFILE_CONTEXT):
        collect(pinned_contexts()[url].get("@context"))
    return frozenset(i for i in found if i.startswith((DSPACE_NS, ODRL_NS)))


def _expand_prefix(name: str) -> str:
    for prefix, namespace in _PREFIXES.items():
        if name.startswith(prefix):
            return namespace + name[len(prefix):]
    return name


def _is_termed_iri(name: str) -> bool:
    return name.startswith(_NOT_COMPACT) and _expand_prefix(name) in termed_iris()


def _uses_iris_for_terms(message: dict[str, Any]) -> bool:
    """True when any key or ``@type`` is an IRI the DSP context has a term for, or a nested node has its own
    context."""
    stack: list[Any] = [message]
    while stack:
        node = stack.pop()
        if isinstance(node, list):
            stack.extend(node)
            continue
        if not isinstance(node, dict):
            continue
        for key, value in node.items():
            if _is_termed_iri(key) or (key == "@context" and node is not message):
                return True
            if key == "@type":
                types = value if isinstance(value, list) else [value]
                if any(isinstance(t, str) and _is_termed_iri(t) for t in types):
                    return True
            elif isinstance(value, dict | list):
                stack.append(value)
    return False


def normalise(message: Any) -> dict[str, Any]:
    """The compact DSP form of an inbound message (see module docstring)."""
    if isinstance(message, list) and len(message) == 1:  # expanded JSON-LD arrives as a one-element array
        message = message[0]
    if not isinstance(message, dict):
        raise MessageInvalid("a DSP message must be a JSON object")
    expanded_form = any("://" in key for key in message)
    if "@context" not in message and not expanded_form:
        message = {"@context": [DSP_CONTEXT], **message}  # plain JSON is read with the DSP context
    if is_compact_dsp(message):
        return message
    for url in _context_urls(message.get("@context", [])):
        if isinstance(url, str):
            document_loader(url)  # raises for unpinned contexts before any processing
    try:
        # a context cache of this call's own: pyld's shared one is corrupted by the DSP ODRL profile being
        # both a referenced and an imported context (see connector.jsonld._options)
        # base None: a relative id (an EDC asset id such as "part-traceability" as target) stays as written
        # instead of being resolved against pyld's made-up default base http://example.org/base/
        options = {"documentLoader": document_loader, "base": None,
                   "contextResolver": ContextResolver(LRUCache(maxsize=64), document_loader)}
        expanded = jsonld.expand(message, options)
        compacted = jsonld.compact(expanded, {"@context": [DSP_CONTEXT]}, options)
    except MessageInvalid:
        raise
    except Exception as exc:  # pyld raises its own JsonLdError for malformed documents
        cause = getattr(exc, "cause", None)
        if isinstance(cause, MessageInvalid):
            raise cause from exc
        raise MessageInvalid(f"the message is not valid JSON-LD: {str(exc).splitlines()[0][:300]}",
                             code="jsonld_invalid") from exc
    compacted["@context"] = [DSP_CONTEXT]
    message_type = compacted.get("@type")
    if isinstance(message_type, str) and message_type.startswith("dspace:"):
        compacted["@type"] = message_type[len("dspace:"):]
    return compacted


def json_depth(value: Any, limit: int) -> int:
    """Nesting depth of a parsed JSON value, stopping early once past ``limit``."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    deepest = 0
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        if deepest > limit:
            return deepest
        if isinstance(node, dict):
            stack.extend((v, depth + 1) for v in node.values())
        elif isinstance(node, list):
            stack.extend((v, depth + 1) for v in node)
    return deepest
