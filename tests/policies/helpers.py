"""Small builders shared by the policy tests."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from policies import Policy, Request, StateOfWorld, parse_policy

PREFIXES = """@prefix odrl: <http://www.w3.org/ns/odrl/2/> .
@prefix xsd: <http://www.w3.org/2001/XMLSchema#> .
@prefix rdf: <http://www.w3.org/1999/02/22-rdf-syntax-ns#> .
@prefix ex: <http://example.org/> .
@prefix xb: <https://w3id.org/pactum/xborder/v1#> .
@prefix cx: <https://w3id.org/catenax/policy/> .
"""

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def ttl(body: str) -> Policy:
    """A policy from a Turtle body (prefixes added)."""
    return parse_policy(PREFIXES + body, format="turtle")


def one_permission(constraint: str, *, action: str = "odrl:use", extra: str = "") -> Policy:
    """``ex:p`` with one permission ``ex:r`` carrying the given constraint body."""
    return ttl(f"""
ex:p a odrl:Set ; odrl:permission ex:r .
ex:r odrl:action {action} ; odrl:target ex:asset ; odrl:constraint [ {constraint} ] {extra} .
""")


def request(action: str = "use", **kw: Any) -> Request:
    kw.setdefault("target", "http://example.org/asset")
    kw.setdefault("assignee", "http://example.org/alice")
    return Request(action=action, **kw)


def state(**kw: Any) -> StateOfWorld:
    kw.setdefault("now", NOW)
    return StateOfWorld(**kw)
