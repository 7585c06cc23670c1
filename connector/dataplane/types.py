"""What the transfer state machine (engineer E) hands the data plane, and the hooks it passes back in.

WHY Protocols and plain callables: the data plane must re-ask "is this transfer still STARTED?" and "were
the counterparty's credentials revoked?" on every request, but it must not import the state machine; the
connector app wires the real implementations in, and tests wire real ones over a real database.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol

from policies import Policy

HTTP_ENDPOINT_TYPE = "https://w3id.org/idsa/v4.1/HTTP"
STARTED = "STARTED"

TransferType = Literal["HttpData-PULL", "HttpData-PUSH"]


@dataclass(frozen=True)
class AssetInfo:
    """The dataset being transferred: its id, where the bytes live (``data_address``) and its properties.

    ``data_address`` is either ``{"source": <data source name>, "path": <sub path>?}`` (a configured
    ``[[data_sources]]`` entry) or a direct address: ``{"type": "file"|"folder", "path": ...}``,
    ``{"type": "http"|"HttpData", "baseUrl"|"url": ...}``, ``{"type": "inline", "data": ...}``.
    Properties may set ``contentType`` and ``pactum:anonymization`` (``mask`` or ``drop``).
    """

    id: str
    data_address: Mapping[str, Any]
    properties: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TransferInfo:
    """One transfer as the provider's data plane needs to serve and re-check it."""

    transfer_id: str
    agreement_id: str
    policy: Policy
    agreement_time: datetime
    asset: AssetInfo
    consumer_did: str
    transfer_type: str = "HttpData-PULL"
    consumer_data_address: Mapping[str, Any] | None = None  # for PUSH: where to send the bytes
    credentials: tuple[Mapping[str, Any], ...] = ()  # the consumer's verified VCs (plain JSON) at negotiation
    consumer_pid: str | None = None
    facts: Mapping[str, Any] = field(default_factory=dict)  # request facts from negotiation (xb:retention...)
    purpose: str | None = None

    @property
    def is_push(self) -> bool:
        return self.transfer_type.upper().endswith("PUSH")


class TransferStates(Protocol):
    """E's view of the transfer state machine: the DSP state of a transfer ("STARTED", "SUSPENDED", ...).

    An implementation whose states live in the data plane's own database may also offer
    ``state_statement``: a :class:`connector.audit.FastStatement` selecting the state of the transfer bound
    as ``:transfer``. The data plane then reads the state inside the transaction that counts the use, so the
    check and the count are one atomic step and cost one indexed read instead of a separate session.
    """

    def state_of(self, transfer_id: str) -> str | None: ...


RevocationCheck = Callable[[str, tuple[Mapping[str, Any], ...]], "str | None | Awaitable[str | None]"]
"""(consumer DID, credentials) -> None when all still valid, else the reason (e.g. "credential X revoked")."""

OnComplete = Callable[[str, str, int], "None | Awaitable[None]"]
"""(transfer id, digest, size): a PUSH finished; E moves the transfer to COMPLETED."""

SuspendHook = Callable[[str, str], "None | Awaitable[None]"]
"""(agreement id, reason): E suspends every running transfer of the agreement."""

TerminateHook = Callable[[str, str], "None | Awaitable[None]"]
"""(agreement id, reason): E terminates every running transfer of the agreement."""

FailHook = Callable[[str, str, str, str], "None | Awaitable[None]"]
"""(transfer id, step "terminate" or "suspend", code, reason): the data plane could not serve a transfer it was
started for (a PUSH refused by the agreement, or undeliverable); E moves it on and tells the counterparty."""


@dataclass(frozen=True)
class TransferResult:
    """What moved: bytes, the SHA-256 digest (``sha-256=<hex>``), and the receipt sent or received."""

    transfer_id: str
    size: int
    digest: str
    receipt: str | None = None
    location: str | None = None
