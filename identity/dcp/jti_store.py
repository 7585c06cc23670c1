"""A replay guard for token ids (``jti``) that survives restarts: one SQL table via SQLAlchemy.

WHY SQL and not a dict: a verifier that restarts must still refuse a token it already accepted while the
token is valid; SQLite (a file the caller chooses) is enough for one process, any SQLAlchemy URL for more.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

from sqlalchemy import Column, Float, MetaData, String, Table, create_engine, delete, insert, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from identity.dcp.errors import DcpError

_metadata = MetaData()
_used = Table(
    "dcp_used_jti",
    _metadata,
    Column("jti", String(512), primary_key=True),
    Column("expires_at", Float, nullable=False, index=True),
)


def _url(location: str | Path) -> str:
    text = str(location)
    return text if "://" in text else f"sqlite:///{Path(text).expanduser()}"


class JtiStore:
    """Remembers token ids until they expire; ``claim`` is atomic (the primary key decides)."""

    def __init__(self, location: str | Path | Engine) -> None:
        """``location`` is a file path (SQLite), an SQLAlchemy URL or an existing Engine."""
        try:
            if isinstance(location, Engine):
                self._engine = location
            else:
                url = _url(location)
                if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
                    Path(url[len("sqlite:///") :]).parent.mkdir(parents=True, exist_ok=True)
                self._engine = create_engine(url)
            _metadata.create_all(self._engine)
        except SQLAlchemyError as exc:
            raise DcpError(f"cannot open jti store: {exc}", code="jti_store_unavailable", status=500) from exc
        self._lock = threading.Lock()

    def claim(self, jti: str, expires_at: float, *, now: float | None = None) -> bool:
        """Record ``jti``; return False if it was already seen and not yet expired (a replay)."""
        now = time.time() if now is None else now
        with self._lock:
            with self._engine.begin() as conn:
                conn.execute(delete(_used).where(_used.c.expires_at < now))
            try:
                with self._engine.begin() as conn:
                    conn.execute(insert(_used).values(jti=jti, expires_at=float(expires_at)))
            except IntegrityError:
                return False
        return True

    def seen(self, jti: str) -> bool:
        """True when ``jti`` is recorded (for diagnostics and tests)."""
        with self._engine.connect() as conn:
            return conn.execute(select(_used.c.jti).where(_used.c.jti == jti)).first() is not None

    def close(self) -> None:
        """Release connections."""
        self._engine.dispose()
