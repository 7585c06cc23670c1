"""One lint finding: what is wrong, where, and how to fix it, in a shape both humans and JSON consumers read."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import StrEnum


class Severity(StrEnum):
    """How bad a finding is: only ``error`` makes ``pactum policies lint`` exit 1."""

    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


@dataclass(frozen=True, slots=True)
class Finding:
    """A single problem found in a policy file; ``line``/``column`` are 1-based and ``None`` when unknown."""

    file: str
    rule: str
    severity: Severity
    message: str
    hint: str = ""
    line: int | None = None
    column: int | None = None
    subject: str | None = None

    def to_json(self) -> dict[str, object]:
        """A plain dict for ``--json`` output (severity as its string value)."""
        data = asdict(self)
        data["severity"] = self.severity.value
        return data

    def to_text(self) -> str:
        """``file:line:col: severity rule: message (hint)`` like a compiler, so editors can jump to it."""
        where = self.file
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        text = f"{where}: {self.severity.value} [{self.rule}] {self.message}"
        if self.hint:
            text += f" (hint: {self.hint})"
        return text


def has_errors(findings: list[Finding]) -> bool:
    """True when any finding is an error, i.e. the file must not be published."""
    return any(f.severity is Severity.ERROR for f in findings)
