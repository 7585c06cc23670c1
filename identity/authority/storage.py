"""The authority's persistent state in SQL (SQLite by default, PostgreSQL works): participants, issuance
requests, issued credentials and status list allocations.

WHY SQLAlchemy Core and ``create_all``: four small tables owned by one process; the CLI (``revoke``) and the
server share the same database, so a revocation is visible on the next status-list fetch without restarts.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    create_engine,
    insert,
    select,
    update,
)
from sqlalchemy.engine import Engine, RowMapping
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from identity.authority.errors import AuthorityError, UnknownCredential, UnknownParticipant

metadata = MetaData()

participants = Table(
    "authority_participants", metadata,
    Column("did", String(512), primary_key=True),
    Column("name", String(256), nullable=False),
    Column("bpn", String(64), nullable=False, default=""),
    Column("jurisdiction", String(8), nullable=False, default=""),
    Column("allowed_credentials", Text, nullable=False, default="[]"),
    Column("registered_at", DateTime(timezone=True), nullable=False),
)

requests = Table(
    "authority_requests", metadata,
    Column("issuer_pid", String(128), primary_key=True),
    Column("holder_pid", String(512), nullable=False),
    Column("holder_did", String(512), nullable=False, index=True),
    Column("status", String(16), nullable=False),
    Column("credential_ids", Text, nullable=False),
    Column("access_token", Text, nullable=True),
    Column("rejection_reason", Text, nullable=True),
    Column("delivery_error", Text, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

credentials = Table(
    "authority_credentials", metadata,
    Column("id", String(128), primary_key=True),
    Column("holder_did", String(512), nullable=False, index=True),
    Column("credential_type", String(128), nullable=False),
    Column("profile", String(8), nullable=False),
    Column("status_list_id", String(128), nullable=False),
    Column("status_index", Integer, nullable=False),
    Column("issued_at", DateTime(timezone=True), nullable=False),
    Column("valid_until", DateTime(timezone=True), nullable=False),
    Column("revoked", Boolean, nullable=False, default=False),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
    Column("request_pid", String(128), nullable=True),
    Column("token", Text, nullable=False),
    UniqueConstraint("status_list_id", "status_index", name="uq_status_slot"),
)


def _now() -> datetime:
    return datetime.now(UTC)


def _aware(value: datetime) -> datetime:
    """SQLite drops tzinfo; every stored instant is UTC."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


@dataclass(frozen=True)
class ParticipantRecord:
    """One directory entry."""

    did: str
    name: str
    bpn: str = ""
    jurisdiction: str = ""
    allowed_credentials: tuple[str, ...] = ()
    registered_at: datetime = field(default_factory=_now)

    def public(self) -> dict[str, Any]:
        """The directory view (what ``GET /directory`` shows)."""
        return {"did": self.did, "name": self.name, "bpn": self.bpn or None,
                "jurisdiction": self.jurisdiction or None, "registeredAt": self.registered_at.isoformat()}


@dataclass(frozen=True)
class RequestRecord:
    """One DCP issuance request and where it stands."""

    issuer_pid: str
    holder_pid: str
    holder_did: str
    status: str
    credential_ids: tuple[str, ...]
    access_token: str | None
    rejection_reason: str | None
    delivery_error: str | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class CredentialRecord:
    """One issued credential with its status-list slot."""

    id: str
    holder_did: str
    credential_type: str
    profile: str
    status_list_id: str
    status_index: int
    issued_at: datetime
    valid_until: datetime
    revoked: bool
    revoked_at: datetime | None
    request_pid: str | None
    token: str


def _participant(row: RowMapping) -> ParticipantRecord:
    return ParticipantRecord(
        row["did"], row["name"], row["bpn"], row["jurisdiction"],
        tuple(json.loads(row["allowed_credentials"] or "[]")), _aware(row["registered_at"]),
    )


def _request(row: RowMapping) -> RequestRecord:
    return RequestRecord(
        row["issuer_pid"], row["holder_pid"], row["holder_did"], row["status"],
        tuple(json.loads(row["credential_ids"])), row["access_token"], row["rejection_reason"],
        row["delivery_error"], _aware(row["created_at"]), _aware(row["updated_at"]),
    )


def _credential(row: RowMapping) -> CredentialRecord:
    return CredentialRecord(
        row["id"], row["holder_did"], row["credential_type"], row["profile"], row["status_list_id"],
        row["status_index"], _aware(row["issued_at"]), _aware(row["valid_until"]), bool(row["revoked"]),
        _aware(row["revoked_at"]) if row["revoked_at"] else None, row["request_pid"], row["token"],
    )


