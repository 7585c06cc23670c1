"""The multi-party supply-chain data-space demo: ``pactum demo``.

The lead registers :func:`demo_command` as ``pactum demo``. It starts the authority and four companies as
separate processes on loopback (configs from ``deploy/config``), tells the story through their public HTTP
APIs, prints a summary table and exits 1 unless every expected outcome happened.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from connector.demo.errors import DemoError
from connector.demo.narrate import Narrator
from connector.demo.processes import Supervisor
from connector.demo.space import DataSpace, start_local
from connector.demo.story import SupplyChainStory

__all__ = ["demo_command", "run_demo", "run_story"]


def run_story(space: DataSpace, narrator: Narrator) -> None:
    """Tell the story against an already running data space (the compose launcher uses this too)."""
    SupplyChainStory(space, narrator).run()


def run_demo(workdir: Path, *, keep: bool = False, quiet: bool = False, json_file: Path | None = None,
             console: Console | None = None) -> Narrator:
    """Start everything in ``workdir``, tell the story, stop everything (unless ``keep``); return the outcomes."""
    narrator = Narrator(console, quiet=quiet)
    started = time.monotonic()
    interrupted = False
    try:
        with Supervisor(workdir / "logs", keep=keep) as supervisor:
            narrator.chapter("0. Starting the data space", f"working directory {workdir}\nlogs in {workdir / 'logs'}")
            try:
                space = start_local(workdir, supervisor)
            except DemoError as exc:
                narrator.expect("every party started and healthy", "healthy", "failed", str(exc))
            else:
                narrator.expect("every party started and healthy", "healthy", "healthy",
                                f"authority and {len(space.companies)} connectors answer on loopback")
                run_story(space, narrator)
            if keep and narrator.ok:
                _print_kept(narrator.console, space, supervisor)
    except KeyboardInterrupt:
        interrupted = True
        narrator.not_possible("demo interrupted", "completed", "stopped by Ctrl-C or a signal; all parties stopped")
    seconds = time.monotonic() - started
    narrator.summary(seconds)
    if json_file is not None:
        narrator.write_json(json_file, seconds)
    if interrupted:
        raise typer.Exit(130)
    return narrator


def _print_kept(console: Console, space: DataSpace, supervisor: Supervisor) -> None:
    console.print("\n[bold]Left running (--keep):[/bold]")
    console.print(f"  authority   {space.authority.url}   admin key {space.authority.admin_key}")
    for key, company in space.companies.items():
        pid = supervisor.parties[key].pid
        console.print(f"  {key:12} dashboard {company.dashboard_url}   management {company.management_url} "
                      f"(X-Api-Key {company.api_key})   pid {pid}")
    pids = " ".join(str(p.pid) for p in supervisor.parties.values())
    console.print(f"  stop them with: kill -TERM -- {' '.join('-' + p for p in pids.split())}")


def demo_command(
    json_file: Annotated[Path | None, typer.Option("--json", help="Write the outcomes as JSON to this file.")] = None,
    workdir: Annotated[Path | None, typer.Option("--workdir", help="Folder for state, data and logs "
                                                 "(default: a new temporary folder).")] = None,
    keep: Annotated[bool, typer.Option("--keep", help="Leave every party running after a successful story.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", help="Print only the summary table.")] = False,
) -> None:
    """Run the multi-party supply-chain data space and tell its story; exit 1 unless every outcome happened.

    Example: pactum demo --json demo-out/outcomes.json
    """
    folder = workdir or Path(tempfile.mkdtemp(prefix="pactum-demo-"))
    folder = folder.resolve()
    folder.mkdir(parents=True, exist_ok=True)
    narrator = run_demo(folder, keep=keep, quiet=quiet, json_file=json_file)
    if not narrator.ok:
        raise typer.Exit(1)
