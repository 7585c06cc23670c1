"""Durable state: SQLAlchemy 2 models, Alembic migrations and repositories (SQLite default, PostgreSQL by URL)."""
