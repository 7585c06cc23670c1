"""Catena-X usage-policy profile (https://w3id.org/catenax/policy/, also the 2025/9 namespace).

Values are decided from the counterparty's VERIFIED credentials (``state.credentials``) unless a fact
gives them: ``Membership`` is "active" with a valid MembershipCredential; ``FrameworkAgreement`` is the
set of "<useCase>:<contractVersion>" of valid use-case credentials; ``BusinessPartnerNumber`` is the
BPN claim (``bpn`` / ``holderIdentifier``); ``BusinessPartnerGroup`` is the provider's group assignment
for that BPN (fact ``BusinessPartnerGroup``); ``UsagePurpose`` is request.purpose. Other Catena-X
contract terms are read from facts only, so an undecidable term is never silently true.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

from policies.facts import MISSING, EvalContext
from policies.operands import LeftOperandSpec
from policies.profiles.registry import Profile

NS = "https://w3id.org/catenax/policy/"
NS_2025 = "https://w3id.org/catenax/2025/9/policy/"
PROFILE_IRI = "https://w3id.org/catenax/policy/v1.0.0"

_NOT_FRAMEWORKS = frozenset({"VerifiableCredential", "MembershipCredential", "BpnCredential"})
_LEGACY_FRAMEWORKS = ("behavioraltwin", "pcf", "quality", "resiliency", "sustainability", "traceability")

# Left operands of the 2025/9 profile (names of its per-constraint schemas); read from facts.
CONTRACT_TERMS = (
    "AffiliatesBpnl", "AffiliatesRegion", "ConfidentialInformationMeasures", "ConfidentialInformationSharing",
    "ContractReference", "ContractTermination", "DataFrequency", "DataProvisioningEndDate",
    "DataProvisioningEndDurationDays", "DataUsageEndDate", "DataUsageEndDefinition", "DataUsageEndDurationDays",
    "ExclusiveUsage", "JurisdictionLocation", "JurisdictionLocationReference", "Liability",
    "ManagedLegalEntityBpnl", "ManagedLegalEntityRegion", "Precedence", "UsageRestriction", "VersionChanges",
    "Warranty", "WarrantyDefinition", "WarrantyDuration",
)


def _subjects(ctx: EvalContext) -> list[tuple[frozenset[str], dict[str, Any]]]:
    out = []
    for cred in ctx.valid_credentials():
        types = cred.get("type", ())
        names = frozenset(str(t).rsplit("/", 1)[-1] for t in ([types] if isinstance(types, str) else types))
        subject = cred.get("credentialSubject")
        for sub in subject if isinstance(subject, list) else [subject]:
            if isinstance(sub, dict):
                out.append((names, sub))
    return out


def _fact(ctx: EvalContext, name: str) -> Any:
    value = ctx.lookup(NS + name)
    if value is MISSING:
        value = ctx.lookup(NS_2025 + name)
    return value


def membership(ctx: EvalContext) -> Any:
    value = _fact(ctx, "Membership")
    if value is not MISSING:
        return value
    return "active" if ctx.has_credential_type("MembershipCredential") else "inactive"


def framework_agreement(ctx: EvalContext) -> Any:
    value = _fact(ctx, "FrameworkAgreement")
    if value is not MISSING:
        return value
    agreements: set[str] = set()
    for names, sub in _subjects(ctx):
        use_case = sub.get("useCase")
        cases = [use_case] if use_case else [
            name[: -len("Credential")] for name in sorted(names)
            if name.endswith("Credential") and name not in _NOT_FRAMEWORKS
        ]
        version = sub.get("contractVersion")
        for case in cases:
            agreements.add(str(case))
            if version:
                agreements.add(f"{case}:{version}")
    return frozenset(agreements)


def _legacy_framework(name: str) -> Any:
    def resolve(ctx: EvalContext) -> Any:
        value = _fact(ctx, "FrameworkAgreement." + name)
        if value is not MISSING:
            return value
        found = {a.split(":")[0].lower() for a in framework_agreement(ctx)}
        return "active" if name in found else "inactive"

    return resolve


def usage_purpose(ctx: EvalContext) -> Any:
    value = _fact(ctx, "UsagePurpose")
    if value is MISSING and ctx.request.purpose is not None:
        return ctx.request.purpose
    return value


def business_partner_number(ctx: EvalContext) -> Any:
    value = _fact(ctx, "BusinessPartnerNumber")
    if value is not MISSING:
        return value
    for _names, sub in _subjects(ctx):
        for claim in ("bpn", "holderIdentifier"):
            if isinstance(sub.get(claim), str):
                return sub[claim]
    assignee = ctx.request.assignee
    if assignee is not None and assignee.startswith("BPN"):
        return assignee
    return MISSING


def business_partner_group(ctx: EvalContext) -> Any:
    value = _fact(ctx, "BusinessPartnerGroup")
    if value is MISSING:
        return MISSING
    return frozenset([value] if isinstance(value, str) else value)


def _contract_term(name: str) -> Any:
    def resolve(ctx: EvalContext) -> Any:
        return _fact(ctx, name)

    return resolve


def _specs() -> dict[str, LeftOperandSpec]:
    core = {
        "Membership": (membership, "'active' with a valid MembershipCredential"),
        "FrameworkAgreement": (framework_agreement, "'<useCase>:<contractVersion>' of valid credentials"),
        "UsagePurpose": (usage_purpose, "request.purpose (or fact 'UsagePurpose')"),
        "BusinessPartnerNumber": (business_partner_number, "credential claim bpn/holderIdentifier"),
        "BusinessPartnerGroup": (business_partner_group, "fact 'BusinessPartnerGroup' (provider's groups)"),
    }
    specs: dict[str, LeftOperandSpec] = {}
    for ns in (NS, NS_2025):
        for name, (resolver, where) in core.items():
            specs[ns + name] = LeftOperandSpec(ns + name, resolver, description=where)
        for name in CONTRACT_TERMS:
            specs[ns + name] = LeftOperandSpec(ns + name, _contract_term(name), description=f"fact '{name}'")
    for name in _LEGACY_FRAMEWORKS:
        iri = f"{NS}FrameworkAgreement.{name}"
        specs[iri] = LeftOperandSpec(iri, _legacy_framework(name), description=f"'{name}' framework credential")
    return specs


PROFILE = Profile(
    iri=PROFILE_IRI,
    aliases=(NS, NS_2025, "https://w3id.org/catenax/2025/9/policy"),
    prefix="cx-policy",
    namespaces=(NS, NS_2025),
    description="Catena-X: Membership, FrameworkAgreement, UsagePurpose, BusinessPartnerNumber/Group.",
    left_operands=MappingProxyType(_specs()),
)
