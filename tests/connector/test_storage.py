"""Storage runs on SQLite and on a real PostgreSQL started by the tests."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, select, text

from connector.storage.db import StorageError, alembic_config, make_engine, migrate, open_database
from connector.storage.models import SettingRow


def test_migrations_create_every_table_and_are_idempotent(database_url: str) -> None:
    engine, _ = open_database(database_url)
    migrate(engine)  # a second start must not fail nor change anything
    tables = set(inspect(engine).get_table_names())
    assert {"alembic_version", "connector_settings"} <= tables
    heads = set(ScriptDirectory.from_config(alembic_config(engine)).get_heads())
    with engine.connect() as conn:
        applied = set(conn.execute(text("select version_num from alembic_version")).scalars())
    assert applied == heads  # every branch of revisions is at its newest, each recorded once


def test_rows_survive_a_restart(database_url: str) -> None:
    engine, sessions = open_database(database_url)
    with sessions.begin() as session:
        session.add(SettingRow(key="first_start", value="yes", updated_at=datetime.now(UTC)))
    engine.dispose()
    engine2, sessions2 = open_database(database_url)
    with sessions2() as session:
        row = session.scalars(select(SettingRow)).one()
        assert (row.key, row.value) == ("first_start", "yes")
    engine2.dispose()


def test_sqlite_uses_wal(tmp_path) -> None:  # type: ignore[no-untyped-def]
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    with engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar_one().lower() == "wal"


def test_unreachable_database_is_a_clear_error() -> None:
    engine = make_engine("postgresql://nobody@127.0.0.1:1/none", pool_pre_ping=False)
    with pytest.raises(StorageError, match="cannot migrate the database"):
        migrate(engine)


def test_sqlite_writers_of_one_process_queue_instead_of_failing(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A second writer waits for the first one's commit (no 'database is locked', no busy polling)."""
    import threading
    import time

    engine, sessions = open_database(f"sqlite:///{tmp_path / 'queue.db'}")
    order: list[str] = []
    first_wrote = threading.Event()

    def first() -> None:
        with sessions.begin() as session:
            session.add(SettingRow(key="a", value="1", updated_at=datetime.now(UTC)))
            session.flush()  # holds the write lock from here to the commit
            first_wrote.set()
            time.sleep(0.3)
            order.append("first commits")

    def second() -> None:
        first_wrote.wait(5)
        with sessions() as session:  # reading is not blocked by the writer (WAL)
            assert session.get(SettingRow, "a") is None
        order.append("second reads")
        with sessions.begin() as session:
            session.add(SettingRow(key="b", value="2", updated_at=datetime.now(UTC)))
        order.append("second commits")

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(15)
    assert order == ["second reads", "first commits", "second commits"]
    with sessions() as session:
        assert {r.key for r in session.scalars(select(SettingRow))} == {"a", "b"}
    engine.dispose()


def test_a_rolled_back_writer_releases_the_file(tmp_path) -> None:  # type: ignore[no-untyped-def]
    engine, sessions = open_database(f"sqlite:///{tmp_path / 'rollback.db'}")
    with pytest.raises(RuntimeError), sessions.begin() as session:
        session.add(SettingRow(key="a", value="1", updated_at=datetime.now(UTC)))
        session.flush()
        raise RuntimeError("the handler failed")
    with sessions.begin() as session:  # would wait WRITE_LOCK_WAIT seconds if the lock were still held
        session.add(SettingRow(key="b", value="2", updated_at=datetime.now(UTC)))
    with sessions() as session:
        assert [r.key for r in session.scalars(select(SettingRow))] == ["b"]
    engine.dispose()
