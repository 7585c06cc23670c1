"""The holder side of the DCP credential issuance protocol: ask an issuer for credentials, follow the request.

The holder grants the issuer write access to exactly the requested credential types (an access token in the
SI token's ``token`` claim); the issuer later delivers to the holder's credential service with it.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

import httpx

from identity.dcp.errors import DcpError, RemoteError
from identity.dcp.presentation_client import _remote_problem
from identity.dcp.schemas import DCP_CONTEXT, validate_message
from identity.dcp.scopes import ScopeForm, type_scope


class Holder(Protocol):
    """What the issuance client needs from a wallet."""

    @property
    def did(self) -> str: ...

    def sign_si_token(self, aud: str, token: str | None = None) -> str: ...

    def issue_access_token(self, verifier_did: str, scopes: Iterable[str]) -> str: ...


@dataclass(frozen=True)
class IssuanceRequest:
    """A request the issuer accepted: where to poll, and the ids on both sides."""

    location: str
    issuer_did: str
    holder_pid: str


async def fetch_issuer_metadata(issuer_url: str, http_client: httpx.AsyncClient) -> dict[str, Any]:
    """GET and validate the issuer's ``IssuerMetadata``."""
    url = issuer_url.rstrip("/") + "/metadata"
    try:
        response = await http_client.get(url)
    except httpx.HTTPError as exc:
        raise RemoteError(f"issuer {url} unreachable: {type(exc).__name__}", code="issuer_unreachable") from None
    if response.status_code != 200:
        raise RemoteError(f"issuer {url} answered {response.status_code}", code="issuer_refused")
    try:
        body = response.json()
    except ValueError:
        raise RemoteError(f"issuer {url} answered non-JSON", code="issuer_invalid") from None
    return validate_message(body, "IssuerMetadata")


async def request_credentials(
    holder: Holder,
    issuer_url: str,
    credential_ids: Iterable[str],
    *,
    http_client: httpx.AsyncClient,
    scope_form: ScopeForm = "dcp",
    holder_pid: str | None = None,
) -> IssuanceRequest:
    """Send a CredentialRequestMessage; returns the status location from the issuer's ``201 Created``."""
    metadata = await fetch_issuer_metadata(issuer_url, http_client)
    offered = {c["id"]: c for c in metadata.get("credentialsSupported") or []}
    ids = list(credential_ids)
    if not ids:
        raise DcpError("request at least one credential", code="no_credentials_requested")
    unknown = [i for i in ids if i not in offered]
    if unknown:
        raise DcpError(f"issuer {metadata['issuer']} does not offer {', '.join(unknown)} "
                       f"(offered: {', '.join(sorted(offered))})", code="unknown_credential")
    scopes = sorted({type_scope(offered[i].get("credentialType", i), "write", scope_form) for i in ids})
    issuer_did = str(metadata["issuer"])
    access = holder.issue_access_token(issuer_did, scopes)
    token = holder.sign_si_token(issuer_did, token=access)
    pid = holder_pid or f"urn:uuid:{uuid.uuid4()}"
    message = validate_message({"@context": [DCP_CONTEXT], "type": "CredentialRequestMessage", "holderPid": pid,
                                "credentials": [{"id": i} for i in ids]}, "CredentialRequestMessage")
    url = issuer_url.rstrip("/") + "/credentials"
    try:
        response = await http_client.post(url, json=message, headers={"Authorization": f"Bearer {token}"})
    except httpx.HTTPError as exc:
        raise RemoteError(f"issuer {url} unreachable: {type(exc).__name__}", code="issuer_unreachable") from None
    if response.status_code != 201 or "location" not in response.headers:
        raise RemoteError(f"issuer refused the request: {response.status_code} {_remote_problem(response)}",
                          code="issuer_refused")
    return IssuanceRequest(response.headers["location"], issuer_did, pid)


async def request_status(holder: Holder, request: IssuanceRequest, *, http_client: httpx.AsyncClient) -> str:
    """The request's status (RECEIVED, ISSUED or REJECTED) from the issuer's status resource."""
    token = holder.sign_si_token(request.issuer_did)
    try:
        response = await http_client.get(request.location, headers={"Authorization": f"Bearer {token}"})
    except httpx.HTTPError as exc:
        raise RemoteError(f"issuer {request.location} unreachable: {type(exc).__name__}",
                          code="issuer_unreachable") from None
    if response.status_code != 200:
        raise RemoteError(f"issuer answered {response.status_code}: {_remote_problem(response)}",
                          code="issuer_refused")
    status = validate_message(response.json(), "CredentialStatus")
    return str(status["status"])


async def wait_for_issuance(holder: Holder, request: IssuanceRequest, *, http_client: httpx.AsyncClient,
                            timeout: float = 30.0, interval: float = 0.2) -> str:
    """Poll until the request leaves RECEIVED (or ``timeout``); returns the final status."""
    deadline = time.monotonic() + timeout
    while True:
        status = await request_status(holder, request, http_client=http_client)
        if status != "RECEIVED" or time.monotonic() > deadline:
            return status
        await asyncio.sleep(interval)
