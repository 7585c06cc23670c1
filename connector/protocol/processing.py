"""What negotiations and transfers share: idempotent inbound handling, per-process locks, party snapshots.

WHY an inbound log: a DSP message delivered twice (the sender retried after losing our answer) must get
the same answer and change nothing; the first answer is stored, keyed by a digest of caller, path and
canonical body, in the same transaction as the state change it caused.
"""

from __future__ import annotations

import hashlib
import json
import threading
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast
from urllib.parse import urlsplit

import rfc8785
from sqlalchemy import Table, bindparam, delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from connector.protocol.errors import MessageInvalid
from connector.storage.tables_protocol import InboundRow
from connector.trust import Party


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_pid() -> str:
    return f"urn:uuid:{uuid.uuid4()}"


def iso(value: datetime) -> str:
    aware = value if value.tzinfo else value.replace(tzinfo=UTC)
    return aware.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def check_callback(address: Any, what: str = "callbackAddress") -> str:
    """An absolute http(s) URL, else MessageInvalid (a message may not point us anywhere else)."""
    if not isinstance(address, str):
        raise MessageInvalid(f"{what} must be a string URL", code="callback_invalid")
    parts = urlsplit(address)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.username or parts.password:
        raise MessageInvalid(f"{what} {address[:200]!r} is not an absolute http(s) URL", code="callback_invalid")
    return address.rstrip("/")


def party_to_json(party: Party) -> str:
    return json.dumps({"did": party.did, "credentials": list(party.credentials), "facts": party.facts})


def party_from_json(text: str | None, did: str) -> Party:
    if not text:
        return Party(did)
    data = json.loads(text)
    return Party(data.get("did", did), tuple(data.get("credentials", [])), dict(data.get("facts", {})))


def message_digest(caller: str, path: str, message: dict[str, Any]) -> str:
    """The inbound log's key: SHA-256 of the JCS form of caller, path and message (MessageInvalid when the
    message holds a value JCS has no form for)."""
    return hashlib.sha256(canonical_json({"caller": caller, "path": path, "message": message})).hexdigest()


_SAFE_INT = 2**53 - 1  # JCS numbers are IEEE doubles; rfc8785 refuses integers beyond this


def canonical_json(value: Any) -> bytes:
    """The RFC 8785 (JCS) bytes of a parsed JSON value.

    WHY not always ``rfc8785.dumps``: it is pure Python and cost four times ``json.dumps``. For the values
    DSP messages are made of (objects, arrays, strings, booleans, null, integers, and no keys outside the
    Basic Multilingual Plane) ``json.dumps`` with sorted keys, no spaces and no ASCII escaping writes the
    very same bytes: the same string escapes, and code point order is UTF-16 order within the BMP. Any
    other value (a float, an integer JCS cannot hold, an astral key) is written by ``rfc8785`` itself.
    """
    try:
        if _json_dumps_is_jcs(value):
            return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        return rfc8785.dumps(value)
    except ValueError as exc:  # rfc8785's CanonicalizationError, or a lone surrogate (UnicodeEncodeError)
        raise MessageInvalid(f"the message has no canonical JSON form: {str(exc)[:200]}",
                             code="message_not_canonical") from exc


def _json_dumps_is_jcs(value: Any) -> bool:
    """True when ``value`` holds only the kinds of JSON value for which sorted json.dumps equals JCS."""
    stack: list[Iterable[Any]] = [(value,)]
    while stack:
        for item in stack.pop():
            kind = type(item)
            if kind is dict:
                try:
                    keys = "".join(item)
                except TypeError:  # a key that is not a string
                    return False
                if not keys.isascii() and max(keys) > "\uffff":
                    return False
                stack.append(item.values())
            elif kind is list:
                stack.append(item)
            elif kind is int:
                if not -_SAFE_INT <= item <= _SAFE_INT:
                    return False
            elif not (kind is str or kind is bool or item is None):
                return False
    return True


@dataclass(frozen=True)
class Answer:
    """What an inbound handler decided: HTTP status and JSON body (None for an empty 200)."""

    status: int
    body: dict[str, Any] | None
    process_id: str | None = None


