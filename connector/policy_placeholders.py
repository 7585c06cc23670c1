"""Fill a library policy's placeholders for one concrete offer: provider -> this connector's DID, asset -> dataset id.

WHY: the policies in ``policies/library`` are templates written once for every provider and every asset
(``odrl:assigner <urn:pactum:provider>``, ``odrl:target <urn:pactum:asset>``); a policy definition stores
them as written, so one definition can be offered on many assets. Only when the connector makes the offer
for one asset do the placeholders get their values, anywhere in the policy (the policy itself, its rules,
duties and consequences), so the consumer receives - and sends back - a policy about the real parties and
dataset. The input is never modified. Both functions sit on the catalog's hot path, so a policy without
placeholders costs one memo look-up (per policy hash, or in the parsed policy's own memo).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, TypeVar

from policies.model import Asset, Duty, Party, Policy, Rule

_Node = TypeVar("_Node", Rule, Duty)

PROVIDER_PLACEHOLDER = "urn:pactum:provider"
ASSET_PLACEHOLDER = "urn:pactum:asset"
PLACEHOLDERS = (PROVIDER_PLACEHOLDER, ASSET_PLACEHOLDER)
_LITERAL_KEYS = frozenset({"@context", "@value"})  # text, not IRIs: a literal "urn:pactum:asset" stays as written
_MEMO_LIMIT = 4096
_template_hashes: dict[str, bool] = {}  # policy hash -> has placeholders


def fill_placeholders(policy: Mapping[str, Any], *, provider: str, asset: str,
                      policy_hash: str | None = None) -> dict[str, Any]:
    """``policy`` with every placeholder IRI replaced (as a plain value or an ``{"@id": ...}`` node).

    Only whole values are replaced: an IRI that merely starts with ``urn:pactum:asset`` is something else.
    With ``policy_hash`` (the stored definition's hash) a policy known to have no placeholders is returned as a
    shallow copy without walking it again.
    """
    if policy_hash is not None:
        template = _template_hashes.get(policy_hash)
        if template is None:
            template = has_placeholders(policy)
            if len(_template_hashes) < _MEMO_LIMIT:
                _template_hashes[policy_hash] = template
        if not template:
            return dict(policy)
    values = {PROVIDER_PLACEHOLDER: provider, ASSET_PLACEHOLDER: asset}
    filled = _fill(dict(policy), values)
    assert isinstance(filled, dict)
    return filled


def fill_policy(policy: Policy, *, provider: str, asset: str) -> Policy:
    """The parsed ``policy`` with placeholder targets and parties filled in (the same object when it has none).

    WHY on the parsed form too: access policies are evaluated from the parsed, cached definition against a
    request whose target is the real dataset id; a template's ``urn:pactum:asset`` target would match no
    request. Filling the parsed policy avoids parsing the document again for every asset.
    """
    memo = policy._cache  # the parsed policy's own memo (compiled rules live there too); never compared/hashed
    template = memo.get("placeholders")
    if template is None:
        template = memo["placeholders"] = _mentions_placeholder(policy)
    if not template:
        return policy
    filled: dict[tuple[str, str], Policy] = memo.setdefault("filled", {})
    hit = filled.get((provider, asset))
    if hit is None:
        hit = _filled_policy(policy, provider, asset)
        if len(filled) < _MEMO_LIMIT:
            filled[(provider, asset)] = hit
    return hit


def _filled_policy(policy: Policy, provider: str, asset: str) -> Policy:
    values = {PROVIDER_PLACEHOLDER: provider, ASSET_PLACEHOLDER: asset}
    # a fresh _cache: replace() would share the template's, and with it the template's compiled rules
    return dataclasses.replace(policy, rules=tuple(_fill_node(r, values) for r in policy.rules), _cache={})


def _mentions_placeholder(policy: Policy) -> bool:
    def node_has(node: Rule | Duty) -> bool:
        if any(t.iri in PLACEHOLDERS for t in node.targets):
            return True
        if any(p.iri in PLACEHOLDERS for p in (*node.assigners, *node.assignees)):
            return True
        return any(node_has(d) for d in _children(node))

    return any(node_has(rule) for rule in policy.rules)


def _children(node: Rule | Duty) -> tuple[Duty, ...]:
    if isinstance(node, Rule):
        return (*node.duties, *node.remedies, *node.consequences)
    return node.consequences


def _fill_node(node: _Node, values: Mapping[str, str]) -> _Node:
    def asset(a: Asset) -> Asset:
        return dataclasses.replace(a, iri=values.get(a.iri or "", a.iri))

    def party(p: Party) -> Party:
        return dataclasses.replace(p, iri=values.get(p.iri or "", p.iri))

    changes: dict[str, Any] = {
        "targets": tuple(asset(a) for a in node.targets),
        "assigners": tuple(party(p) for p in node.assigners),
        "assignees": tuple(party(p) for p in node.assignees),
        "consequences": tuple(_fill_node(d, values) for d in node.consequences),
    }
    if isinstance(node, Rule):
        changes["duties"] = tuple(_fill_node(d, values) for d in node.duties)
        changes["remedies"] = tuple(_fill_node(d, values) for d in node.remedies)
    return dataclasses.replace(node, **changes)


def has_placeholders(policy: Any) -> bool:
    """True when a placeholder IRI is still somewhere in ``policy`` (a template, not yet an offer)."""
    if isinstance(policy, str):
        return policy in PLACEHOLDERS
    if isinstance(policy, Mapping):
        return any(has_placeholders(v) for k, v in policy.items() if k not in _LITERAL_KEYS)
    if isinstance(policy, list):
        return any(has_placeholders(v) for v in policy)
    return False


def _fill(node: Any, values: Mapping[str, str]) -> Any:
    if isinstance(node, str):
        return values.get(node, node)
    if isinstance(node, Mapping):
        return {key: (value if key in _LITERAL_KEYS else _fill(value, values)) for key, value in node.items()}
    if isinstance(node, list):
        return [_fill(item, values) for item in node]
    return node
