"""Audit trail tables: the hash-chained entries, signed checkpoints over the chain head, and receipts."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from connector.storage.base import Base


class AuditEntryRow(Base):
    """One decision or data movement; ``hash`` = SHA-256(prev_hash + canonical JSON of the entry)."""

    __tablename__ = "audit_entries"

    seq: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
                                     autoincrement=False)
    time: Mapped[str] = mapped_column(String(40), nullable=False)
    kind: Mapped[str] = mapped_column(String(80), nullable=False, index=True)
    process_id: Mapped[str | None] = mapped_column(String(300), nullable=True, index=True)
    agreement_id: Mapped[str | None] = mapped_column(String(300), nullable=True, index=True)
    counterparty: Mapped[str | None] = mapped_column(String(500), nullable=True)
    decision: Mapped[str | None] = mapped_column(String(40), nullable=True)
    body: Mapped[str] = mapped_column(Text, nullable=False)  # canonical JSON of the whole entry
    prev_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    hash: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)


class AuditCheckpointRow(Base):
    """A JWS by the connector's key over the chain head at ``seq``."""

    __tablename__ = "audit_checkpoints"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    seq: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), nullable=False)
    head_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    jws: Mapped[str] = mapped_column(Text, nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)


class AuditReceiptRow(Base):
    """A receipt signed by the receiving side of a transfer (or by us, when we received)."""

    __tablename__ = "audit_receipts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    transfer_id: Mapped[str] = mapped_column(String(300), nullable=False, index=True)
    agreement_id: Mapped[str] = mapped_column(String(300), nullable=False)
    signer: Mapped[str] = mapped_column(String(500), nullable=False)
    role: Mapped[str] = mapped_column(String(20), nullable=False)  # "received" (theirs) | "issued" (ours)
    digest: Mapped[str] = mapped_column(String(100), nullable=False)
    size: Mapped[int] = mapped_column(BigInteger, nullable=False)
    jws: Mapped[str] = mapped_column(Text, nullable=False)
    signer_key: Mapped[str] = mapped_column(Text, nullable=False)  # public JWK resolved when accepted
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
