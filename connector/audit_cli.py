"""``pactum connector audit verify|export``: check or dump a connector's audit trail from its configuration.

Verification needs the connector's keys to check checkpoint signatures, so it opens the keystore with the
passphrase source the configuration names (no key leaves the keystore; only public keys are used).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from connector.audit import AuditLog, KeyLookup
from connector.config import Settings, keystore_passphrase, load_settings
from connector.errors import ConfigError
from connector.storage.db import open_database
from identity.errors import IdentityError
from identity.keys import KeyPair
from identity.keystore import Keystore

audit_app = typer.Typer(help="Verify and export the tamper-evident audit trail.", no_args_is_help=True)

ConfigOption = Annotated[Path, typer.Option("--config", "-c", help="The connector's TOML configuration.")]


def _log(settings: Settings) -> AuditLog:
    _engine, sessions = open_database(settings.storage.url)
    return AuditLog(sessions)


def connector_keys(settings: Settings) -> KeyLookup:
    """kid -> public key for every key in the connector's keystore (current and rotated ones)."""
    try:
        keystore = Keystore.open(settings.keystore.path, keystore_passphrase(settings))
    except IdentityError as exc:
        raise ConfigError(f"keystore {settings.keystore.path}: {exc}") from exc
    by_fragment: dict[str, KeyPair] = {}
    for key_id, key in keystore.keys():
        public = key.public_only()
        by_fragment[key_id] = public
        by_fragment[key.public_multibase()] = public

    def lookup(kid: str) -> KeyPair | None:
        return by_fragment.get(kid.rsplit("#", 1)[-1])

    return lookup


@audit_app.command("verify")
def verify(
    config: ConfigOption,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Check the hash chain, every checkpoint signature and every receipt signature; exit 1 on any problem.

    Example: pactum connector audit verify --config deploy/config/supplier.toml
    """
    settings = load_settings(config)
    result = _log(settings).verify(connector_keys(settings))
    if as_json:
        typer.echo(json.dumps(result.to_json(), indent=2))
    else:
        state = "OK" if result.ok else "TAMPERED"
        typer.echo(f"audit trail {state}: {result.entries} entries, {result.checkpoints} signed checkpoints, "
                   f"{result.receipts} receipts")
        for problem in result.problems:
            typer.echo(f"  - {problem}")
    if not result.ok:
        raise typer.Exit(1)


@audit_app.command("export")
def export(
    config: ConfigOption,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write here instead of stdout.")] = None,
) -> None:
    """Write entries, checkpoints and receipts as JSON lines (one object per line).

    Example: pactum connector audit export --config supplier.toml -o audit.jsonl
    """
    log = _log(load_settings(config))
    if output is None:
        log.export(sys.stdout)
        return
    try:
        with output.open("w", encoding="utf-8") as handle:
            count = log.export(handle)
    except OSError as exc:
        raise ConfigError(f"cannot write {output}: {exc.strerror}") from exc
    typer.echo(f"wrote {count} records to {output}", err=True)
