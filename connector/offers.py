"""Policy definitions and contract definitions: which policies exist and which assets they are offered on.

A policy definition holds one ODRL policy, parsed and checked by ``policies`` on write (so a stored policy
always evaluates); it is kept as compact ODRL JSON-LD with its canonical hash. A contract definition ties an
ACCESS policy (who may see the offer in the catalog), a CONTRACT policy (what the agreement will say) and an
``assetsSelector`` (criteria over assets), plus Pactum's ``approval`` (``auto`` or ``manual``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Literal
from urllib.parse import quote

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from connector import jsonld
from connector.assets import check_id, now_ms
from connector.errors import ConflictError, ConnectorError, NotFoundError
from connector.querying import Criterion, QuerySpec, SqlColumn, apply_query, criteria_from_nodes
from connector.storage.tables_catalog import ContractDefinitionRow, PolicyDefinitionRow
from policies import Policy, canonical_hash, compile_policy, parse_policy, policy_to_jsonld

Approval = Literal["auto", "manual"]
POLICY_KEYS = ("policy", "edc:policy", jsonld.EDC + "policy")


class DefinitionInvalid(ConnectorError):
    """A policy or contract definition that cannot be stored as given."""

    code = "definition_invalid"
    status = 400


@dataclass(frozen=True)
class PolicyDefinition:
    id: str
    policy: dict[str, Any]  # compact ODRL JSON-LD with the DSP context (policies.policy_to_jsonld)
    policy_uid: str
    policy_hash: str
    private_properties: dict[str, Any] = field(default_factory=dict)
    created_at: int = 0

    def parsed(self) -> Policy:
        """The policy object (parsed once per distinct stored document)."""
        return _parse_stored(self.policy_hash, _freeze(self.policy))


@dataclass(frozen=True)
class ContractDefinition:
    id: str
    access_policy_id: str
    contract_policy_id: str
    assets_selector: tuple[Criterion, ...] = ()
    approval: Approval = "auto"
    private_properties: dict[str, Any] = field(default_factory=dict)
    created_at: int = 0


def _freeze(doc: dict[str, Any]) -> str:
    return json.dumps(doc, sort_keys=True)


@lru_cache(maxsize=512)
def _parse_stored(_hash: str, frozen: str) -> Policy:
    """Parsing is the expensive part of a catalog request; stored policies are parsed once per process."""
    return parse_policy(json.loads(frozen), format="json-ld")


# ---- reading policy definitions ------------------------------------------------------------------------

def default_policy_uid(definition_id: str) -> str:
    """A policy IRI for a definition whose policy has none (EDC lets the policy omit its @id)."""
    if definition_id.startswith(("urn:", "http://", "https://", "did:")):
        return definition_id
    return "urn:pactum:policy:" + quote(definition_id, safe="")


def with_policy_context(body: Mapping[str, Any]) -> dict[str, Any]:
    """Give an embedded policy without its own ``@context`` the ODRL context (bare ODRL terms then work).

    EDC clients write ``"policy": {"@type": "Set", "permission": [...]}`` under an EDC ``@vocab``; without
    this those terms would read as EDC terms and the policy would look empty. A policy that brings its own
    context, or a body that uses the DSP context (which defines the ODRL terms), is left as it is.
    """
    out = dict(body)
    outer = out.get("@context")
    outer_urls = [c for c in (outer if isinstance(outer, list) else [outer]) if isinstance(c, str)]
    if jsonld.DSP_CONTEXT_URL in outer_urls:
        return out
    for key in POLICY_KEYS:
        policy = out.get(key)
        if isinstance(policy, Mapping) and "@context" not in policy:
            out[key] = {"@context": jsonld.ODRL_CONTEXT_URL, **policy}
    return out


def checked_policy(policy: Policy) -> Policy:
    """Refuse policies that use terms the engine does not understand (they could never be satisfied)."""
    compile_policy(policy, strict=True)
    return policy


def policy_definition_from_node(node: Mapping[str, Any], *, definition_id: str | None = None) -> PolicyDefinition:
    """A PolicyDefinition from an expanded management body; PolicyError (400) when the policy is invalid."""
    node_id = node.get("@id")
    if definition_id is not None and node_id is not None and node_id != definition_id:
        raise DefinitionInvalid(f"the body's @id {node_id!r} differs from the path's {definition_id!r}",
                                code="id_mismatch")
    resolved = check_id(definition_id if definition_id is not None else node_id)
    policies = jsonld.values(node, jsonld.EDC + "policy")
    if len(policies) != 1 or not isinstance(policies[0], Mapping) or "@value" in policies[0]:
        raise DefinitionInvalid("'policy' is required: one ODRL policy object", code="policy_missing")
    expanded = dict(policies[0])
    expanded.setdefault("@id", default_policy_uid(resolved))
    policy = checked_policy(parse_policy(expanded, format="json-ld"))
    private_nodes = jsonld.values(node, jsonld.EDC + "privateProperties")
    private = jsonld.properties_of(private_nodes[0]) if private_nodes else {}
    return _definition(resolved, policy, private)


def policy_definition_from_turtle(text: str | bytes, *, definition_id: str | None) -> PolicyDefinition:
    """A PolicyDefinition from a Turtle policy; its id is ``definition_id`` or the policy's uid."""
    policy = checked_policy(parse_policy(text, format="turtle"))
    return _definition(check_id(definition_id or policy.uid, "id"), policy, {})


