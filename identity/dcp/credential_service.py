"""The holder's DCP Credential Service: answers presentation queries and stores issued credentials.

Mount :func:`create_credential_service_router` in a connector, or run :func:`create_credential_service_app`
alone. Every request must carry ``Authorization: Bearer <caller's SI token>`` whose ``token`` claim is an
access token *this holder* signed for the caller, so a verifier sees only what the holder granted it and an
issuer may only write the credential types the holder asked for.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from fastapi import APIRouter, FastAPI, Request, Response

from identity.dcp.errors import DcpError, MessageInvalid, NotAuthorized, TokenError
from identity.dcp.http import bearer_token, did_document_path, json_body, problem_from
from identity.dcp.jti_store import JtiStore
from identity.dcp.presentation_exchange import compile_definition
from identity.dcp.schemas import DCP_CONTEXT, validate_message, validate_presentation_definition
from identity.dcp.scopes import Scope, ScopeError, granted, parse_scopes
from identity.dcp.tokens import (
    DEFAULT_LEEWAY,
    AccessGrant,
    SelfIssuedToken,
    verify_access_token,
    verify_si_token,
)
from identity.dids.resolver import Resolver
from identity.errors import IdentityError
from identity.wallet import HeldCredential, Wallet, WalletError, describe_credential

log = logging.getLogger("pactum.identity.credential_service")

ProfileChoice = Literal["vc20", "vc11", "any"]
# Called for every delivered credential before it is stored; raise IdentityError to refuse it.
CredentialCheck = Callable[[str | dict[str, Any], str], Any]


@dataclass
class CredentialServiceSettings:
    """Knobs of a credential service; defaults follow the DCP vc20 profile."""

    profile: ProfileChoice = "vc20"  # which credentials are presented: vc20, vc11 or both (one VP per profile)
    presentation_lifetime: int = 300
    leeway: int = DEFAULT_LEEWAY
    verify_delivered: bool = True  # check each delivered credential's signature before storing it


class CredentialService:
    """The logic behind the HTTP routes, usable without HTTP (tests, embedding)."""

    def __init__(self, wallet: Wallet, *, resolver: Resolver, jti_store: JtiStore,
                 settings: CredentialServiceSettings | None = None,
                 check_delivered: CredentialCheck | None = None) -> None:
        self.wallet = wallet
        self.resolver = resolver
        self.jti_store = jti_store
        self.settings = settings or CredentialServiceSettings()
        self.check_delivered = check_delivered

    async def authenticate(self, si_token: str) -> tuple[SelfIssuedToken, AccessGrant]:
        """Verify the caller's SI token (aud = my DID) and the access token I issued to it."""
        caller = await verify_si_token(si_token, audience=self.wallet.did, resolver=self.resolver,
                                       jti_store=self.jti_store, leeway=self.settings.leeway)
        if not caller.access_token:
            raise TokenError("SI token carries no access token ('token' claim) from this holder",
                             code="access_token_missing")
        grant = verify_access_token(caller.access_token, holder_document=self.wallet.did_document(),
                                    grantee=caller.did, leeway=self.settings.leeway)
        return caller, grant

    def _select(self, requested: list[Scope], grant: AccessGrant) -> list[HeldCredential]:
        chosen: dict[str, HeldCredential] = {}
        held = [c for c in self.wallet.credentials() if c.format == "jwt" and not c.is_expired()]
        for scope in requested:
            if scope.operation != "read" or not granted(scope, grant.scopes):
                continue  # DCP: scopes the client is not entitled to just yield fewer presentations
            for cred in held:
                if (scope.kind == "type" and scope.value in cred.types) or (
                    scope.kind == "id" and scope.value == cred.id
                ):
                    chosen.setdefault(cred.id, cred)
        return list(chosen.values())

    def _profiles(self) -> tuple[str, ...]:
        return ("vc20", "vc11") if self.settings.profile == "any" else (self.settings.profile,)

    def _present(self, credentials: list[HeldCredential], audience: str) -> list[tuple[str, str, list[str]]]:
        """(profile, VP JWT, ids of the credentials inside in order), one VP per profile (DCP homogeneity)."""
        from identity.credentials.jwt import issue_vp_jwt

        presentations: list[tuple[str, str, list[str]]] = []
        for profile in self._profiles():
            chosen = [c for c in credentials if c.profile == profile]
            if chosen:
                vp = issue_vp_jwt(self.wallet.did, [str(c.payload) for c in chosen], self.wallet.key,
                                  self.wallet.kid, audience, profile=profile,
                                  expires_in=self.settings.presentation_lifetime)
                presentations.append((profile, vp, [c.id for c in chosen]))
        return presentations

    def _answer_definition(self, definition: dict[str, Any], grant: AccessGrant,
                           audience: str) -> dict[str, Any]:
        compiled = compile_definition(definition)
        readable = [
            c for c in self.wallet.credentials()
            if c.format == "jwt" and not c.is_expired() and c.profile in self._profiles() and (
                granted(Scope("id", c.id, "read"), grant.scopes)
                or any(granted(Scope("type", t, "read"), grant.scopes) for t in c.types
                       if t != "VerifiableCredential"))
        ]
        selected = compiled.select(readable)
        unique: dict[str, HeldCredential] = {}
        for hits in selected.values():
            for cred in hits:
                unique.setdefault(cred.id, cred)
        presentations = self._present(list(unique.values()), audience)
        where: dict[str, tuple[int, int, str]] = {}
        for k, (profile, _, ids) in enumerate(presentations):
            for j, cid in enumerate(ids):
                where[cid] = (k, j, profile)
        descriptor_map = []
        for descriptor_id, hits in selected.items():
            for cred in hits:
                k, j, profile = where[cred.id]
                nested = f"$.verifiableCredential[{j}]" if profile == "vc20" else f"$.vp.verifiableCredential[{j}]"
                descriptor_map.append({"id": descriptor_id, "format": "jwt_vp", "path": f"$.presentation[{k}]",
                                       "path_nested": {"id": descriptor_id, "format": "jwt_vc", "path": nested}})
        return {
            "@context": [DCP_CONTEXT], "type": "PresentationResponseMessage",
            "presentation": [vp for _, vp, _ in presentations],
            "presentationSubmission": {"id": f"urn:uuid:{uuid.uuid4()}", "definition_id": compiled.id,
                                       "descriptor_map": descriptor_map},
        }

    async def _verify_signature(self, held: HeldCredential) -> None:
        from identity.credentials.verify import verify_credential

        result = await verify_credential(held.payload, resolver=self.resolver, trust=None, check_status=False)
        if not result.ok:
            raise MessageInvalid(f"delivered credential {held.id} failed verification: {result.error_code} "
                                 f"{result.error_detail or ''}".strip(), code="credential_invalid")

    async def query(self, si_token: str, message: Any) -> dict[str, Any]:
        """Answer a PresentationQueryMessage with a PresentationResponseMessage of VP JWTs."""
        caller, grant = await self.authenticate(si_token)
        if isinstance(message, dict) and "scope" in message and "presentationDefinition" in message:
            raise MessageInvalid("a PresentationQueryMessage carries either 'scope' or 'presentationDefinition', "
                                 "not both", code="scope_and_definition")
        validate_message(message, "PresentationQueryMessage")
        if "presentationDefinition" in message:
            definition = validate_presentation_definition(message["presentationDefinition"])
            answer = self._answer_definition(definition, grant, caller.did)
            log.info("presented %d VP(s) to %s for definition %s", len(answer["presentation"]), caller.did,
                     definition.get("id"))
            return validate_message(answer, "PresentationResponseMessage")
        try:
            requested = parse_scopes(message["scope"])
        except ScopeError as exc:
            raise MessageInvalid(str(exc), code="invalid_scope") from None
        presentations = [vp for _, vp, _ in self._present(self._select(requested, grant), caller.did)]
        response = {"@context": [DCP_CONTEXT], "type": "PresentationResponseMessage",
                    "presentation": presentations}
        log.info("presented %d VP(s) to %s for %s", len(presentations), caller.did, message["scope"])
        return validate_message(response, "PresentationResponseMessage")

    async def store(self, si_token: str, message: Any) -> list[HeldCredential]:
        """Store the credentials of a CredentialMessage sent by an issuer the holder granted write access."""
        caller, grant = await self.authenticate(si_token)
        validate_message(message, "CredentialMessage")
        if message["status"] == "REJECTED":
            log.warning("issuer %s rejected request %s: %s", caller.did, message.get("holderPid"),
                        message.get("rejectionReason"))
            return []
        stored: list[HeldCredential] = []
        pending: list[HeldCredential] = []
        for container in message.get("credentials") or []:
            ctype = container["credentialType"]
            if not granted(Scope("type", ctype, "write"), grant.scopes):
                raise NotAuthorized(f"{caller.did} was not granted write access to {ctype}",
                                    code="scope_not_granted")
            try:
                held = describe_credential(container["payload"])
            except WalletError as exc:
                raise MessageInvalid(f"credential payload is not a credential: {exc}",
                                     code="credential_invalid") from None
            if held.issuer != caller.did:
                raise NotAuthorized(f"credential issued by {held.issuer}, but delivered by {caller.did}",
                                    code="issuer_mismatch")
            if ctype not in held.types:
                raise MessageInvalid(f"credential is not a {ctype}", code="credential_type_mismatch")
            if held.subject not in (None, self.wallet.did):
                raise MessageInvalid(f"credential is about {held.subject}, not this holder",
                                     code="subject_mismatch")
            if self.settings.verify_delivered:
                await self._verify_signature(held)
            if self.check_delivered is not None:
                result = self.check_delivered(held.payload, ctype)
                if hasattr(result, "__await__"):
                    await result
            pending.append(held)
        for held in pending:  # all or nothing: nothing is stored unless every credential passed
            stored.append(self.wallet.store_credential(held.payload))
        log.info("stored %d credential(s) from %s", len(stored), caller.did)
        return stored