class AuthorityStore:
    """Repository over the authority tables; every method is one short transaction."""

    def __init__(self, url: str) -> None:
        try:
            if url.startswith("sqlite:///") and ":memory:" not in url:
                Path(url[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
            self.engine: Engine = create_engine(url)
            metadata.create_all(self.engine)
        except SQLAlchemyError as exc:
            raise AuthorityError(f"cannot open authority database: {exc}", code="storage_unavailable",
                                 status=500) from None

    def close(self) -> None:
        """Release pooled connections."""
        self.engine.dispose()

    # ---- directory ------------------------------------------------------------------------------------------
    def upsert_participant(self, record: ParticipantRecord) -> ParticipantRecord:
        """Register a participant or update its entry (keeps the original registration time)."""
        values = {"name": record.name, "bpn": record.bpn, "jurisdiction": record.jurisdiction,
                  "allowed_credentials": json.dumps(list(record.allowed_credentials))}
        with self.engine.begin() as conn:
            existing = conn.execute(select(participants).where(participants.c.did == record.did)).first()
            if existing is None:
                conn.execute(insert(participants).values(did=record.did, registered_at=record.registered_at,
                                                         **values))
            else:
                conn.execute(update(participants).where(participants.c.did == record.did).values(**values))
        return self.participant(record.did)

    def participant(self, did: str) -> ParticipantRecord:
        """The directory entry for ``did``; UnknownParticipant when absent."""
        with self.engine.connect() as conn:
            row = conn.execute(select(participants).where(participants.c.did == did)).mappings().first()
        if row is None:
            raise UnknownParticipant(f"{did} is not a registered participant")
        return _participant(row)

    def participants(self) -> list[ParticipantRecord]:
        """All directory entries, by name."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(participants).order_by(participants.c.name)).mappings().all()
        return [_participant(r) for r in rows]

    # ---- issuance requests ----------------------------------------------------------------------------------
    def add_request(self, holder_pid: str, holder_did: str, credential_ids: list[str],
                    access_token: str | None) -> RequestRecord:
        """Record a received request under a fresh issuer-side id."""
        pid = f"req-{secrets.token_hex(12)}"
        now = _now()
        with self.engine.begin() as conn:
            conn.execute(insert(requests).values(
                issuer_pid=pid, holder_pid=holder_pid, holder_did=holder_did, status="RECEIVED",
                credential_ids=json.dumps(credential_ids), access_token=access_token, created_at=now,
                updated_at=now,
            ))
        return self.request(pid)

    def request(self, issuer_pid: str) -> RequestRecord:
        """The request with this issuer-side id."""
        with self.engine.connect() as conn:
            row = conn.execute(select(requests).where(requests.c.issuer_pid == issuer_pid)).mappings().first()
        if row is None:
            raise AuthorityError(f"no issuance request {issuer_pid}", code="unknown_request", status=404)
        return _request(row)

    def requests(self, status: str | None = None) -> list[RequestRecord]:
        """Issuance requests, optionally in one status, oldest first."""
        query = select(requests).order_by(requests.c.created_at)
        if status is not None:
            query = query.where(requests.c.status == status)
        with self.engine.connect() as conn:
            return [_request(r) for r in conn.execute(query).mappings().all()]

    def set_request_status(self, issuer_pid: str, status: str, *, rejection_reason: str | None = None,
                           delivery_error: str | None = None) -> None:
        """Move a request to ``status`` (RECEIVED, ISSUED or REJECTED)."""
        with self.engine.begin() as conn:
            conn.execute(update(requests).where(requests.c.issuer_pid == issuer_pid).values(
                status=status, rejection_reason=rejection_reason, delivery_error=delivery_error,
                updated_at=_now()))

    # ---- credentials and status slots ---------------------------------------------------------------------
    def allocate_slot(self, status_list_id: str, length: int) -> int:
        """A random free index in the list (random, so indexes do not leak issuance order)."""
        with self.engine.connect() as conn:
            used = {r[0] for r in conn.execute(
                select(credentials.c.status_index).where(credentials.c.status_list_id == status_list_id))}
        if len(used) >= length:
            raise AuthorityError(f"status list {status_list_id} is full", code="status_list_full", status=500)
        while True:
            index = secrets.randbelow(length)
            if index not in used:
                return index

    def add_credential(self, record: CredentialRecord) -> None:
        """Store an issued credential; fails if its status slot is taken (caller retries with a new slot)."""
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(credentials).values(**record.__dict__))
        except IntegrityError as exc:
            raise AuthorityError(f"credential slot conflict: {exc}", code="slot_conflict", status=500) from None

    def credential(self, credential_id: str) -> CredentialRecord:
        """The issued credential with this id."""
        with self.engine.connect() as conn:
            row = conn.execute(select(credentials).where(credentials.c.id == credential_id)).mappings().first()
        if row is None:
            raise UnknownCredential(f"no credential {credential_id} was issued here")
        return _credential(row)

    def credentials(self, holder_did: str | None = None) -> list[CredentialRecord]:
        """Issued credentials, optionally of one holder, oldest first."""
        query = select(credentials).order_by(credentials.c.issued_at)
        if holder_did is not None:
            query = query.where(credentials.c.holder_did == holder_did)
        with self.engine.connect() as conn:
            return [_credential(r) for r in conn.execute(query).mappings().all()]

    def revoke(self, credential_id: str) -> CredentialRecord:
        """Mark a credential revoked (idempotent); the status list shows it on the next fetch."""
        record = self.credential(credential_id)
        if not record.revoked:
            with self.engine.begin() as conn:
                conn.execute(update(credentials).where(credentials.c.id == credential_id).values(
                    revoked=True, revoked_at=_now()))
        return self.credential(credential_id)

    def revoked_indexes(self, status_list_id: str) -> list[int]:
        """Indexes set in a status list."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(credentials.c.status_index).where(
                credentials.c.status_list_id == status_list_id, credentials.c.revoked.is_(True)))
            return sorted(r[0] for r in rows)
