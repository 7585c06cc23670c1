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
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast
from urllib.parse import urlsplit

import rfc8785
from sqlalchemy import Table, bindparam, delete, insert, select
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
    canonical = rfc8785.dumps({"caller": caller, "path": path, "message": message})
    return hashlib.sha256(canonical).hexdigest()


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


def peer_pid_hook(ctx: Any, table: Any, role: str, key: str) -> Callable[[Any, Any], None]:
    """An outbox delivery hook: the counterparty's 201 answer to our first message names its pid (``key``).

    ``table`` is the process table (negotiations or transfers); the pid is recorded once, on our ``role``'s
    process, so later messages can address the counterparty's side of the process.
    """
    attr = "provider_pid" if key == "providerPid" else "consumer_pid"

    def hook(row: Any, response: Any) -> None:
        if not isinstance(response, dict) or not response.get(key):
            return
        with ctx.extras["locks"](row.process_id), ctx.sessions.begin() as session:
            process = session.get(table, row.process_id)
            if process is not None and process.role == role and getattr(process, attr) is None:
                setattr(process, attr, str(response[key]))

    return hook
