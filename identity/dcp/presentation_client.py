"""The verifier side of DCP: ask a holder's credential service for presentations.

:func:`query_presentations` is the raw call; :class:`identity.dcp.verifier.DcpVerifier` builds the whole
verifier flow on top of it (SI token check, DID discovery, presentation and credential verification).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import httpx

from identity.dcp.errors import DcpError, RemoteError, TokenError
from identity.dcp.jws import parse_jws
from identity.dcp.schemas import DCP_CONTEXT, validate_message
from identity.dcp.scopes import parse_scopes
from identity.dcp.tokens import create_si_token
from identity.keys import KeyPair

CREDENTIAL_SERVICE_TYPE = "CredentialService"


def _kid(verifier_did: str, key: KeyPair, kid: str | None) -> str:
    if kid:
        return kid
    if key.kid and key.kid.startswith("did:"):
        return key.kid
    if key.kid:
        return f"{verifier_did}#{key.kid.lstrip('#')}"
    raise RemoteError("the verifier key has no kid; pass verifier_kid", code="kid_missing", status=500)


def _access_token_issuer(token: str | None) -> str:
    if token:
        try:
            issuer = parse_jws(token).payload.get("iss")
        except TokenError:
            issuer = None
        if isinstance(issuer, str) and issuer.startswith("did:"):
            return issuer
    raise DcpError("holder_did is needed when the access token does not name its issuer", code="holder_unknown")


def _remote_problem(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    if isinstance(body, dict):
        return f"{body.get('code', '')}: {body.get('detail', body)}"
    return str(body)[:200]


async def query_presentations(
    credential_service_url: str,
    *,
    verifier_key: KeyPair,
    verifier_did: str,
    holder_access_token: str | None,
    scopes: Iterable[str],
    http_client: httpx.AsyncClient,
    holder_did: str | None = None,
    verifier_kid: str | None = None,
    presentation_definition: dict[str, Any] | None = None,
) -> list[str | dict[str, Any]]:
    """POST a PresentationQueryMessage with my SI token (aud = holder, token = holder's access token).

    ``holder_did`` defaults to the ``iss`` of the access token (a JWT the holder signed). Returns the
    ``presentation`` array of the validated PresentationResponseMessage. With ``presentation_definition`` the
    query carries the definition instead of the scopes (the access token still decides what may be read).
    """
    holder_did = holder_did or _access_token_issuer(holder_access_token)
    scope_list = list(scopes)
    if presentation_definition is None:
        parse_scopes(scope_list)
    si_token = create_si_token(verifier_key, did=verifier_did, kid=_kid(verifier_did, verifier_key, verifier_kid),
                               audience=holder_did, token=holder_access_token)
    query: dict[str, Any] = {"@context": [DCP_CONTEXT], "type": "PresentationQueryMessage"}
    if presentation_definition is not None:
        query["presentationDefinition"] = presentation_definition
    else:
        query["scope"] = scope_list
    message = validate_message(query, "PresentationQueryMessage")
    url = credential_service_url.rstrip("/") + "/presentations/query"
    try:
        response = await http_client.post(url, json=message, headers={"Authorization": f"Bearer {si_token}"})
    except httpx.HTTPError as exc:
        raise RemoteError(f"credential service {url} unreachable: {exc}", code="credential_service_unreachable",
                          status=502) from None
    if response.status_code != 200:
        raise RemoteError(f"credential service {url} answered {response.status_code} "
                          f"({_remote_problem(response)})", code="credential_service_refused", status=502)
    try:
        body = response.json()
    except ValueError:
        raise RemoteError(f"credential service {url} answered non-JSON", code="credential_service_invalid",
                          status=502) from None
    validated = validate_message(body, "PresentationResponseMessage")
    return list(validated["presentation"])
