"""Pactum's ODRL 2.2 policy engine: parse, validate, evaluate and explain usage policies.

This package stands alone: it never imports ``connector`` or ``identity``.
"""