def _definition(definition_id: str, policy: Policy, private: dict[str, Any]) -> PolicyDefinition:
    return PolicyDefinition(definition_id, policy_to_jsonld(policy), policy.uid, canonical_hash(policy), private)


def policy_definition_to_jsonld(definition: PolicyDefinition) -> dict[str, Any]:
    return {
        "@id": definition.id,
        "@type": jsonld.EDC + "PolicyDefinition",
        jsonld.EDC + "policy": definition.policy,
        jsonld.EDC + "privateProperties": dict(definition.private_properties),
        jsonld.EDC + "createdAt": definition.created_at,
    }


# ---- reading contract definitions ----------------------------------------------------------------------

def contract_definition_from_node(node: Mapping[str, Any], *, definition_id: str | None = None,
                                  default_approval: Approval = "auto") -> ContractDefinition:
    node_id = node.get("@id")
    if definition_id is not None and node_id is not None and node_id != definition_id:
        raise DefinitionInvalid(f"the body's @id {node_id!r} differs from the path's {definition_id!r}",
                                code="id_mismatch")
    resolved = check_id(definition_id if definition_id is not None else node_id)
    access = jsonld.string(node, jsonld.EDC + "accessPolicyId", what="a policy definition id", required=True)
    contract = jsonld.string(node, jsonld.EDC + "contractPolicyId", what="a policy definition id", required=True)
    assert access is not None and contract is not None
    selector = criteria_from_nodes(jsonld.values(node, jsonld.EDC + "assetsSelector"))
    approval = jsonld.string(node, jsonld.EDC + "approval", what="auto or manual") or default_approval
    if approval not in ("auto", "manual"):
        raise DefinitionInvalid(f"'approval' = {approval!r}: expected auto or manual", code="approval_invalid")
    private_nodes = jsonld.values(node, jsonld.EDC + "privateProperties")
    private = jsonld.properties_of(private_nodes[0]) if private_nodes else {}
    mode: Approval = "manual" if approval == "manual" else "auto"
    return ContractDefinition(resolved, access, contract, selector, mode, private)


def contract_definition_to_jsonld(definition: ContractDefinition) -> dict[str, Any]:
    return {
        "@id": definition.id,
        "@type": jsonld.EDC + "ContractDefinition",
        jsonld.EDC + "accessPolicyId": definition.access_policy_id,
        jsonld.EDC + "contractPolicyId": definition.contract_policy_id,
        jsonld.EDC + "assetsSelector": [
            {"@type": jsonld.EDC + "Criterion", jsonld.EDC + "operandLeft": c.left, jsonld.EDC + "operator": c.operator,
             jsonld.EDC + "operandRight": c.right}
            for c in definition.assets_selector
        ],
        jsonld.EDC + "approval": definition.approval,
        jsonld.EDC + "privateProperties": dict(definition.private_properties),
        jsonld.EDC + "createdAt": definition.created_at,
    }