class ProcessLocks:
    """One lock per process id, so two messages for the same process never interleave in this connector."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}

    def __call__(self, key: str) -> threading.Lock:
        with self._guard:
            lock = self._locks.get(key)
            if lock is None:
                if len(self._locks) > 10_000:
                    self._locks = {k: v for k, v in self._locks.items() if v.locked()}
                lock = self._locks[key] = threading.Lock()
            return lock


StateOf = Callable[[Session, str], "str | None"]

# The inbound log is read and written with SQL Core statements on the handler's own connection and
# transaction: the ORM unit of work (identity map, object state, flush planning) bought nothing for a row
# that is only ever inserted, looked up by its key and deleted, and cost more than the statements.
_INBOUND = cast(Table, InboundRow.__table__)
_SEEN = select(_INBOUND.c.process_id, _INBOUND.c.state, _INBOUND.c.status, _INBOUND.c.response).where(
    _INBOUND.c.digest == bindparam("digest"))
_FORGET = delete(_INBOUND).where(_INBOUND.c.digest == bindparam("digest"))
_RECORD = insert(_INBOUND)


def handle_once(sessions: sessionmaker[Session], digest: str, handler: Callable[[Session], Answer],
                state_of: StateOf) -> tuple[Answer, bool]:
    """Run ``handler`` in one transaction unless this exact message was already answered in this state.

    A message that created its process is always answered as the first time. Any other repeat is recognised
    while its process is still in the state the first copy left it in; once the process has moved on (e.g.
    suspended again after a resumption), the same bytes are a new message.
    Returns the answer and whether it is new (False: a repeat, nothing changed).
    """
    try:
        with sessions.begin() as session:  # a repeat reads and writes nothing more, so one transaction serves
            connection = session.connection()
            seen = connection.execute(_SEEN, {"digest": digest}).first()
            if seen is not None:
                if seen.state is None or state_of(session, seen.process_id or "") == seen.state:
                    return _replay(seen), False
                connection.execute(_FORGET, {"digest": digest})
            answer = handler(session)
            # a message that created its process (201) is the same request for ever: no state to compare
            state = state_of(session, answer.process_id) if answer.process_id and answer.status != 201 else None
            # written after the handler, in its transaction: the answer is stored only with the change it caused
            connection.execute(_RECORD, {"digest": digest, "process_id": answer.process_id, "state": state,
                                         "status": answer.status, "received_at": utcnow(),
                                         "response": json.dumps(answer.body) if answer.body is not None else ""})
    except IntegrityError:  # the same message raced in twice: the other copy won, answer as it did
        with sessions() as session:
            seen = session.connection().execute(_SEEN, {"digest": digest}).first()
            if seen is None:
                raise
            return _replay(seen), False
    return answer, True


def _replay(seen: Any) -> Answer:
    """The stored first answer (``seen``: a row of ``_SEEN``)."""
    body = json.loads(seen.response) if seen.response else None
    return Answer(seen.status, body, seen.process_id)


def peer_pid_hook(table: Any, role: str, key: str) -> Callable[[Session, Any, Any], None]:
    """An outbox delivery hook: the counterparty's 201 answer to our first message names its pid (``key``).

    ``table`` is the process table (negotiations or transfers); the pid is recorded once, on our ``role``'s
    process, so later messages can address the counterparty's side of the process. The outbox runs the hook
    in its worker thread, inside the transaction that marks the message sent and under the process's lock
    (``connector.outbox.Outbox.on_delivered``): one conditional UPDATE, no session or transaction of its own.
    """
    rows = cast(Table, table.__table__)
    column = rows.c.provider_pid if key == "providerPid" else rows.c.consumer_pid
    record = (update(rows).where(rows.c.id == bindparam("process"), rows.c.role == role, column.is_(None))
              .values({column: bindparam("peer")}))

    def hook(session: Session, row: Any, response: Any) -> None:
        if not isinstance(response, dict) or not response.get(key):
            return
        session.execute(record, {"process": row.process_id, "peer": str(response[key])})

    return hook
