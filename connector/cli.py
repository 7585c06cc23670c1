"""The ``pactum`` command: one entry point that mounts each package's own CLI.

``pactum policies`` and ``pactum identity`` / ``pactum authority`` come from their packages (each also
runs alone); ``pactum connector`` and ``pactum demo`` live here. User errors print one line and exit 1;
``--debug`` (anywhere on the command line) shows the traceback instead.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from connector.audit_cli import audit_app
from connector.config import load_settings
from connector.demo import demo_command
from connector.errors import ConnectorError
from identity.cli import app as identity_app
from identity.cli import authority_app
from identity.errors import IdentityError
from policies.cli import app as policies_app
from policies.errors import PolicyError

USER_ERRORS: tuple[type[BaseException], ...] = (ConnectorError, PolicyError, IdentityError)

app = typer.Typer(
    name="pactum",
    help=(
        "Pactum, a data-space connector that keeps agreements.\n\n"
        "Examples:\n\n"
        "  pactum demo                                   run the multi-party data-space demo\n\n"
        "  pactum policies lint policies/library/*.ttl   check ODRL policies\n\n"
        "  pactum connector config check supplier.toml   validate a connector configuration\n\n"
        "  pactum connector serve --config supplier.toml start a connector"
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
connector_app = typer.Typer(
    help="Run and inspect a connector.\n\nExample: pactum connector serve --config deploy/config/supplier.toml",
    no_args_is_help=True,
)
config_app = typer.Typer(help="Work with connector configuration files.", no_args_is_help=True)
connector_app.add_typer(config_app, name="config")
connector_app.add_typer(audit_app, name="audit")
app.add_typer(policies_app, name="policies", help="Parse, lint, evaluate and explain ODRL policies.")
app.add_typer(identity_app, name="identity", help="Keys, DIDs, wallet and verifiable credentials.")
app.add_typer(authority_app, name="authority", help="Run the data space authority (issuer and directory).")
app.add_typer(connector_app, name="connector")
app.command("demo")(demo_command)

_out = Console()


@app.callback()
def _root(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks for errors.")] = False,
) -> None:
    """Pactum, a data-space connector that keeps agreements."""


@config_app.command("check")
def config_check(
    file: Annotated[Path, typer.Argument(help="The connector's TOML configuration.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the validated settings as JSON.")] = False,
) -> None:
    """Validate a configuration file, with PACTUM_* environment overrides applied.

    Example: pactum connector config check deploy/config/supplier.toml
    """
    settings = load_settings(file)
    if as_json:
        typer.echo(json.dumps(settings.model_dump(mode="json"), indent=2))
        return
    _out.print(f"[green]ok[/green] {file}: participant {settings.participant.name!r}, DID {settings.did}, "
               f"storage {settings.storage.url.split(':', 1)[0]}")


@connector_app.command("serve")
def serve(
    config: Annotated[Path, typer.Option("--config", "-c", help="The connector's TOML configuration.")],
) -> None:
    """Start a connector: protocol, management, data-plane and identity servers in one process.

    Example: pactum connector serve --config deploy/config/supplier.toml
    """
    from connector.app import serve as serve_connector

    serve_connector(load_settings(config))


def main(argv: list[str] | None = None) -> int:
    """Console-script entry point; returns the process exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    try:
        rc = app(args=args, prog_name="pactum", standalone_mode=False)
    except USER_ERRORS as exc:
        if debug:
            raise
        Console(stderr=True).print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
        return 1
    except typer.Exit as exc:
        return int(exc.exit_code or 0)
    except typer.Abort:
        Console(stderr=True).print("aborted")
        return 130
    except typer.TyperException as exc:  # usage errors: typer's own click raises these
        show = getattr(exc, "show", None)
        if callable(show):
            show()
        else:
            Console(stderr=True).print(f"[red]error:[/red] {exc.format_message()}", highlight=False)
        return int(exc.exit_code)
    except Exception as exc:
        if debug:
            raise
        Console(stderr=True).print(f"[red]internal error:[/red] {exc.__class__.__name__}: {exc} "
                                   "(run again with --debug for the traceback)", highlight=False)
        return 2
    return int(rc or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
