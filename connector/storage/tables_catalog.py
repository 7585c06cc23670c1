"""Provider-side catalog tables: assets (and their searchable properties), policy and contract definitions.

Timestamps are epoch milliseconds because that is what EDC's ``createdAt`` carries. Asset properties are
kept twice on purpose: the whole map as JSON (returned as given) and one row per scalar value in
``catalog_asset_properties`` so QuerySpec filters and ``assetsSelector`` criteria run in SQL on SQLite and
PostgreSQL alike, without dialect-specific JSON operators.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from connector.storage.base import Base


class AssetRow(Base):
    __tablename__ = "catalog_assets"

    id: Mapped[str] = mapped_column(String(255), primary_key=True)
    properties: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    private_properties: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    data_address: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    data_class: Mapped[str | None] = mapped_column(String(32), nullable=True, index=True)
    jurisdiction: Mapped[str | None] = mapped_column(String(16), nullable=True)
    created_at: Mapped[int] = mapped_column(BigInteger, nullable=False)
    updated_at: Mapped[int] = mapped_column(BigInteger, nullable=False)


class AssetPropertyRow(Base):
    """One scalar value of one asset property (lists give several rows), keyed by the property's IRI.

    ``private`` is part of the key: a public and a private property may share a name.
    """

    __tablename__ = "catalog_asset_properties"

    asset_id: Mapped[str] = mapped_column(String(255), ForeignKey("catalog_assets.id", ondelete="CASCADE"),
                                          primary_key=True)
    name: Mapped[str] = mapped_column(String(500), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    private: Mapped[bool] = mapped_column(primary_key=True, default=False)
    value: Mapped[str] = mapped_column(Text, nullable=False)


class PolicyDefinitionRow(Base):
    __tablename__ = "catalog_policy_definitions"

    id: Mapped[str] = mapped_column(String(255), primary_key=True)
    policy: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)  # compact ODRL JSON-LD (DSP context)
    policy_uid: Mapped[str] = mapped_column(String(500), nullable=False)
    policy_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    private_properties: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    created_at: Mapped[int] = mapped_column(BigInteger, nullable=False)
    updated_at: Mapped[int] = mapped_column(BigInteger, nullable=False)


class ContractDefinitionRow(Base):
    __tablename__ = "catalog_contract_definitions"

    id: Mapped[str] = mapped_column(String(255), primary_key=True)
    access_policy_id: Mapped[str] = mapped_column(String(255), nullable=False, index=True)
    contract_policy_id: Mapped[str] = mapped_column(String(255), nullable=False, index=True)
    assets_selector: Mapped[list[dict[str, Any]]] = mapped_column(JSON, nullable=False)
    approval: Mapped[str] = mapped_column(String(16), nullable=False)
    private_properties: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    created_at: Mapped[int] = mapped_column(BigInteger, nullable=False)
    updated_at: Mapped[int] = mapped_column(BigInteger, nullable=False)
