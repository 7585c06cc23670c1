"""Data-plane tables: provider-side transfers and tokens, per-agreement usage counters, consumer EDRs, duties."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from connector.storage.base import Base


class DpTransferRow(Base):
    """A transfer the provider's data plane serves: everything needed to re-check it on each request."""

    __tablename__ = "dp_transfers"

    transfer_id: Mapped[str] = mapped_column(String(300), primary_key=True)
    agreement_id: Mapped[str] = mapped_column(String(300), nullable=False, index=True)
    policy: Mapped[str] = mapped_column(Text, nullable=False)  # ODRL JSON-LD of the agreement
    agreement_time: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    asset: Mapped[str] = mapped_column(Text, nullable=False)  # JSON: id, dataAddress, properties
    consumer_did: Mapped[str] = mapped_column(String(500), nullable=False)
    transfer_type: Mapped[str] = mapped_column(String(100), nullable=False)
    credentials: Mapped[str] = mapped_column(Text, nullable=False, default="[]")  # JSON list of verified VCs
    state: Mapped[str] = mapped_column(String(20), nullable=False)  # active | suspended | terminated | completed
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    bytes_sent: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    last_digest: Mapped[str | None] = mapped_column(String(100), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)


class DpTokenRow(Base):
    """An EDR access or refresh token we issued; revoked tokens stay so a replay is recognised and refused."""

    __tablename__ = "dp_tokens"

    jti: Mapped[str] = mapped_column(String(64), primary_key=True)
    transfer_id: Mapped[str] = mapped_column(String(300), nullable=False, index=True)
    kind: Mapped[str] = mapped_column(String(10), nullable=False)  # access | refresh
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    revoked_reason: Mapped[str | None] = mapped_column(Text, nullable=True)


class DpUsageRow(Base):
    """Uses of one agreement across all its transfers; ``used < use_limit`` is checked in the same UPDATE."""

    __tablename__ = "dp_usage"

    agreement_id: Mapped[str] = mapped_column(String(300), primary_key=True)
    used: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    use_limit: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class DpEdrRow(Base):
    """Consumer side: the data address (EDR) a provider gave us for a transfer."""

    __tablename__ = "dp_edrs"

    transfer_id: Mapped[str] = mapped_column(String(300), primary_key=True)
    agreement_id: Mapped[str | None] = mapped_column(String(300), nullable=True, index=True)
    provider_did: Mapped[str | None] = mapped_column(String(500), nullable=True)
    asset_id: Mapped[str | None] = mapped_column(String(300), nullable=True)
    endpoint: Mapped[str] = mapped_column(Text, nullable=False)
    endpoint_type: Mapped[str] = mapped_column(String(200), nullable=False)
    token: Mapped[str] = mapped_column(Text, nullable=False)
    refresh_token: Mapped[str | None] = mapped_column(Text, nullable=True)
    refresh_endpoint: Mapped[str | None] = mapped_column(Text, nullable=True)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    data_address: Mapped[str] = mapped_column(Text, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)


class DpDutyRow(Base):
    """A duty being tracked: provider side (awaiting the consumer's report) or consumer side (to perform)."""

    __tablename__ = "dp_duties"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    agreement_id: Mapped[str] = mapped_column(String(300), nullable=False, index=True)
    transfer_id: Mapped[str] = mapped_column(String(300), nullable=False, index=True)
    role: Mapped[str] = mapped_column(String(10), nullable=False)  # provider | consumer
    action: Mapped[str] = mapped_column(String(100), nullable=False)  # delete | inform | anonymize ...
    due_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True, index=True)
    state: Mapped[str] = mapped_column(String(20), nullable=False)  # unfulfilled | fulfilled | violated
    detail: Mapped[str] = mapped_column(Text, nullable=False, default="{}")  # JSON: path, provider url, ...
    fulfilled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class DpEventRow(Base):
    """Something that happened under an agreement (a duty performed), fed back to the policy engine."""

    __tablename__ = "dp_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    agreement_id: Mapped[str] = mapped_column(String(300), nullable=False, index=True)
    action: Mapped[str] = mapped_column(String(100), nullable=False)
    target: Mapped[str | None] = mapped_column(String(300), nullable=True)
    time: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    outcome: Mapped[str] = mapped_column(String(20), nullable=False, default="performed")
    parameters: Mapped[str] = mapped_column(Text, nullable=False, default="{}")
