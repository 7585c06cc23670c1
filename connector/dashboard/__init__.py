"""A read-only, server-rendered HTML dashboard of one connector (mounted under ``/dashboard`` on the
management port): catalog, agreements, transfers and their states, the audit trail with its verification
status, and every decision with the policy engine's explanation.

WHY server-rendered jinja2: no build step, no JavaScript, works in a headless browser and behind any proxy.
Access needs the management API key like the rest of the management port: the ``X-Api-Key`` header, or
once ``/dashboard/login?key=...`` in a browser, which sets an HttpOnly cookie.
"""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape

from connector.config import management_api_key

from .views import (
    AGREEMENTS,
    ASSETS,
    AUDIT,
    CONTRACT_DEFINITIONS,
    DATAPLANE,
    NEGOTIATIONS,
    POLICIES,
    RECEIPTS,
    TRANSFERS,
    USAGE,
    audit_status,
    decisions,
    pretty_json,
    read_rows,
    short,
)

__all__ = ["create_router"]

TEMPLATES = Path(__file__).parent / "templates"
COOKIE = "pactum_dashboard"
PAGES = [("", "Overview"), ("catalog", "Catalog"), ("agreements", "Agreements"), ("transfers", "Transfers"),
         ("audit", "Audit trail"), ("decisions", "Decisions"), ("refusals", "Refusals")]


def _environment() -> Environment:
    env = Environment(loader=FileSystemLoader(str(TEMPLATES)), autoescape=select_autoescape(["html"]),
                      trim_blocks=True, lstrip_blocks=True)
    env.globals.update(short=short, pretty_json=pretty_json)
    return env


def _cookie_value(key: str) -> str:
    return hashlib.sha256(b"pactum-dashboard\x00" + key.encode()).hexdigest()


def create_router(ctx: Any, *, refresh_seconds: int = 5) -> APIRouter:
    """The dashboard's routes; ``ctx`` is the connector's :class:`connector.context.ConnectorContext`."""
    env = _environment()
    router = APIRouter(include_in_schema=False)
    settings = ctx.settings
    api_key = management_api_key(settings)

    def authorised(request: Request) -> bool:
        if not api_key:
            return True
        given = request.headers.get("x-api-key", "")
        if given and hmac.compare_digest(given.encode(), api_key.encode()):
            return True
        cookie = request.cookies.get(COOKIE, "")
        return bool(cookie) and hmac.compare_digest(cookie, _cookie_value(api_key))

    def key_lookup(kid: str) -> Any:
        wallet = ctx.wallet
        return wallet.key if kid == wallet.kid else None

    def denied(request: Request) -> Response | None:
        """A 401 page unless the caller has the key (answered here, so no app-level handler is needed)."""
        if authorised(request):
            return None
        return HTMLResponse("<!doctype html><title>Pactum dashboard</title><p>This dashboard needs the "
                            "connector's management API key: open <code>/dashboard/login?key=...</code> once, "
                            "or send <code>X-Api-Key</code>.</p>", status_code=401)

    def render(request: Request, template: str, current: str, title: str, **data: Any) -> Response:
        base = str(request.url_for("dashboard_overview"))
        html = env.get_template(template).render(
            title=title, participant=settings.participant, did=ctx.did, pages=PAGES, current=current,
            base=base, refresh=refresh_seconds, **data)
        return HTMLResponse(html, headers={"Cache-Control": "no-store"})

    def sections(*names: tuple[str, ...]) -> list[Any]:
        return [read_rows(ctx.engine, ctx.sessions, n) for n in names]

    @router.get("/login")
    def dashboard_login(request: Request, key: str = "", next: str = "") -> Response:
        if api_key and not hmac.compare_digest(key.encode(), api_key.encode()):
            return HTMLResponse("<!doctype html><title>Pactum dashboard</title><p>Wrong key: use the "
                                "connector's management API key.</p>", status_code=401)
        page = next if next in {href for href, _label in PAGES} else ""
        response = RedirectResponse(str(request.url_for("dashboard_overview")) + page, status_code=303)
        if api_key:
            response.set_cookie(COOKIE, _cookie_value(api_key), httponly=True, samesite="strict",
                                path=request.url_for("dashboard_overview").path)
        return response

    @router.get("/")
    def dashboard_overview(request: Request) -> Response:
        if (refused := denied(request)) is not None:
            return refused
        agreements, transfers, contract_definitions = sections(AGREEMENTS, TRANSFERS, CONTRACT_DEFINITIONS)
        found = decisions(ctx.engine, ctx.sessions, limit=20)
        refusals = decisions(ctx.engine, ctx.sessions, limit=10_000, refusals_only=True)
        counts = {"offers": len(contract_definitions.rows), "agreements": len(agreements.rows),
                  "transfers": len(transfers.rows),
                  "refusals": sum(1 for d in refusals.rows if str(d.get("decision", "")).lower() == "deny")}
        return render(request, "overview.html", "", "Overview", counts=counts, decisions=found,
                      audit=audit_status(ctx.sessions, key_lookup))

    @router.get("/catalog")
    def dashboard_catalog(request: Request) -> Response:
        if (refused := denied(request)) is not None:
            return refused
        assets, policies, contract_definitions = sections(ASSETS, POLICIES, CONTRACT_DEFINITIONS)
        return render(request, "catalog.html", "catalog", "Catalog", assets=assets, policies=policies,
                      contract_definitions=contract_definitions)

    @router.get("/agreements")
    def dashboard_agreements(request: Request) -> Response:
        if (refused := denied(request)) is not None:
            return refused
        agreements, negotiations, usage = sections(AGREEMENTS, NEGOTIATIONS, USAGE)
        by_agreement = {row["agreement_id"]: row for row in usage.rows}
        return render(request, "agreements.html", "agreements", "Agreements", agreements=agreements,
                      negotiations=negotiations, usage=by_agreement)

    @router.get("/transfers")
    def dashboard_transfers(request: Request) -> Response:
        if (refused := denied(request)) is not None:
            return refused
        transfers, dataplane = sections(TRANSFERS, DATAPLANE)
        by_transfer = {row["transfer_id"]: row for row in dataplane.rows}
        return render(request, "transfers.html", "transfers", "Transfers", transfers=transfers,
                      dataplane=by_transfer)

    @router.get("/audit")
    def dashboard_audit(request: Request) -> Response:
        if (refused := denied(request)) is not None:
            return refused
        entries, receipts = sections(AUDIT, RECEIPTS)
        return render(request, "audit.html", "audit", "Audit trail", entries=entries, receipts=receipts,
                      audit=audit_status(ctx.sessions, key_lookup))

    @router.get("/decisions")
    def dashboard_decisions(request: Request) -> Response:
        if (refused := denied(request)) is not None:
            return refused
        return render(request, "decisions.html", "decisions", "Decisions", refusals_only=False,
                      decisions=decisions(ctx.engine, ctx.sessions))

    @router.get("/refusals")
    def dashboard_refusals(request: Request) -> Response:
        if (refused := denied(request)) is not None:
            return refused
        return render(request, "decisions.html", "refusals", "Refusals", refusals_only=True,
                      decisions=decisions(ctx.engine, ctx.sessions, refusals_only=True))

    return router
