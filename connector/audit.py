"""Append-only, hash-chained audit trail with signed checkpoints and transfer receipts.

WHY a hash chain plus signed checkpoints: each entry's hash covers the previous hash and the canonical
JSON (RFC 8785) of the entry, so editing, removing or reordering any entry breaks the chain at that point;
a checkpoint (a JWS by the connector's key over the chain head) stops someone with database access from
rewriting the whole chain after the fact. Receipts are JWS by the *receiving* side of a transfer over
(agreement, transfer, digest, size, time), so both sides can later prove what moved.

Everyone in the connector calls :meth:`AuditLog.record` for every decision, on the one log per context::

    from connector.audit import audit_for
    audit_for(ctx).record("negotiation.decision", process_id=pid, agreement_id=aid, counterparty=did,
                 agreement_hash=h, decision="permit", summary="...")
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, TextIO

import rfc8785
from sqlalchemy import Engine, bindparam, func, insert, select, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from connector.errors import ConnectorError
from connector.logs import current_correlation_id
from connector.storage.tables_audit import AuditCheckpointRow, AuditEntryRow, AuditReceiptRow
from identity.credentials.errors import CredentialError
from identity.credentials.jws import parse_compact, sign_compact
from identity.keys import KeyPair

GENESIS = "0" * 64
CHECKPOINT_TYP = "pactum-audit-checkpoint+jwt"
RECEIPT_TYP = "pactum-receipt+jwt"
RECEIPT_TYPE = "PactumTransferReceipt"
_INDEXED = ("process_id", "agreement_id", "counterparty", "decision")
_ADVISORY_LOCK = 0x70616374  # "pact": serialises appends across processes on PostgreSQL
_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()


class AuditError(ConnectorError):
    """The audit trail cannot record, or a receipt/checkpoint is not acceptable."""

    code = "audit_error"
    status = 400


class ReceiptInvalid(AuditError):
    code = "receipt_invalid"


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, float):
        return value if value == value and value not in (float("inf"), float("-inf")) else str(value)
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat().replace("+00:00", "Z")
    if isinstance(value, date | Decimal | Path | timedelta):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = [_jsonable(v) for v in value]
        return sorted(items, key=str) if isinstance(value, set | frozenset) else items
    return str(value)


def _simple(value: Any) -> bool:
    """True when ``json.dumps(sort_keys=True)`` already yields RFC 8785 output: no floats, ASCII keys."""
    stack = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, float):
            return False
        if isinstance(node, dict):
            for key, item in node.items():
                if not key.isascii():
                    return False
                stack.append(item)
        elif isinstance(node, list):
            stack.extend(node)
    return True


def canonical(value: Any) -> bytes:
    """RFC 8785 canonical JSON of ``value`` (after turning datetimes etc. into strings).

    WHY two paths: the ``rfc8785`` package is pure Python and sits on the audit hot path; for values
    without floats and with ASCII keys the standard encoder (sorted keys, no spaces, no ASCII escaping)
    produces the identical bytes, so it is used there.
    """
    return _canonical_clean(_jsonable(value))


def _canonical_clean(clean: Any) -> bytes:
    """:func:`canonical` of a value already made of JSON types (the append path cleans its fields once)."""
    if _simple(clean):
        return json.dumps(clean, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return rfc8785.dumps(clean)


def chain_hash(prev_hash: str, body: bytes) -> str:
    """The hash of one entry: SHA-256 over the previous hash (hex, ASCII) followed by its canonical body."""
    return hashlib.sha256(prev_hash.encode("ascii") + body).hexdigest()


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class AuditEntry:
    """One recorded entry as stored (``fields`` holds everything the caller passed)."""

    seq: int
    time: str
    kind: str
    fields: dict[str, Any]
    prev_hash: str
    hash: str

    def to_json(self) -> dict[str, Any]:
        return {"seq": self.seq, "time": self.time, "kind": self.kind, "fields": self.fields,
                "prevHash": self.prev_hash, "hash": self.hash}


@dataclass(frozen=True)
class Receipt:
    """A verified transfer receipt."""

    transfer_id: str
    agreement_id: str
    signer: str
    digest: str
    size: int
    time: str
    jws: str


@dataclass
class VerifyResult:
    """What :meth:`AuditLog.verify` found; ``ok`` only when there are no problems."""

    entries: int = 0
    checkpoints: int = 0
    receipts: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "entries": self.entries, "checkpoints": self.checkpoints,
                "receipts": self.receipts, "problems": self.problems}


KeyLookup = Callable[[str], KeyPair | None]


# ---------------------------------------------------------------------------------------------- receipts
def sign_receipt(key: KeyPair, kid: str, signer_did: str, *, transfer_id: str, agreement_id: str, digest: str,
                 size: int, audience: str | None = None, time: str | None = None) -> str:
    """The receiving side's signed statement that it got ``size`` bytes with ``digest`` for a transfer."""
    payload: dict[str, Any] = {"type": RECEIPT_TYPE, "iss": signer_did, "transferId": transfer_id,
                               "agreementId": agreement_id, "digest": digest, "size": int(size),
                               "time": time or _now_iso()}
    if audience:
        payload["aud"] = audience
    return sign_compact({"typ": RECEIPT_TYP, "kid": kid}, payload, key)


