"""A pyld JSON-LD processor that reuses processed contexts across calls: same results, a fraction of the work.

pyld keys its own processed-context cache by the active context's ``_uuid``, but every type-scoped context
with ``@propagate: false`` (all of VC 2.0's) is applied to a fresh clone with a fresh ``_uuid``, so those
caches never hit and each canonicalization re-processes the same contexts (most of its time). This memo keys
on the identity of the (frozen, never mutated) active context plus the local context's value, and holds a
reference to the active context so its id cannot be reused while the entry lives. Only contexts loaded through
the pinned offline loader are memoised, so what a context means can never change under a cached entry.
Kept apart from ``identity.jsonld`` because pyld is heavy and that module is imported by JWT-only code.
"""

from __future__ import annotations

from typing import Any

from frozendict import frozendict
from pyld import jsonld

from identity.jsonld import document_loader

_MEMO_MAX = 512  # a handful of contexts in practice; the bound only matters for hostile input
_KEY_MAX = 32 * 1024  # an inline context bigger than this (larger than any pinned one) is processed, not kept
_processed: dict[tuple[Any, ...], tuple[Any, Any]] = {}


class OfflineProcessor(jsonld.JsonLdProcessor):  # type: ignore[misc]
    """A pyld processor that reuses processed contexts across calls (results unchanged, only faster)."""

    def _process_context(  # noqa: PLR0913 - pyld's signature
        self,
        active_ctx: Any,
        local_ctx: Any,
        options: dict[str, Any],
        override_protected: bool = False,
        propagate: bool = True,
        validate_scoped: bool = True,
        cycles: set[str] | None = None,
    ) -> Any:
        # only frozen active contexts are final; a plain dict is one pyld is still building (pre-validation)
        if cycles or type(active_ctx) is not frozendict or options.get("documentLoader") is not document_loader:
            return super()._process_context(active_ctx, local_ctx, options, override_protected, propagate,
                                            validate_scoped, cycles)
        local_key = local_ctx if isinstance(local_ctx, str) else repr(local_ctx)
        if len(local_key) > _KEY_MAX:
            return super()._process_context(active_ctx, local_ctx, options, override_protected, propagate,
                                            validate_scoped, cycles)
        key = (id(active_ctx), local_key, override_protected, propagate, validate_scoped,
               options.get("base"), options.get("processingMode"))
        hit = _processed.get(key)
        if hit is not None and hit[0] is active_ctx:
            return hit[1]
        result = super()._process_context(active_ctx, local_ctx, options, override_protected, propagate,
                                          validate_scoped, cycles)
        if len(_processed) >= _MEMO_MAX:
            _processed.clear()
        _processed[key] = (active_ctx, result)
        return result


def memo_size() -> int:
    """How many processed contexts are memoised (tests and diagnostics)."""
    return len(_processed)
