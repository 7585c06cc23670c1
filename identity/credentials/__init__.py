"""Verifiable credentials: VC-JWT (VCDM 2.0 and 1.1 profiles), Data Integrity, status lists, trust, verification."""
