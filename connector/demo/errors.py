"""Errors of the demo orchestrator; the CLI prints them as one line and exits 1."""

from __future__ import annotations

from connector.errors import ConnectorError


class DemoError(ConnectorError):
    """Something the demo needs did not work (a process would not start, a file is missing)."""

    code = "demo_error"


class ProcessStartError(DemoError):
    """A party's process exited or did not become healthy in time."""

    code = "demo_process_start"


class ComposeError(DemoError):
    """The compose file cannot be read or does not have the shape the launcher needs."""

    code = "demo_compose_invalid"