def read_receipt(jws: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Header and payload of a receipt, shape-checked but NOT signature-checked."""
    try:
        parsed = parse_compact(jws, max_bytes=16_384)
    except CredentialError as exc:
        raise ReceiptInvalid(f"receipt is not a compact JWS: {exc}") from None
    p = parsed.payload
    if p.get("type") != RECEIPT_TYPE:
        raise ReceiptInvalid(f"receipt payload type must be {RECEIPT_TYPE}")
    for name in ("iss", "transferId", "agreementId", "digest", "time"):
        if not isinstance(p.get(name), str) or not p[name]:
            raise ReceiptInvalid(f"receipt payload needs a non-empty string {name!r}")
    if not isinstance(p.get("size"), int) or isinstance(p["size"], bool) or p["size"] < 0:
        raise ReceiptInvalid("receipt payload needs a non-negative integer 'size'")
    if not isinstance(parsed.header.get("kid"), str):
        raise ReceiptInvalid("receipt header needs a 'kid'")
    return parsed.header, p


def verify_receipt(jws: str, key: KeyPair) -> dict[str, Any]:
    """Check a receipt's signature with the signer's public key; returns its payload."""
    _header, payload = read_receipt(jws)
    parsed = parse_compact(jws, max_bytes=16_384)
    if parsed.header.get("alg") != key.alg or not key.verify(parsed.signature, parsed.signing_input):
        raise ReceiptInvalid("receipt signature does not verify with the signer's key")
    return payload


# ---------------------------------------------------------------------------------------------- the log
def _engine_lock(url: str) -> threading.Lock:
    with _locks_guard:
        return _locks.setdefault(url, threading.Lock())


class ChainConflict(Exception):
    """Another writer appended the same sequence number first; the caller retries with the new head."""


class FastStatement:
    """A Core statement compiled once per dialect and run straight on the DBAPI cursor.

    WHY: every data request counts a use and appends an entry; SQLAlchemy's per-execute machinery cost more
    than the SQL itself there. Only plain str/int parameters go through here (no type processing needed).
    """

    def __init__(self, statement: Any) -> None:
        self.statement = statement
        self._compiled: dict[str, tuple[str, tuple[str, ...] | None, dict[str, Any]]] = {}

    def sql_for(self, dialect: Any) -> tuple[str, tuple[str, ...] | None, dict[str, Any]]:
        """SQL text, positional parameter order (None for named styles), and the statement's own constants."""
        hit = self._compiled.get(dialect.name)
        if hit is None:
            compiled = self.statement.compile(dialect=dialect)
            order = tuple(compiled.positiontup or ()) if dialect.positional else None
            constants = {name: bind.value for name, bind in
                         ((compiled.bind_names[b], b) for b in compiled.binds.values())
                         if bind.value is not None and not bind.required}
            hit = (str(compiled), order, constants)
            self._compiled[dialect.name] = hit
        return hit


class AuditTransaction:
    """Entries appended inside :meth:`AuditLog.transaction`, plus the caller's own writes (:meth:`execute`),
    all in one database transaction."""

    def __init__(self, cursor: Any, dialect: Any, head: tuple[int, str]) -> None:
        self.cursor = cursor
        self.dialect = dialect
        self.head = head
        self.entries: list[AuditEntry] = []

    def execute(self, statement: FastStatement, params: dict[str, Any]) -> Any:
        """Run a precompiled statement in this transaction; returns the first row (RETURNING) or None."""
        sql, order, constants = statement.sql_for(self.dialect)
        values = {**constants, **params} if constants else params
        self.cursor.execute(sql, tuple(values[name] for name in order) if order is not None else values)
        return self.cursor.fetchone() if self.cursor.description else None

    def record(self, kind: str, **fields: Any) -> AuditEntry:
        if not isinstance(kind, str) or not kind or len(kind) > 80:
            raise AuditError("an audit entry needs a kind of 1 to 80 characters")
        clean = _jsonable({k: v for k, v in fields.items() if v is not None})
        for name in _INDEXED:
            if name in clean and not isinstance(clean[name], str):
                clean[name] = str(clean[name])
        corr = current_correlation_id()
        if corr and "correlation_id" not in clean:
            clean["correlation_id"] = corr  # follow one negotiation or transfer across both connectors
        seq, prev = self.head[0] + 1, self.head[1]
        now = _now_iso()
        body = _canonical_clean({"seq": seq, "time": now, "kind": kind, "fields": clean})
        digest = chain_hash(prev, body)
        self.execute(_INSERT_ENTRY, {
            "seq": seq, "time": now, "kind": kind, "body": body.decode("utf-8"), "prev_hash": prev,
            "hash": digest, **{name: clean.get(name) for name in _INDEXED}})
        entry = AuditEntry(seq, now, kind, clean, prev, digest)
        self.head = (seq, digest)
        self.entries.append(entry)
        return entry


_INSERT_ENTRY = FastStatement(insert(AuditEntryRow).values(
    {name: bindparam(name) for name in ("seq", "time", "kind", "body", "prev_hash", "hash", *_INDEXED)}))
_HEAD = FastStatement(text("SELECT seq, hash FROM audit_entries ORDER BY seq DESC LIMIT 1"))


class AuditLog:
    """The connector's audit trail in its database; safe to share between threads.

    ``signer``/``kid``/``did`` come from the connector's wallet; without a signer no checkpoints are
    written (the chain alone still detects edits, removals and reordering).
    """

    def __init__(self, sessions: sessionmaker[Session], *, signer: KeyPair | None = None, kid: str | None = None,
                 did: str | None = None, checkpoint_every: int = 100) -> None:
        if checkpoint_every < 1:
            raise AuditError("checkpoint_every must be at least 1")
        self._sessions = sessions
        self._signer = signer
        self._kid = kid
        self._did = did
        self._every = checkpoint_every
        bind = sessions.kw.get("bind")
        if not isinstance(bind, Engine):
            raise AuditError("the audit log needs a sessionmaker bound to an engine")
        self._engine = bind
        self._head: tuple[int, str] | None = None  # cached chain head (SQLite: one writer process)
        self._url = str(bind.url)
        self._is_pg = getattr(getattr(bind, "dialect", None), "name", "") == "postgresql"
        self._lock = _engine_lock(self._url)
        # WHY a kept connection (SQLite only): appends are serialised by ``_lock`` anyway, and a pool
        # checkout/check-in (with its reset) cost more than the append itself on the data path.
        self._conn: Any = None

    @classmethod
    def for_wallet(cls, sessions: sessionmaker[Session], wallet: Any, **kwargs: Any) -> AuditLog:
        """An audit log whose checkpoints are signed with the wallet's current key."""
        return cls(sessions, signer=wallet.key, kid=wallet.kid, did=wallet.did, **kwargs)

    # ---- writing ---------------------------------------------------------------------------------------
    def record(self, kind: str, **fields: Any) -> AuditEntry:
        """Append one entry; ``fields`` are free-form (process_id, agreement_id, counterparty, decision, ...)."""
        return self.record_with(None, kind, **fields)

    def record_with(self, effect: Callable[[AuditTransaction], Any] | None, kind: str, **fields: Any
                    ) -> AuditEntry:
        """Append one entry and run ``effect(tx)`` (the caller's own write via ``tx.execute``) in the same commit."""
        for _attempt in range(5):
            try:
                with self.transaction() as tx:
                    entry = tx.record(kind, **fields)
                    if effect is not None:
                        effect(tx)
                    return entry
            except ChainConflict:  # another process appended the same seq first: read the head again
                self._head = None
        raise AuditError("could not append to the audit trail: too much contention", status=503)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[AuditTransaction]:
        """Append entries in one database transaction, together with the caller's own writes (``tx.execute``).

        WHY: the data plane counts a use and logs the decision in a single commit, so a crash can never
        leave a counted use without its audit entry (or the reverse), and the hot path pays one commit.
        Raising inside the block rolls back both. No ``await`` may happen inside (a thread lock is held).
        """
        dbapi = self._engine.dialect.loaded_dbapi
        with self._lock:
            raw = self._conn
            if raw is None:
                try:
                    raw = self._engine.raw_connection()
                except SQLAlchemyError as exc:
                    raise AuditError(f"cannot open the audit trail: {exc.__class__.__name__}", status=503) from exc
            keep = not self._is_pg
            cursor = raw.cursor()
            try:
                if self._is_pg:
                    cursor.execute("SELECT pg_advisory_xact_lock(%s)", (_ADVISORY_LOCK,))
                head = None if self._is_pg else self._head
                probe = AuditTransaction(cursor, self._engine.dialect, (0, GENESIS))
                if head is None:
                    last = probe.execute(_HEAD, {})
                    head = (int(last[0]), str(last[1])) if last else (0, GENESIS)
                tx = AuditTransaction(cursor, self._engine.dialect, head)
                yield tx
                raw.commit()
            except dbapi.IntegrityError:
                raw.rollback()
                self._head = None
                raise ChainConflict() from None
            except dbapi.Error as exc:
                keep = False  # the connection may be broken: the next append opens a fresh one
                with contextlib.suppress(dbapi.Error):
                    raw.rollback()
                self._head = None
                raise AuditError(f"cannot write the audit trail: {exc.__class__.__name__}: {exc}",
                                 status=503) from exc
            except BaseException:
                raw.rollback()
                raise
            finally:
                cursor.close()
                if keep:
                    self._conn = raw
                else:
                    self._conn = None
                    raw.close()
            self._head = tx.head
        if self._signer is not None and tx.entries and (
                tx.entries[-1].seq // self._every > (tx.entries[0].seq - 1) // self._every):
            self.checkpoint()

    def checkpoint(self) -> str | None:
        """Sign the current chain head (no-op without a signer or when nothing changed since the last one)."""
        if self._signer is None or self._kid is None:
            return None
        with self._lock, self._sessions.begin() as session:
            head = session.execute(
                select(AuditEntryRow.seq, AuditEntryRow.hash).order_by(AuditEntryRow.seq.desc()).limit(1)).first()
            if head is None:
                return None
            last_cp = session.execute(select(func.max(AuditCheckpointRow.seq))).scalar()
            if last_cp is not None and last_cp >= head[0]:
                return None
            now = datetime.now(UTC)
            payload = {"iss": self._did, "seq": head[0], "head": head[1],
                       "time": now.isoformat().replace("+00:00", "Z")}
            jws = sign_compact({"typ": CHECKPOINT_TYP, "kid": self._kid}, payload, self._signer)
            session.add(AuditCheckpointRow(seq=head[0], head_hash=head[1], jws=jws, created_at=now))
        return jws

    def close(self) -> None:
        """Write a final checkpoint and give back the kept connection; call on shutdown."""
        self.checkpoint()
        with self._lock:
            conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def store_receipt(self, jws: str, signer_key: KeyPair, *, role: str = "received",
                      expect_transfer: str | None = None) -> Receipt:
        """Verify a receipt with the signer's key and keep it; returns it."""
        payload = verify_receipt(jws, signer_key)
        if expect_transfer is not None and payload["transferId"] != expect_transfer:
            raise ReceiptInvalid(f"receipt is for transfer {payload['transferId']!r}, not {expect_transfer!r}")
        receipt = Receipt(payload["transferId"], payload["agreementId"], payload["iss"], payload["digest"],
                          payload["size"], payload["time"], jws)
        try:
            with self._sessions.begin() as session:
                session.add(AuditReceiptRow(
                    transfer_id=receipt.transfer_id, agreement_id=receipt.agreement_id, signer=receipt.signer,
                    role=role, digest=receipt.digest, size=receipt.size, jws=jws,
                    signer_key=json.dumps(signer_key.public_jwk()), created_at=datetime.now(UTC)))
        except SQLAlchemyError as exc:
            raise AuditError(f"cannot store the receipt: {exc.__class__.__name__}", status=503) from exc
        self.record("receipt." + role, process_id=receipt.transfer_id, agreement_id=receipt.agreement_id,
                    counterparty=receipt.signer, digest=receipt.digest, bytes=receipt.size)
        return receipt

    # ---- reading -------------------------------------------------------------------------------------
    def entries(self, *, batch: int = 1000) -> Iterator[AuditEntry]:
        """Every entry in chain order (reads in batches, so a long trail never sits in memory at once)."""
        after = 0
        while True:
            with self._sessions() as session:
                rows = session.execute(select(AuditEntryRow).where(AuditEntryRow.seq > after)
                                       .order_by(AuditEntryRow.seq).limit(batch)).scalars().all()
            if not rows:
                return
            for row in rows:
                body = json.loads(row.body)
                yield AuditEntry(row.seq, row.time, row.kind, body.get("fields", {}), row.prev_hash, row.hash)
            after = rows[-1].seq

    def receipts(self, transfer_id: str | None = None) -> list[Receipt]:
        """Stored receipts, optionally for one transfer."""
        query = select(AuditReceiptRow).order_by(AuditReceiptRow.id)
        if transfer_id is not None:
            query = query.where(AuditReceiptRow.transfer_id == transfer_id)
        with self._sessions() as session:
            rows = session.execute(query).scalars().all()
        return [Receipt(r.transfer_id, r.agreement_id, r.signer, r.digest, r.size,
                        str(read_receipt(r.jws)[1]["time"]), r.jws) for r in rows]

    def head(self) -> tuple[int, str]:
        """(seq, hash) of the newest entry, or (0, GENESIS) for an empty trail."""
        with self._sessions() as session:
            row = session.execute(select(AuditEntryRow.seq, AuditEntryRow.hash)
                                  .order_by(AuditEntryRow.seq.desc()).limit(1)).first()
        return (row[0], row[1]) if row else (0, GENESIS)

    # ---- verification and export -------------------------------------------------------------------------
    def verify(self, keys: KeyLookup | None = None) -> VerifyResult:
        """Re-check the chain, every checkpoint's signature (via ``keys(kid)``) and every receipt's signature."""
        result = VerifyResult()
        hashes: dict[int, str] = {}
        expected_seq, prev = 1, GENESIS
        with self._sessions() as session:
            # only the hashes at checkpointed positions are kept; entries are streamed, never all in memory
            wanted = set(session.execute(select(AuditCheckpointRow.seq)).scalars())
            rows = session.execute(select(AuditEntryRow).order_by(AuditEntryRow.seq)
                                   .execution_options(yield_per=1000)).scalars()
            for row in rows:
                result.entries += 1
                self._check_entry(row, expected_seq, prev, result.problems)
                if row.seq in wanted:
                    hashes[row.seq] = row.hash
                expected_seq, prev = row.seq + 1, row.hash
                # no expunge_all() here: it invalidates the identity map the streamed batches still load into
                # (the map holds rows weakly, so rows already checked are freed anyway)
            last_seq = expected_seq - 1
            for cp in session.execute(select(AuditCheckpointRow).order_by(AuditCheckpointRow.id)).scalars():
                result.checkpoints += 1
                self._check_checkpoint(cp, hashes, last_seq, keys, result.problems)
            for rec in session.execute(select(AuditReceiptRow).order_by(AuditReceiptRow.id)).scalars():
                result.receipts += 1
                try:
                    payload = verify_receipt(rec.jws, KeyPair.from_jwk(json.loads(rec.signer_key)))
                except (ConnectorError, ValueError, Exception) as exc:  # noqa: BLE001 - report, never crash
                    result.problems.append(f"receipt {rec.id} (transfer {rec.transfer_id}): {exc}")
                    continue
                if (payload["transferId"], payload["digest"], payload["size"]) != (rec.transfer_id, rec.digest,
                                                                                   rec.size):
                    result.problems.append(f"receipt {rec.id}: stored columns differ from the signed receipt")
        return result

    @staticmethod
    def _check_entry(row: AuditEntryRow, expected_seq: int, prev: str, problems: list[str]) -> None:
        if row.seq != expected_seq:
            problems.append(f"entry {row.seq}: expected entry {expected_seq} here (entries removed or reordered)")
        if row.prev_hash != prev:
            problems.append(f"entry {row.seq}: previous-hash link broken (an entry before it was removed, "
                            "reordered or edited)")
        body = row.body.encode("utf-8")
        if chain_hash(row.prev_hash, body) != row.hash:
            problems.append(f"entry {row.seq}: content does not match its hash (edited)")
            return
        try:
            parsed = json.loads(body)
        except ValueError:
            problems.append(f"entry {row.seq}: body is not JSON")
            return
        fields = parsed.get("fields", {})
        columns = {"seq": row.seq, "time": row.time, "kind": row.kind,
                   **{name: getattr(row, name) for name in _INDEXED}}
        signed = {"seq": parsed.get("seq"), "time": parsed.get("time"), "kind": parsed.get("kind"),
                  **{name: fields.get(name) for name in _INDEXED}}
        if columns != signed:
            problems.append(f"entry {row.seq}: columns differ from the hashed content (edited)")

    @staticmethod
    def _check_checkpoint(cp: AuditCheckpointRow, hashes: dict[int, str], last_seq: int, keys: KeyLookup | None,
                          problems: list[str]) -> None:
        try:
            parsed = parse_compact(cp.jws)
        except CredentialError as exc:
            problems.append(f"checkpoint at entry {cp.seq}: not a JWS ({exc})")
            return
        payload = parsed.payload
        if payload.get("seq") != cp.seq or payload.get("head") != cp.head_hash:
            problems.append(f"checkpoint at entry {cp.seq}: stored columns differ from the signed checkpoint")
        if keys is not None:
            key = keys(str(parsed.header.get("kid", "")))
            if key is None:
                problems.append(f"checkpoint at entry {cp.seq}: unknown signing key {parsed.header.get('kid')!r}")
            elif parsed.header.get("alg") != key.alg or not key.verify(parsed.signature, parsed.signing_input):
                problems.append(f"checkpoint at entry {cp.seq}: signature does not verify")
        seq = payload.get("seq")
        if not isinstance(seq, int):
            return
        if seq > last_seq:
            problems.append(f"checkpoint at entry {seq}: the trail ends at entry {last_seq} (entries removed)")
        elif hashes.get(seq) != payload.get("head"):
            problems.append(f"checkpoint at entry {seq}: chain head differs from the signed one (rewritten)")

    def export(self, out: TextIO) -> int:
        """Write entries, checkpoints and receipts as JSON lines (one object each); returns lines written."""
        count = 0
        for entry in self.entries():
            out.write(json.dumps({"record": "entry", **entry.to_json()}, ensure_ascii=False) + "\n")
            count += 1
        with self._sessions() as session:
            for cp in session.execute(select(AuditCheckpointRow).order_by(AuditCheckpointRow.id)).scalars():
                out.write(json.dumps({"record": "checkpoint", "seq": cp.seq, "head": cp.head_hash,
                                      "jws": cp.jws}) + "\n")
                count += 1
            for rec in session.execute(select(AuditReceiptRow).order_by(AuditReceiptRow.id)).scalars():
                out.write(json.dumps({"record": "receipt", "role": rec.role, "transferId": rec.transfer_id,
                                      "agreementId": rec.agreement_id, "signer": rec.signer,
                                      "digest": rec.digest, "size": rec.size, "jws": rec.jws,
                                      "signerKey": json.loads(rec.signer_key)}) + "\n")
                count += 1
        return count


def audit_for(ctx: Any) -> AuditLog:
    """The connector's one audit log (signed with the wallet's key), created on first use and kept on ``ctx``.

    Kept in ``ctx.extras["audit"]`` (or ``ctx.audit`` when the context has that attribute) so every area
    appends to the same chain through the same lock.
    """
    existing = getattr(ctx, "audit", None) or ctx.extras.get("audit")
    if isinstance(existing, AuditLog):
        return existing
    log = AuditLog.for_wallet(ctx.sessions, ctx.wallet)
    ctx.extras["audit"] = log
    return log
