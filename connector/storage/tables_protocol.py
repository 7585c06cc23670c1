"""Tables of the control plane: negotiations, agreements, transfers, the outbox and the inbound-message log.

WHY an inbound log: DSP messages may be delivered twice (retries after a lost answer); the first answer is
stored with the message's digest so a repeat gets the very same answer and changes nothing.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from connector.storage.base import Base


class NegotiationRow(Base):
    """One contract negotiation as seen by this connector (``role`` provider or consumer)."""

    __tablename__ = "dsp_negotiations"
    __table_args__ = (UniqueConstraint("role", "consumer_pid", "counterparty_did", name="uq_dsp_neg_consumer"),)

    id: Mapped[str] = mapped_column(String(200), primary_key=True)  # our pid
    role: Mapped[str] = mapped_column(String(16), nullable=False)
    state: Mapped[str] = mapped_column(String(32), nullable=False, index=True)
    consumer_pid: Mapped[str | None] = mapped_column(String(200), nullable=True)
    provider_pid: Mapped[str | None] = mapped_column(String(200), nullable=True)
    counterparty_did: Mapped[str] = mapped_column(String(500), nullable=False)
    counterparty_address: Mapped[str] = mapped_column(String(1000), nullable=False)
    offer_id: Mapped[str | None] = mapped_column(String(500), nullable=True)
    asset_id: Mapped[str | None] = mapped_column(String(500), nullable=True)
    policy: Mapped[str | None] = mapped_column(Text, nullable=True)  # the offer/policy now on the table
    agreement_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    approval: Mapped[str] = mapped_column(String(16), nullable=False, default="auto")
    pending: Mapped[str | None] = mapped_column(String(32), nullable=True)  # step waiting for the operator
    party: Mapped[str | None] = mapped_column(Text, nullable=True)  # JSON: the caller's verified credentials
    error_code: Mapped[str | None] = mapped_column(String(200), nullable=True)
    error_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    correlation_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)


class AgreementRow(Base):
    """A contract agreement; both sides store it with its canonical policy hash."""

    __tablename__ = "dsp_agreements"

    id: Mapped[str] = mapped_column(String(200), primary_key=True)
    negotiation_id: Mapped[str] = mapped_column(String(200), nullable=False, index=True)
    role: Mapped[str] = mapped_column(String(16), nullable=False)
    asset_id: Mapped[str] = mapped_column(String(500), nullable=False)
    assigner: Mapped[str] = mapped_column(String(500), nullable=False)
    assignee: Mapped[str] = mapped_column(String(500), nullable=False)
    policy: Mapped[str] = mapped_column(Text, nullable=False)
    policy_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    signed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    counterparty_address: Mapped[str] = mapped_column(String(1000), nullable=False)
    counterparty_did: Mapped[str] = mapped_column(String(500), nullable=False)


class TransferRow(Base):
    """One transfer process as seen by this connector."""

    __tablename__ = "dsp_transfers"
    __table_args__ = (UniqueConstraint("role", "consumer_pid", "counterparty_did", name="uq_dsp_tp_consumer"),)

    id: Mapped[str] = mapped_column(String(200), primary_key=True)
    role: Mapped[str] = mapped_column(String(16), nullable=False)
    state: Mapped[str] = mapped_column(String(32), nullable=False, index=True)
    consumer_pid: Mapped[str | None] = mapped_column(String(200), nullable=True)
    provider_pid: Mapped[str | None] = mapped_column(String(200), nullable=True)
    agreement_id: Mapped[str] = mapped_column(String(200), nullable=False, index=True)
    transfer_type: Mapped[str] = mapped_column(String(100), nullable=False)
    counterparty_did: Mapped[str] = mapped_column(String(500), nullable=False)
    counterparty_address: Mapped[str] = mapped_column(String(1000), nullable=False)
    data_address: Mapped[str | None] = mapped_column(Text, nullable=True)  # JSON DataAddress (EDR or push target)
    approval: Mapped[str] = mapped_column(String(16), nullable=False, default="auto")
    pending: Mapped[str | None] = mapped_column(String(32), nullable=True)
    party: Mapped[str | None] = mapped_column(Text, nullable=True)
    request: Mapped[str | None] = mapped_column(Text, nullable=True)  # JSON: the consumer's dataDestination etc.
    error_code: Mapped[str | None] = mapped_column(String(200), nullable=True)
    error_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    correlation_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)


class OutboxRow(Base):
    """A DSP message to send, written in the same transaction as the state change that causes it."""

    __tablename__ = "dsp_outbox"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    process_id: Mapped[str] = mapped_column(String(200), nullable=False, index=True)
    kind: Mapped[str] = mapped_column(String(16), nullable=False)  # negotiation | transfer
    message_type: Mapped[str] = mapped_column(String(100), nullable=False)
    url: Mapped[str] = mapped_column(String(2000), nullable=False)
    recipient_did: Mapped[str] = mapped_column(String(500), nullable=False)
    body: Mapped[str] = mapped_column(Text, nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False, index=True)  # pending | sent | failed
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, index=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    correlation_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)


class InboundRow(Base):
    """The answer given to one inbound DSP message, keyed by its digest, for idempotent repeats."""

    __tablename__ = "dsp_inbound"

    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    process_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    state: Mapped[str | None] = mapped_column(String(32), nullable=True)  # the process state this answer left
    status: Mapped[int] = mapped_column(Integer, nullable=False)
    response: Mapped[str] = mapped_column(Text, nullable=False)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
