"""Decentralized Claims Protocol 1.0: self-issued tokens, credential service, presentation client, issuance."""
