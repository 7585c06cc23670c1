"""Outcomes of the story and how they are told: step by step with rich, a summary table, a JSON record.

WHY separate from the story: the story decides what to ask and what it expects; this module only records
and shows. ``ok`` is computed here, once, as ``expected == actual`` - a step never marks itself as passed.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.panel import Panel
from rich.table import Table

from connector.demo.errors import DemoError

NOT_POSSIBLE = "not possible"


@dataclass(frozen=True)
class Outcome:
    """One expectation of the story and what really happened."""

    step: str
    expected: str
    actual: str
    ok: bool
    reason: str

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class Narrator:
    """Collects outcomes and narrates them; ``quiet`` keeps only the summary table."""

    def __init__(self, console: Console | None = None, *, quiet: bool = False) -> None:
        self.console = console or Console(highlight=False)
        self.quiet = quiet
        self.outcomes: list[Outcome] = []
        self.started = time.monotonic()

    # -- telling ------------------------------------------------------------------------------------------
    def chapter(self, title: str, text: str = "") -> None:
        if not self.quiet:
            self.console.print()
            elapsed = time.monotonic() - self.started
            self.console.print(Panel(text or title, title=f"[bold]{title}[/bold]", title_align="left",
                                     subtitle=f"{elapsed:.1f} s", subtitle_align="right", border_style="cyan",
                                     expand=False))

    def say(self, text: str) -> None:
        if not self.quiet:
            self.console.print(f"  {text}")

    def ask(self, who: str, what: str) -> None:
        """What a party asked (the question the next outcome answers)."""
        if not self.quiet:
            self.console.print(f"  [bold]{who}[/bold] asks: {what}")

    # -- recording ----------------------------------------------------------------------------------------
    def expect(self, step: str, expected: str, actual: str, reason: str = "") -> Outcome:
        """Record one outcome; it is ok exactly when what happened is what was expected."""
        outcome = Outcome(step, expected, actual, expected == actual, reason)
        self.outcomes.append(outcome)
        if not self.quiet:
            mark = "[green]✔[/green]" if outcome.ok else "[red]✘[/red]"
            colour = "green" if outcome.ok else "red"
            self.console.print(f"  {mark} [bold]{step}[/bold]: decided [{colour}]{actual}[/{colour}]"
                               f" (expected {expected})")
            if reason:
                for line in reason.splitlines()[:12]:
                    self.console.print(f"      [dim]why:[/dim] {line}")
        return outcome

    def not_possible(self, step: str, expected: str, why: str) -> Outcome:
        """A step whose prerequisite is missing: recorded as failed with the reason, never faked."""
        return self.expect(step, expected, NOT_POSSIBLE, why)

    # -- ending -------------------------------------------------------------------------------------------
    @property
    def ok(self) -> bool:
        return bool(self.outcomes) and all(o.ok for o in self.outcomes)

    def summary(self, seconds: float) -> None:
        table = Table(title=f"Pactum demo: {sum(o.ok for o in self.outcomes)}/{len(self.outcomes)} outcomes as "
                            f"expected in {seconds:.1f} s", show_lines=False)
        table.add_column("#", justify="right")
        table.add_column("step")
        table.add_column("expected")
        table.add_column("actual")
        table.add_column("ok", justify="center")
        for number, o in enumerate(self.outcomes, 1):
            table.add_row(str(number), o.step, o.expected, o.actual, "[green]✔[/green]" if o.ok else "[red]✘[/red]")
        self.console.print()
        self.console.print(table)
        for number, o in enumerate(self.outcomes, 1):
            if not o.ok:
                first = (o.reason or "no reason given").splitlines()
                self.console.print(f"  [red]#{number} {o.step}:[/red] {' / '.join(first[:4])}")

    def to_json(self, seconds: float) -> dict[str, Any]:
        return {"ok": self.ok, "seconds": round(seconds, 2), "outcomes": [o.to_json() for o in self.outcomes]}

    def write_json(self, path: Path, seconds: float) -> None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(self.to_json(seconds), indent=2, ensure_ascii=False) + "\n", "utf-8")
        except OSError as exc:
            raise DemoError(f"cannot write {path}: {exc.strerror or exc}") from exc
