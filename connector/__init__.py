"""Pactum's connector: DSP protocol engine, management API, data plane, storage and CLI."""

__version__ = "0.1.0"
