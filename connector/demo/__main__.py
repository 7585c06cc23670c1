"""``python -m connector.demo``: the same command as ``pactum demo``, usable before the CLI mounts it."""

from __future__ import annotations

import typer

from connector.demo import demo_command

if __name__ == "__main__":
    typer.run(demo_command)