# ---- storage ---------------------------------------------------------------------------------------------

def policy_definition_from_row(row: PolicyDefinitionRow) -> PolicyDefinition:
    return PolicyDefinition(row.id, dict(row.policy), row.policy_uid, row.policy_hash, dict(row.private_properties),
                            row.created_at)


def _criteria_json(criteria: Sequence[Criterion]) -> list[dict[str, Any]]:
    return [{"operandLeft": c.left, "operator": c.operator, "operandRight": c.right} for c in criteria]


def contract_definition_from_row(row: ContractDefinitionRow) -> ContractDefinition:
    selector = tuple(Criterion(c["operandLeft"], c["operator"], c["operandRight"]) for c in row.assets_selector)
    approval: Approval = "manual" if row.approval == "manual" else "auto"
    return ContractDefinition(row.id, row.access_policy_id, row.contract_policy_id, selector, approval,
                              dict(row.private_properties), row.created_at)


_POLICY_COLUMNS: dict[str, SqlColumn] = {
    "id": PolicyDefinitionRow.id,
    "createdAt": PolicyDefinitionRow.created_at,
    "policyHash": PolicyDefinitionRow.policy_hash,
    "policyUid": PolicyDefinitionRow.policy_uid,
}

_CONTRACT_COLUMNS: dict[str, SqlColumn] = {
    "id": ContractDefinitionRow.id,
    "createdAt": ContractDefinitionRow.created_at,
    "accessPolicyId": ContractDefinitionRow.access_policy_id,
    "contractPolicyId": ContractDefinitionRow.contract_policy_id,
    "approval": ContractDefinitionRow.approval,
}


