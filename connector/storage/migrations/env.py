"""Alembic environment: runs against the engine handed over by ``connector.storage.db.migrate``."""

from __future__ import annotations

from alembic import context

from connector.storage import models  # noqa: F401  (registers every table on Base.metadata)
from connector.storage.base import Base

config = context.config
engine = config.attributes.get("connection_engine")
if engine is None:  # pragma: no cover - only when someone runs the alembic CLI by hand
    from sqlalchemy import create_engine

    engine = create_engine(config.get_main_option("sqlalchemy.url") or "sqlite:///pactum.db")

with engine.begin() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
