"""Engine creation and schema migration: SQLite (a file, WAL mode) by default, PostgreSQL by URL.

WHY writes to one SQLite file are serialised inside the process: SQLite admits one writer at a time, and a
writer that finds the file locked does not queue, it sleeps and polls (``busy_timeout``: 1, 2, 5 ... 100 ms).
Under load (dozens of negotiations each committing a few times) most of the wall time went into those
sleeps while the CPU idled. A thread lock per database file, taken by a connection at its first write
statement and released at its commit or rollback, makes writers of this process queue in order instead;
SQLite's own locking still guards against other processes.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
from pathlib import Path
from typing import Any, Self

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from connector.errors import ConnectorError

MIGRATIONS = Path(__file__).with_name("migrations")


class StorageError(ConnectorError):
    code = "storage_error"
    status = 503


def _normalise(url: str) -> str:
    """``postgresql://`` means psycopg 3 here; SQLAlchemy would otherwise look for psycopg2."""
    if url.startswith("postgresql://"):
        return "postgresql+psycopg://" + url[len("postgresql://"):]
    return url


log = logging.getLogger("pactum.connector.storage")

WRITE_LOCK_WAIT = 10.0  # seconds; after that the write goes ahead and SQLite's busy timeout decides
_WRITES = ("insert", "update", "delete", "replace", "create", "drop", "alter", "begin", "savepoint", "with")
_write_locks: dict[str, threading.Lock] = {}
_write_locks_guard = threading.Lock()


def _write_lock_for(database: Any) -> threading.Lock | None:
    """The lock shared by every connection of this process to the SQLite file ``database``."""
    name = os.fsdecode(database) if isinstance(database, str | bytes | os.PathLike) else ""
    if not name or name == ":memory:" or name.startswith("file:"):
        return None
    key = os.path.realpath(name)
    with _write_locks_guard:
        return _write_locks.setdefault(key, threading.Lock())


def _is_write(sql: str) -> bool:
    return sql.lstrip()[:9].lower().startswith(_WRITES)


class SerialWritesConnection(sqlite3.Connection):
    """A sqlite3 connection that holds its file's process-wide write lock from its first write to its end."""

    def __init__(self, database: Any, *args: Any, **kwargs: Any) -> None:
        super().__init__(database, *args, **kwargs)
        self._write_lock = _write_lock_for(database)
        self._holds_write_lock = False

    def cursor(self, factory: Any = None) -> sqlite3.Cursor:  # type: ignore[override]
        return super().cursor(factory or SerialWritesCursor)

    def acquire_write_lock(self) -> None:
        if self._write_lock is None or self._holds_write_lock:
            return
        if self._write_lock.acquire(timeout=WRITE_LOCK_WAIT):
            self._holds_write_lock = True
        else:
            log.warning("waited %.0f s for this process's other SQLite writer; writing anyway", WRITE_LOCK_WAIT)

    def release_write_lock(self) -> None:
        if self._holds_write_lock and self._write_lock is not None:
            self._holds_write_lock = False
            self._write_lock.release()

    def commit(self) -> None:
        try:
            super().commit()
        finally:
            self.release_write_lock()

    def rollback(self) -> None:
        try:
            super().rollback()
        finally:
            self.release_write_lock()

    def close(self) -> None:
        try:
            super().close()
        finally:
            self.release_write_lock()


class SerialWritesCursor(sqlite3.Cursor):
    """Takes the connection's write lock before a write statement (see :class:`SerialWritesConnection`)."""

    def _before(self, sql: str) -> SerialWritesConnection | None:
        connection = self.connection
        if not isinstance(connection, SerialWritesConnection) or not _is_write(sql):
            return None
        connection.acquire_write_lock()
        return connection

    @staticmethod
    def _after(connection: SerialWritesConnection | None) -> None:
        if connection is not None and not connection.in_transaction:  # autocommit, or no transaction began
            connection.release_write_lock()

    def execute(self, sql: str, parameters: Any = (), /) -> Self:
        connection = self._before(sql)
        try:
            return super().execute(sql, parameters)
        finally:
            self._after(connection)

    def executemany(self, sql: str, seq_of_parameters: Any, /) -> Self:
        connection = self._before(sql)
        try:
            return super().executemany(sql, seq_of_parameters)
        finally:
            self._after(connection)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.close()


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Create the engine; SQLite gets WAL, foreign keys and a busy timeout so concurrent writers queue."""
    url = _normalise(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 10,
                                                  "factory": SerialWritesConnection}, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 20)
    kwargs.setdefault("pool_pre_ping", True)
    return create_engine(url, **kwargs)


def alembic_config(engine: Engine) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection_engine"] = engine
    return cfg


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest revision; safe to call on every start."""
    try:
        command.upgrade(alembic_config(engine), "heads")
    except SQLAlchemyError as exc:
        raise StorageError(f"cannot migrate the database at {engine.url!r}: {exc.__class__.__name__}: {exc}") from exc


def open_database(url: str) -> tuple[Engine, sessionmaker[Session]]:
    """Engine plus session factory, migrated: the one call a connector makes at start."""
    engine = make_engine(url)
    migrate(engine)
    return engine, sessionmaker(engine, expire_on_commit=False)