def create_credential_service_router(
    wallet: Wallet,
    *,
    resolver: Resolver,
    jti_store: JtiStore,
    settings: CredentialServiceSettings | None = None,
    check_delivered: CredentialCheck | None = None,
    prefix: str = "",
) -> APIRouter:
    """Routes ``POST /presentations/query`` and ``POST /credentials`` (plus ``GET /.well-known/did.json``
    is left to the host app); errors answer problem+json with a stable ``code``."""
    service = CredentialService(wallet, resolver=resolver, jti_store=jti_store, settings=settings,
                                check_delivered=check_delivered)
    router = APIRouter(prefix=prefix, tags=["dcp-credential-service"])

    @router.post("/presentations/query", response_model=None)
    async def presentations_query(request: Request) -> Any:
        try:
            token = bearer_token(request)
            message = await json_body(request)
            return await service.query(token, message)
        except IdentityError as exc:
            return problem_from(exc)

    @router.post("/credentials", status_code=200, response_model=None)
    async def store_credentials(request: Request) -> Any:
        try:
            token = bearer_token(request)
            message = await json_body(request)
            stored = await service.store(token, message)
        except IdentityError as exc:
            return problem_from(exc)
        return {"stored": [c.id for c in stored]}

    @router.post("/offers", response_model=None)
    async def offers(request: Request) -> Any:
        try:
            token = bearer_token(request)
            caller = await verify_si_token(token, audience=wallet.did, resolver=resolver, jti_store=jti_store)
            message = validate_message(await json_body(request), "CredentialOfferMessage")
        except IdentityError as exc:
            return problem_from(exc)
        log.info("credential offer from %s: %s", caller.did, [c.get("id") for c in message["credentials"]])
        return Response(status_code=200)

    router.service = service  # type: ignore[attr-defined]
    return router


def create_credential_service_app(
    wallet: Wallet,
    *,
    resolver: Resolver,
    jti_store: JtiStore,
    settings: CredentialServiceSettings | None = None,
    check_delivered: CredentialCheck | None = None,
    prefix: str = "",
    serve_did_document: bool = True,
) -> FastAPI:
    """A standalone app: the credential service under ``prefix`` and, for did:web, the wallet's DID document."""
    app = FastAPI(title=f"Credential service of {wallet.did}")
    app.include_router(create_credential_service_router(
        wallet, resolver=resolver, jti_store=jti_store, settings=settings, check_delivered=check_delivered,
        prefix=prefix,
    ))
    if serve_did_document:
        @app.get(did_document_path(wallet.did))
        async def did_document() -> dict[str, Any]:
            return wallet.did_document()

    return app


__all__ = [
    "CredentialService",
    "CredentialServiceSettings",
    "DcpError",
    "create_credential_service_app",
    "create_credential_service_router",
]
