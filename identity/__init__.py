"""Pactum's identity layer: keys, DIDs, wallet, verifiable credentials and DCP.

This package stands alone: it never imports ``connector`` or ``policies``.
"""
