"""The authority's HTTP face: did:web document, DCP issuer service, status lists, directory, trust list, admin.

Public:  GET /.well-known/did.json, GET /metadata, POST /credentials, GET /requests/{id},
         GET /status/{list}, GET /directory, GET /directory/{did}, GET /trust-list, GET /health
Admin (header ``X-Admin-Key``): POST /admin/participants, POST /admin/issue, POST /admin/revoke,
         GET /admin/credentials
Every error answers problem+json with a stable ``code``.
"""

from __future__ import annotations

import hmac
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from identity.authority.catalog import subject_schema
from identity.authority.errors import AuthorityError
from identity.authority.issuer import Authority
from identity.authority.settings import AuthoritySettings
from identity.authority.storage import ParticipantRecord
from identity.dcp.http import bearer_token, did_document_path, json_body, problem, problem_from
from identity.errors import IdentityError

STATUS_MEDIA_TYPES = {"vc20": "application/vc+jwt", "vc11": "application/jwt"}


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class ParticipantIn(_Body):
    did: str = Field(min_length=5)
    name: str = Field(min_length=1)
    bpn: str = ""
    jurisdiction: str = ""
    credentials: list[str] = Field(default_factory=list)


class RevokeIn(_Body):
    credential_id: str = Field(alias="credentialId", min_length=1)


class IssueIn(_Body):
    holder_did: str = Field(alias="holderDid", min_length=5)
    credential: str = Field(min_length=1, description="credential definition id or credential type")


def _parse(model: type[_Body], body: Any) -> Any:
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(root)"
        raise AuthorityError(f"invalid request body at {where}: {first['msg']}", code="body_invalid") from None


