"""The connector's tables.

Each area keeps its tables in its own module ``connector/storage/tables_<area>.py``; importing this module
registers all of them on ``Base.metadata`` (Alembic and the repositories rely on that). Every change to
a table comes with an Alembic revision in ``migrations/versions``.
"""

from __future__ import annotations

import importlib
import pkgutil
from datetime import datetime

from sqlalchemy import DateTime, String, Text
from sqlalchemy.orm import Mapped, mapped_column

import connector.storage as _storage_pkg
from connector.storage.base import Base


class SettingRow(Base):
    """Small key/value facts the connector keeps about itself (first start time, audit anchors, ...)."""

    __tablename__ = "connector_settings"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    value: Mapped[str] = mapped_column(Text, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)


for _module in pkgutil.iter_modules(_storage_pkg.__path__):
    if _module.name.startswith("tables_"):
        importlib.import_module(f"connector.storage.{_module.name}")
