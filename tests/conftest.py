"""Fixtures shared by the whole suite."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.pg import running_postgres

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """One PostgreSQL server for the session; each user of it gets its own database."""
    with running_postgres() as url:
        yield url


_db_counter = itertools.count()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty database on each backend the connector supports."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'pactum.db'}"
    server_url: str = request.getfixturevalue("postgres_server")
    import psycopg

    name = f"t{next(_db_counter)}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return server_url.rsplit("/", 1)[0] + "/" + name
