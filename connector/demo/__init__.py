"""The multi-party supply-chain data-space demo: ``pactum demo``."""
