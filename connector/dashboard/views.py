"""What the dashboard shows, read straight from the connector's own tables; pure reads, no writes.

WHY through the tables (SQLAlchemy Core on the reflected metadata) and not through each area's services:
the dashboard must render whatever this build has - a table that an area has not shipped yet shows as
"not available" instead of breaking the page. Every function returns plain dicts for the templates.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, Table, inspect, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from connector.storage.base import Base

# Which table holds what (areas' table names); the first existing one is used.
AGREEMENTS = ("dsp_agreements",)
NEGOTIATIONS = ("dsp_negotiations",)
TRANSFERS = ("dsp_transfers",)
DATAPLANE = ("dp_transfers",)
USAGE = ("dp_usage",)
AUDIT = ("audit_entries",)
RECEIPTS = ("audit_receipts",)
ASSETS = ("mgmt_assets", "catalog_assets", "assets")
POLICIES = ("mgmt_policy_definitions", "catalog_policy_definitions", "policy_definitions")
CONTRACT_DEFINITIONS = ("mgmt_contract_definitions", "catalog_contract_definitions", "contract_definitions")
DECISION_KINDS_HINT = ("decision", "refused", "suspend", "terminat", "duty", "revoked")


@dataclass
class Section:
    """Rows of one table for a template, or why there are none."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    available: bool = True
    note: str = ""


def _table(engine: Engine, names: tuple[str, ...]) -> Table | None:
    try:
        existing = set(inspect(engine).get_table_names())
    except SQLAlchemyError:
        return None
    for name in names:
        if name in existing:
            if name in Base.metadata.tables:
                return Base.metadata.tables[name]
            return Table(name, Base.metadata, autoload_with=engine, extend_existing=True)
    return None


def _order_column(table: Table) -> Any:
    for name in ("updated_at", "created_at", "signed_at", "seq", "id"):
        if name in table.c:
            return table.c[name].desc()
    return None


def read_rows(engine: Engine, sessions: sessionmaker[Session], names: tuple[str, ...], *, limit: int = 200,
              where: Any = None) -> Section:
    """Newest rows of the first existing table in ``names``, as dicts."""
    table = _table(engine, names)
    if table is None:
        return Section(available=False, note=f"not available in this build ({' / '.join(names)})")
    query = select(table)
    order = _order_column(table)
    if order is not None:
        query = query.order_by(order)
    if where is not None:
        query = query.where(where(table))
    try:
        with sessions() as session:
            rows = [dict(r._mapping) for r in session.execute(query.limit(limit))]
    except SQLAlchemyError as exc:
        return Section(available=False, note=f"cannot read {table.name}: {exc.__class__.__name__}")
    return Section(rows=rows)


def parse_body(row: dict[str, Any]) -> dict[str, Any]:
    """The free-form fields of an audit entry (its canonical JSON body)."""
    try:
        body = json.loads(row.get("body") or "{}")
    except ValueError:
        return {}
    fields = body.get("fields", {}) if isinstance(body, dict) else {}
    return fields if isinstance(fields, dict) else {}


def explanation(fields: dict[str, Any]) -> list[str]:
    """The policy engine's explanation carried by a decision entry, as lines."""
    lines: list[str] = []
    for key in ("summary", "reason", "explanation", "reasons", "explain", "detail", "code"):
        value = fields.get(key)
        if isinstance(value, list):
            lines.extend(str(v) for v in value)
        elif isinstance(value, dict):
            lines.extend(f"{k}: {v}" for k, v in value.items())
        elif value not in (None, ""):
            lines.append(str(value) if key != "code" else f"code {value}")
    return lines


def _iso(value: Any) -> str:
    return value.isoformat(timespec="seconds") if hasattr(value, "isoformat") else str(value or "")


def protocol_decisions(engine: Engine, sessions: sessionmaker[Session]) -> list[dict[str, Any]]:
    """Negotiation and transfer outcomes as decisions: agreements are permits, terminations carry the reason
    the policy engine gave (the control plane keeps it with the process)."""
    out: list[dict[str, Any]] = []
    for names, kind in ((NEGOTIATIONS, "negotiation"), (TRANSFERS, "transfer")):
        section = read_rows(engine, sessions, names, limit=1000)
        for row in section.rows:
            state = str(row.get("state") or "")
            if state in ("FINALIZED", "TERMINATED", "SUSPENDED") or row.get("error_reason"):
                denied = state in ("TERMINATED", "SUSPENDED")
                why = [f"{row.get('error_code')}: {row.get('error_reason')}"] if row.get("error_reason") else (
                    [f"agreement {row.get('agreement_id')}"] if row.get("agreement_id") else [])
                out.append({"seq": "", "time": _iso(row.get("updated_at")), "kind": f"{kind}.{state.lower()}",
                            "process_id": row.get("id"), "decision": "deny" if denied else "permit",
                            "counterparty": row.get("counterparty_did"), "fields": {"state": state},
                            "explanation": why, "asset": row.get("asset_id")})
    return out


REFUSALS = ("deny", "violated", "flag")


def decisions(engine: Engine, sessions: sessionmaker[Session], *, limit: int = 200,
              refusals_only: bool = False) -> Section:
    """Every decision, newest first, with its explanation: audit entries that record one (permit/deny,
    suspension, duty) and the control plane's agreements and terminations.

    ``refusals_only`` selects the refusals in the query itself, so that a busy agreement's thousands of
    permitted data requests cannot push the refusals out of the page.
    """
    where = (lambda table: table.c.decision.in_(REFUSALS)) if refusals_only else None
    section = read_rows(engine, sessions, AUDIT, limit=2000, where=where)
    out = []
    for row in section.rows:
        kind = str(row.get("kind", ""))
        if row.get("decision") or any(hint in kind for hint in DECISION_KINDS_HINT):
            fields = parse_body(row)
            out.append({**row, "fields": fields, "explanation": explanation(fields)})
    out.extend(d for d in protocol_decisions(engine, sessions) if not refusals_only or d["decision"] == "deny")
    if not out and not section.available:
        return section
    out.sort(key=lambda d: str(d.get("time") or ""), reverse=True)
    return Section(rows=out[:limit])


def audit_status(sessions: sessionmaker[Session], key_lookup: Any = None) -> dict[str, Any]:
    """Re-verify the audit trail (hash chain, checkpoint signatures, receipts) for the page header."""
    try:
        from connector.audit import AuditLog
    except ImportError:  # pragma: no cover - the audit area is part of every build today
        return {"available": False, "ok": False, "problems": ["audit trail not available in this build"]}
    try:
        result = AuditLog(sessions).verify(key_lookup)
    except Exception as exc:  # noqa: BLE001 - the page shows the failure instead of failing
        return {"available": True, "ok": False, "entries": 0, "checkpoints": 0, "receipts": 0,
                "problems": [f"verification failed: {exc}"]}
    return {"available": True, **result.to_json()}


def short(value: Any, width: int = 60) -> str:
    """A long id or JSON shortened for a table cell (the full value stays in the title attribute)."""
    text = "" if value is None else str(value)
    return text if len(text) <= width else text[: width - 1] + "…"


def pretty_json(value: Any) -> str:
    """Indented JSON for a <pre> block; text that is not JSON is shown as it is."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return value
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)
