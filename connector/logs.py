"""Structured logging with a correlation id that follows one negotiation or transfer across connectors.

JSON lines when stderr is not a terminal (machines read them), rich output on a terminal (people read
them). The correlation id travels between connectors in the ``X-Correlation-Id`` header.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
from collections.abc import Iterator
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

CORRELATION_HEADER = "X-Correlation-Id"
_correlation_id: ContextVar[str | None] = ContextVar("pactum_correlation_id", default=None)
_participant: ContextVar[str | None] = ContextVar("pactum_participant", default=None)

_STANDARD_ATTRS = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}


def current_correlation_id() -> str | None:
    return _correlation_id.get()


@contextlib.contextmanager
def correlation(correlation_id: str | None) -> Iterator[None]:
    """Tag every log line written inside the block with this correlation id."""
    token = _correlation_id.set(correlation_id)
    try:
        yield
    finally:
        _correlation_id.reset(token)


def set_correlation_id(correlation_id: str | None) -> None:
    """For middleware that cannot wrap the handler in a ``with`` block."""
    _correlation_id.set(correlation_id)


class _ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.correlation_id = _correlation_id.get()
        record.participant = _participant.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line with the standard fields plus anything passed in ``extra``."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD_ATTRS and value is not None:
                entry[key] = value if isinstance(value, str | int | float | bool | list | dict) else str(value)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(level: str = "INFO", *, participant: str | None = None, json_lines: bool | None = None) -> None:
    """Set up the root logger once per process."""
    _participant.set(participant)
    use_json = (not sys.stderr.isatty()) if json_lines is None else json_lines
    handler: logging.Handler
    if use_json:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonFormatter())
    else:
        from rich.logging import RichHandler

        handler = RichHandler(rich_tracebacks=False, show_path=False)
        handler.setFormatter(logging.Formatter("[%(correlation_id)s] %(message)s"))
    handler.addFilter(_ContextFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("uvicorn.access", "httpx", "httpcore", "alembic"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