def create_authority_app(settings: AuthoritySettings, *, authority: Authority | None = None) -> FastAPI:
    """Build the authority app; the Authority (keys, database) is created now, the HTTP client at start-up."""
    auth = authority or Authority(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        own_client = auth.http_client is None
        if own_client:
            auth.http_client = httpx.AsyncClient(timeout=10, verify=auth.verify)
        try:
            yield
        finally:
            await auth.drain()
            if own_client and auth.http_client is not None:
                await auth.http_client.aclose()
                auth.http_client = None

    app = FastAPI(title=settings.name, lifespan=lifespan)
    app.state.authority = auth

    @app.exception_handler(IdentityError)
    async def _identity_error(request: Request, exc: IdentityError) -> JSONResponse:
        return problem_from(exc)

    def require_admin(request: Request) -> None:
        if not settings.admin_key:
            raise AuthorityError("admin endpoints are disabled (no admin_key configured)", code="admin_disabled",
                                 status=403)
        given = request.headers.get("x-admin-key", "")
        if not hmac.compare_digest(given.encode(), settings.admin_key.encode()):
            raise AuthorityError("missing or wrong X-Admin-Key", code="admin_unauthorized", status=401)

    @app.get(did_document_path(settings.did))
    async def did_document() -> JSONResponse:
        return JSONResponse(auth.did_document(), media_type="application/did+json")

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok", "did": auth.did}

    @app.get("/metadata")
    async def metadata() -> dict[str, Any]:
        return auth.metadata()

    @app.get("/schemas/{definition_id}.json")
    async def credential_schema(definition_id: str) -> dict[str, Any]:
        definition = settings.definition(definition_id)
        if definition is None:
            raise AuthorityError(f"no credential definition {definition_id!r}", code="not_found", status=404)
        return subject_schema(definition)

    @app.post("/credentials", status_code=201, response_model=None)
    async def request_credentials(request: Request) -> Response:
        record = await auth.receive_request(bearer_token(request), await json_body(request))
        if settings.auto_approve:
            auth.schedule(record.issuer_pid)
        location = f"{settings.base_url}/requests/{record.issuer_pid}"
        return Response(status_code=201, headers={"Location": location})

    @app.get("/requests/{issuer_pid}")
    async def request_status(issuer_pid: str, request: Request) -> dict[str, Any]:
        return await auth.request_status(bearer_token(request), issuer_pid)

    @app.get("/status/{list_id}")
    async def status_list(list_id: str) -> Response:
        token = auth.status_list_credential(list_id)
        media = STATUS_MEDIA_TYPES.get(list_id.split("-", 1)[0], "application/jwt")
        return Response(token, media_type=media, headers={"Cache-Control": "max-age=60"})

    @app.get("/directory")
    async def directory() -> list[dict[str, Any]]:
        return auth.directory()

    @app.get("/directory/{did:path}")
    async def directory_entry(did: str) -> dict[str, Any]:
        return auth.store.participant(did).public()

    @app.get("/trust-list")
    async def trust_list() -> dict[str, list[str]]:
        return auth.trust_list()

    @app.post("/admin/participants", status_code=201)
    async def register(request: Request) -> dict[str, Any]:
        require_admin(request)
        body = _parse(ParticipantIn, await json_body(request))
        record = auth.register(ParticipantRecord(body.did, body.name, body.bpn, body.jurisdiction.upper(),
                                                 tuple(body.credentials)))
        return record.public()

    @app.post("/admin/issue", status_code=201)
    async def admin_issue(request: Request) -> dict[str, Any]:
        require_admin(request)
        body = _parse(IssueIn, await json_body(request))
        record = auth.issue(body.holder_did, body.credential)
        return {"id": record.id, "type": record.credential_type, "holder": record.holder_did,
                "statusListIndex": record.status_index, "credential": record.token}

    @app.post("/admin/revoke")
    async def admin_revoke(request: Request) -> dict[str, Any]:
        require_admin(request)
        body = _parse(RevokeIn, await json_body(request))
        record = auth.revoke(body.credential_id)
        return {"id": record.id, "revoked": record.revoked, "statusList": auth.status_list_url(record.profile),
                "statusListIndex": record.status_index}

    @app.get("/admin/requests")
    async def admin_requests(request: Request, status: str | None = None) -> list[dict[str, Any]]:
        require_admin(request)
        return [{"issuerPid": r.issuer_pid, "holderPid": r.holder_pid, "holder": r.holder_did,
                 "status": r.status, "credentials": list(r.credential_ids), "rejectionReason": r.rejection_reason,
                 "deliveryError": r.delivery_error, "createdAt": r.created_at.isoformat()}
                for r in auth.store.requests(status)]

    @app.post("/admin/requests/{issuer_pid}/approve", status_code=202)
    async def admin_approve(issuer_pid: str, request: Request) -> dict[str, Any]:
        require_admin(request)
        record = auth.store.request(issuer_pid)
        if record.status != "RECEIVED":
            raise AuthorityError(f"request {issuer_pid} is already {record.status}", code="request_closed",
                                 status=409)
        auth.schedule(issuer_pid)
        return {"issuerPid": issuer_pid, "status": "RECEIVED"}

    @app.post("/admin/requests/{issuer_pid}/reject")
    async def admin_reject(issuer_pid: str, request: Request) -> dict[str, Any]:
        require_admin(request)
        body = await json_body(request) if await request.body() else {}
        reason = body.get("reason") if isinstance(body, dict) else None
        await auth.reject(issuer_pid, str(reason or "request rejected by the authority"))
        return {"issuerPid": issuer_pid, "status": "REJECTED"}

    @app.get("/admin/credentials")
    async def admin_credentials(request: Request, holder: str | None = None) -> list[dict[str, Any]]:
        require_admin(request)
        return [{"id": r.id, "type": r.credential_type, "holder": r.holder_did, "profile": r.profile,
                 "issuedAt": r.issued_at.isoformat(), "validUntil": r.valid_until.isoformat(),
                 "revoked": r.revoked} for r in auth.store.credentials(holder)]

    @app.exception_handler(404)
    async def _not_found(request: Request, exc: Exception) -> JSONResponse:
        return problem(404, "not_found", f"no such resource: {request.url.path}")

    return app
