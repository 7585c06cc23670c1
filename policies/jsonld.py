"""A pyld document loader that serves pinned JSON-LD contexts and refuses everything else.

Policies arrive from other connectors; fetching a context they name would let them make us call any URL
and would make evaluation depend on the network. So only contexts listed in ``resources/contexts/INDEX.json``
(or registered by a profile) are ever loaded, and an unknown one is a clear error naming the IRI.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from functools import lru_cache
from importlib import resources
from typing import Any

from policies.errors import PolicyError


class ContextNotPinnedError(PolicyError):
    """A JSON-LD document named a remote context that Pactum does not ship."""

    code = "context_not_pinned"


_EXTRA: dict[str, Any] = {}


def register_context(url: str, document: dict[str, Any]) -> None:
    """Pin one more context (used by profiles that ship their own context)."""
    _EXTRA[_normalise(url)] = document
    _pinned.cache_clear()


def _normalise(url: str) -> str:
    return url.split("#", 1)[0]


@lru_cache(maxsize=1)
def _pinned() -> dict[str, Any]:
    folder = resources.files("policies.resources.contexts")
    index = json.loads(folder.joinpath("INDEX.json").read_text(encoding="utf-8"))
    docs: dict[str, Any] = {}
    loaded: dict[str, Any] = {}
    for url, entry in index.items():
        name = entry["file"]
        if name not in loaded:
            loaded[name] = json.loads(folder.joinpath(name).read_text(encoding="utf-8"))
        docs[_normalise(url)] = loaded[name]
    docs.update(_EXTRA)
    return docs


def pinned_urls() -> frozenset[str]:
    """Every context URL the loader will serve."""
    return frozenset(_pinned())


def pinned_context(url: str) -> dict[str, Any]:
    """The pinned document for a context URL, or ContextNotPinnedError."""
    doc = _pinned().get(_normalise(url))
    if doc is None:
        raise ContextNotPinnedError(
            f"JSON-LD context {url} is not pinned in Pactum; refusing to fetch it (pin it or remove it)"
        )
    return doc


def document_loader() -> Callable[[str, dict[str, Any] | None], dict[str, Any]]:
    """A pyld ``documentLoader`` answering only from the pinned set."""

    def load(url: str, options: dict[str, Any] | None = None) -> dict[str, Any]:
        # a fresh copy each time: pyld rewrites loaded documents in place (e.g. while resolving @import)
        return {"contextUrl": None, "documentUrl": url, "document": copy.deepcopy(pinned_context(url))}

    return load