class PolicyDefinitionStore:
    """Repository of policy definitions; refuses to delete one a contract definition still uses."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions

    def create(self, definition: PolicyDefinition) -> PolicyDefinition:
        stamp = now_ms()
        with self.sessions.begin() as session:
            if session.get(PolicyDefinitionRow, definition.id) is not None:
                raise ConflictError(f"a policy definition with id {definition.id!r} already exists",
                                    code="policy_definition_exists")
            session.add(PolicyDefinitionRow(id=definition.id, policy=definition.policy,
                                            policy_uid=definition.policy_uid, policy_hash=definition.policy_hash,
                                            private_properties=definition.private_properties,
                                            created_at=stamp, updated_at=stamp))
            try:
                session.flush()
            except IntegrityError as exc:  # a concurrent create of the same id won the race
                raise ConflictError(f"a policy definition with id {definition.id!r} already exists",
                                    code="policy_definition_exists") from exc
        return PolicyDefinition(definition.id, definition.policy, definition.policy_uid, definition.policy_hash,
                                definition.private_properties, stamp)

    def update(self, definition: PolicyDefinition) -> None:
        with self.sessions.begin() as session:
            row = session.get(PolicyDefinitionRow, definition.id)
            if row is None:
                raise NotFoundError(f"no policy definition with id {definition.id!r}",
                                    code="policy_definition_not_found")
            row.policy = definition.policy
            row.policy_uid = definition.policy_uid
            row.policy_hash = definition.policy_hash
            row.private_properties = definition.private_properties
            row.updated_at = now_ms()

    def get(self, definition_id: str) -> PolicyDefinition:
        found = self.find(definition_id)
        if found is None:
            raise NotFoundError(f"no policy definition with id {definition_id!r}", code="policy_definition_not_found")
        return found

    def find(self, definition_id: str) -> PolicyDefinition | None:
        with self.sessions() as session:
            row = session.get(PolicyDefinitionRow, definition_id)
            return None if row is None else policy_definition_from_row(row)

    def delete(self, definition_id: str) -> None:
        with self.sessions.begin() as session:
            row = session.get(PolicyDefinitionRow, definition_id)
            if row is None:
                raise NotFoundError(f"no policy definition with id {definition_id!r}",
                                    code="policy_definition_not_found")
            user = session.scalars(select(ContractDefinitionRow.id).where(or_(
                ContractDefinitionRow.access_policy_id == definition_id,
                ContractDefinitionRow.contract_policy_id == definition_id)).limit(1)).first()
            if user is not None:
                raise ConflictError(f"policy definition {definition_id!r} is used by contract definition {user!r}; "
                                    f"delete or change that first", code="policy_definition_in_use")
            session.delete(row)

    def query(self, spec: QuerySpec) -> list[PolicyDefinition]:
        stmt = apply_query(select(PolicyDefinitionRow), spec, _POLICY_COLUMNS, default_sort=PolicyDefinitionRow.id)
        with self.sessions() as session:
            return [policy_definition_from_row(r) for r in session.scalars(stmt)]


class ContractDefinitionStore:
    """Repository of contract definitions; both policies must exist when one is written."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions

    def _check_policies(self, session: Session, definition: ContractDefinition) -> None:
        for label, pid in (("accessPolicyId", definition.access_policy_id),
                           ("contractPolicyId", definition.contract_policy_id)):
            if session.get(PolicyDefinitionRow, pid) is None:
                raise DefinitionInvalid(f"{label} = {pid!r}: no such policy definition",
                                        code="policy_definition_unknown")

    def create(self, definition: ContractDefinition) -> ContractDefinition:
        stamp = now_ms()
        with self.sessions.begin() as session:
            if session.get(ContractDefinitionRow, definition.id) is not None:
                raise ConflictError(f"a contract definition with id {definition.id!r} already exists",
                                    code="contract_definition_exists")
            self._check_policies(session, definition)
            session.add(ContractDefinitionRow(
                id=definition.id, access_policy_id=definition.access_policy_id,
                contract_policy_id=definition.contract_policy_id,
                assets_selector=_criteria_json(definition.assets_selector), approval=definition.approval,
                private_properties=definition.private_properties, created_at=stamp, updated_at=stamp))
            try:
                session.flush()
            except IntegrityError as exc:  # a concurrent create of the same id won the race
                raise ConflictError(f"a contract definition with id {definition.id!r} already exists",
                                    code="contract_definition_exists") from exc
        return ContractDefinition(definition.id, definition.access_policy_id, definition.contract_policy_id,
                                  definition.assets_selector, definition.approval, definition.private_properties,
                                  stamp)

    def update(self, definition: ContractDefinition) -> None:
        with self.sessions.begin() as session:
            row = session.get(ContractDefinitionRow, definition.id)
            if row is None:
                raise NotFoundError(f"no contract definition with id {definition.id!r}",
                                    code="contract_definition_not_found")
            self._check_policies(session, definition)
            row.access_policy_id = definition.access_policy_id
            row.contract_policy_id = definition.contract_policy_id
            row.assets_selector = _criteria_json(definition.assets_selector)
            row.approval = definition.approval
            row.private_properties = definition.private_properties
            row.updated_at = now_ms()

    def get(self, definition_id: str) -> ContractDefinition:
        found = self.find(definition_id)
        if found is None:
            raise NotFoundError(f"no contract definition with id {definition_id!r}",
                                code="contract_definition_not_found")
        return found

    def find(self, definition_id: str) -> ContractDefinition | None:
        with self.sessions() as session:
            row = session.get(ContractDefinitionRow, definition_id)
            return None if row is None else contract_definition_from_row(row)

    def delete(self, definition_id: str) -> None:
        with self.sessions.begin() as session:
            row = session.get(ContractDefinitionRow, definition_id)
            if row is None:
                raise NotFoundError(f"no contract definition with id {definition_id!r}",
                                    code="contract_definition_not_found")
            session.delete(row)

    def query(self, spec: QuerySpec) -> list[ContractDefinition]:
        stmt = apply_query(select(ContractDefinitionRow), spec, _CONTRACT_COLUMNS,
                           default_sort=ContractDefinitionRow.id)
        with self.sessions() as session:
            return [contract_definition_from_row(r) for r in session.scalars(stmt)]

    def all(self) -> list[ContractDefinition]:
        with self.sessions() as session:
            return [contract_definition_from_row(r) for r in session.scalars(select(ContractDefinitionRow)
                                                              .order_by(ContractDefinitionRow.id))]
