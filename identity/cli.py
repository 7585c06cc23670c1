"""``pactum identity`` and ``pactum authority``: wallet, DIDs, credentials and the data space authority."""

from __future__ import annotations

import typer

app = typer.Typer(
    help="Keys, DIDs, wallet and verifiable credentials.\n\nExample: pactum identity init --did did:web:example.com",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
authority_app = typer.Typer(
    help="Run the data space authority (issuer, status list, directory, trust list).\n\n"
    "Example: pactum authority serve --config deploy/authority.toml",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
