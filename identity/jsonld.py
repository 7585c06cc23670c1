"""Offline JSON-LD: a pyld document loader serving the pinned contexts shipped in identity/resources/contexts.

Contexts are NEVER fetched at run time (that would let whoever serves a context change what a signature
means). Unknown context URLs fail with a clear error. Parsed contexts are cached in memory.
"""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

from identity.errors import IdentityError


class ContextNotPinned(IdentityError):
    """A JSON-LD document references a context URL Pactum has no pinned copy of."""

    code = "jsonld_context_unknown"


# URLs that serve the same document as an INDEX.json entry (aliases, trailing variants).
_ALIASES = {
    "https://www.w3.org/ns/credentials/status/v1": "https://www.w3.org/ns/credentials/status/v1",
    "https://w3c.github.io/vc-bitstring-status-list/contexts/v1.jsonld": "https://www.w3.org/ns/credentials/status/v1",
    "https://www.w3.org/ns/did/v1.1": "https://www.w3.org/ns/did/v1",
    "https://w3id.org/did/v1": "https://www.w3.org/ns/did/v1",
    "https://w3id.org/security/data-integrity/v2": "https://w3id.org/security/data-integrity/v2",
}


def _contexts_dir() -> Path:
    return Path(__file__).resolve().parent / "resources" / "contexts"


@cache
def _index() -> dict[str, str]:
    raw = json.loads((_contexts_dir() / "INDEX.json").read_text("utf-8"))
    return {url: entry["file"] for url, entry in raw.items()}


@cache
def _load_pinned(url: str) -> dict[str, Any]:
    index = _index()
    target = _ALIASES.get(url, url)
    name = index.get(target) or index.get(target.rstrip("/"))
    if name is None:
        raise ContextNotPinned(f"JSON-LD context {url} is not pinned in Pactum; refusing to fetch it")
    doc = json.loads((_contexts_dir() / name).read_text("utf-8"))
    if not isinstance(doc, dict):
        raise ContextNotPinned(f"pinned context {name} is not a JSON object")
    return doc


def pinned_context_urls() -> list[str]:
    """Every context URL this loader can serve."""
    return sorted(set(_index()) | set(_ALIASES))


def get_context(url: str) -> dict[str, Any]:
    """The pinned context document for ``url`` (a copy: callers may mutate)."""
    return copy.deepcopy(_load_pinned(url))


def document_loader(url: str, options: dict[str, Any] | None = None) -> dict[str, Any]:
    """pyld-compatible loader (``jsonld.set_document_loader`` or ``options['documentLoader']``)."""
    # tag "static" lets pyld keep the processed context in its shared cache across calls
    return {"contextUrl": None, "documentUrl": url, "document": copy.deepcopy(_load_pinned(url)), "tag": "static"}
