"""The terms lint accepts: the ODRL 2.2 vocabulary (read from the pinned ``ODRL22.ttl``) plus registered profiles.

Reading the Recommendation's own Turtle keeps lint and the vocabulary in step; profiles add left operands
through ``policies.profiles.registry`` so a new profile is understood by lint the moment it is registered.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

import rdflib
from rdflib.namespace import RDF

from policies.operands import LeftOperandSpec
from policies.profiles import registry
from policies.vocab import ODRL, OPERATORS

ODRL_NS = rdflib.Namespace(ODRL)


@lru_cache(maxsize=1)
def odrl_vocabulary() -> rdflib.Graph:
    """The pinned ODRL 2.2 vocabulary graph (parsed once per process)."""
    graph = rdflib.Graph()
    data = resources.files("policies.resources.vocab").joinpath("ODRL22.ttl").read_bytes()
    graph.parse(data=data, format="turtle")
    return graph


@lru_cache(maxsize=1)
def odrl_actions() -> frozenset[str]:
    """Every ``odrl:Action`` the ODRL 2.2 vocabulary defines (use, read, distribute, delete, ...)."""
    graph = odrl_vocabulary()
    return frozenset(str(s) for s in graph.subjects(RDF.type, ODRL_NS.Action) if isinstance(s, rdflib.URIRef))


@lru_cache(maxsize=1)
def odrl_left_operands() -> frozenset[str]:
    """Every ``odrl:LeftOperand`` of the ODRL 2.2 vocabulary."""
    graph = odrl_vocabulary()
    return frozenset(str(s) for s in graph.subjects(RDF.type, ODRL_NS.LeftOperand)
                     if isinstance(s, rdflib.URIRef))


@lru_cache(maxsize=1)
def odrl_terms() -> frozenset[str]:
    """Every term the ODRL 2.2 vocabulary defines (classes, properties, individuals)."""
    graph = odrl_vocabulary()
    return frozenset(str(s) for s in graph.subjects() if isinstance(s, rdflib.URIRef) and str(s).startswith(ODRL))


@lru_cache(maxsize=1)
def odrl_properties() -> frozenset[str]:
    """The ODRL 2.2 terms that are properties (``rdf:Property``), i.e. may be used as predicates."""
    graph = odrl_vocabulary()
    return frozenset(str(s) for s in graph.subjects(RDF.type, RDF.Property)
                     if isinstance(s, rdflib.URIRef) and str(s).startswith(ODRL))


def is_known_action(iri: str) -> bool:
    """True for ODRL 2.2 actions."""
    return iri in odrl_actions()


def left_operand_spec(iri: str) -> LeftOperandSpec | None:
    """The engine's spec for a left operand (core or profile), or None when nobody understands it."""
    return registry.left_operand(iri)


def is_known_left_operand(iri: str) -> bool:
    """True when the vocabulary or a registered profile defines the left operand."""
    return iri in odrl_left_operands() or left_operand_spec(iri) is not None


def is_known_operator(iri: str) -> bool:
    """True for the twelve ODRL 2.2 operators."""
    return iri in OPERATORS


def known_profile_namespaces() -> tuple[str, ...]:
    """Namespaces of every registered profile, for hints on unknown terms."""
    return tuple(ns for profile in registry.profiles() for ns in profile.namespaces)


def is_known_profile(iri: str) -> bool:
    """True when ``odrl:profile`` names a profile Pactum has registered."""
    return registry.find(iri) is not None
