"""Cross-border transfer profile (prefix ``xb``, https://w3id.org/pactum/xborder/v1#).

Left operands and where their values come from:

- ``xb:dataClass``: the target asset's class, ``general`` < ``important`` < ``core`` (state.asset
  ``dataClass``, else a fact). Ordered, so ``xb:dataClass lteq "important"`` works.
- ``xb:jurisdiction``: the recipient's jurisdiction, an ISO 3166 alpha-2 code (fact, request.extra or a
  credential claim ``jurisdiction``/``country``). Groups ``EU``, ``EEA`` and ``adequate`` (EEA plus
  countries with an EU adequacy decision) make ``isPartOf``/``isAnyOf`` work on group names.
- ``xb:retention``: how long the recipient will keep the data, an xsd:duration (fact or request.extra).
- ``xb:negativeList``: the asset's data categories (plus its ``dataClass``) *if* the transfer leaves
  the asset's origin jurisdiction, else the empty set; so ``xb:negativeList isNoneOf (...)`` forbids
  listed categories from leaving. Needs state.asset ``category`` and ``origin`` and the recipient's jurisdiction.
- ``xb:fields``: the fields an ``anonymize`` duty covers (checked against the fulfilling event's
  parameters; reported as the duty's parameters).
- ``xb:certification``: credential types the recipient holds (valid verified credentials), plus any
  ``xb:certification`` fact.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

from policies.facts import MISSING, EvalContext
from policies.operands import LeftOperandSpec
from policies.profiles.registry import Profile

NS = "https://w3id.org/pactum/xborder/v1#"
PROFILE_IRI = "https://w3id.org/pactum/xborder/v1"

EU = frozenset(
    "AT BE BG HR CY CZ DK EE FI FR DE GR IE IT LV LT LU MT NL PL PT RO SK SI ES SE".split()
)
EEA = EU | {"IS", "LI", "NO"}
# Countries and territories with an EU adequacy decision under GDPR Art. 45 (general, not sectoral).
# The United States is left out on purpose: its decision covers only DPF-certified organisations,
# which a policy expresses with xb:certification instead.
ADEQUACY = frozenset("AD AR CA CH FO GB GG IL IM JE JP KR NZ UY".split())
ADEQUATE = EEA | ADEQUACY


def _groups() -> dict[str, frozenset[str]]:
    table: dict[str, set[str]] = {}
    for code in ADEQUATE:
        table.setdefault(code, set()).add("adequate")
    for code in EEA:
        table[code].add("EEA")
    for code in EU:
        table[code].add("EU")
    table["EU"] = {"EEA", "adequate"}
    table["EEA"] = {"adequate"}
    return {k: frozenset(v) for k, v in table.items()}


GROUPS = MappingProxyType(_groups())


def _claims(ctx: EvalContext, *names: str) -> Any:
    for cred in ctx.valid_credentials():
        subject = cred.get("credentialSubject")
        subjects = subject if isinstance(subject, list) else [subject]
        for sub in subjects:
            if isinstance(sub, dict):
                for name in names:
                    if name in sub:
                        return sub[name]
    return MISSING


def _upper(value: Any) -> Any:
    return value.upper() if isinstance(value, str) and len(value) <= 8 else value


def jurisdiction(ctx: EvalContext) -> Any:
    value = ctx.lookup(NS + "jurisdiction")
    if value is MISSING:
        value = _claims(ctx, "jurisdiction", "country", "countryCode")
    return value if value is MISSING else _upper(value)


def data_class(ctx: EvalContext) -> Any:
    value = ctx.asset_fact("dataClass", NS + "dataClass")
    if value is MISSING:
        value = ctx.lookup(NS + "dataClass")
    return value.lower() if isinstance(value, str) else value


def retention(ctx: EvalContext) -> Any:
    return ctx.lookup(NS + "retention")


def negative_list(ctx: EvalContext) -> Any:
    categories = ctx.asset_fact("category", "categories", "dataCategory")
    if categories is MISSING and ctx.asset_fact("dataClass") is not MISSING:
        categories = ()
    origin = ctx.asset_fact("origin", "originJurisdiction")
    recipient = jurisdiction(ctx)
    if categories is MISSING or origin is MISSING or recipient is MISSING:
        return MISSING
    origin, recipient = _upper(origin), _upper(recipient)
    stays = recipient == origin or origin in GROUPS.get(recipient, frozenset())
    if stays:
        return frozenset()
    leaving = set([categories] if isinstance(categories, str) else categories)
    klass = data_class(ctx)
    if isinstance(klass, str):
        leaving.add(klass)  # so "core data never leaves" can be written as isNoneOf "core"
    return frozenset(leaving)


def fields(ctx: EvalContext) -> Any:
    value = ctx.lookup(NS + "fields")
    if value is MISSING:
        return MISSING
    return frozenset([value] if isinstance(value, str) else value)


def certification(ctx: EvalContext) -> Any:
    held = set(ctx.credential_types())
    extra = ctx.lookup(NS + "certification")
    if extra is not MISSING:
        held.update([extra] if isinstance(extra, str) else extra)
    return frozenset(held)


PROFILE = Profile(
    iri=PROFILE_IRI,
    aliases=(NS,),
    prefix="xb",
    namespaces=(NS,),
    description="Cross-border transfer: data class, recipient jurisdiction, retention, negative list, "
    "certification.",
    left_operands=MappingProxyType(
        {
            NS + "dataClass": LeftOperandSpec(
                NS + "dataClass", data_class, ordering=("general", "important", "core"),
                description="state.asset['dataClass'] (general < important < core)",
            ),
            NS + "jurisdiction": LeftOperandSpec(
                NS + "jurisdiction", jurisdiction, groups=GROUPS,
                description="recipient jurisdiction: fact 'xb:jurisdiction' or credential claim 'jurisdiction'",
            ),
            NS + "retention": LeftOperandSpec(
                NS + "retention", retention, description="fact 'xb:retention' (xsd:duration)"
            ),
            NS + "negativeList": LeftOperandSpec(
                NS + "negativeList", negative_list,
                description="asset categories leaving their origin jurisdiction (state.asset category/origin)",
            ),
            NS + "fields": LeftOperandSpec(
                NS + "fields", fields,
                description="fields a duty (anonymize) covers: event parameter / fact 'xb:fields'",
            ),
            NS + "certification": LeftOperandSpec(
                NS + "certification", certification,
                description="types of the recipient's valid credentials (+ fact 'xb:certification')",
            ),
        }
    ),
)
