"""Plain-JSON credential model shared by the JWT and Data Integrity paths.

VCDM 1.1 and 2.0 differ in names (issuanceDate/expirationDate vs validFrom/validUntil) and the JWT 1.1 profile
moves some members into claims (iss, sub, jti, nbf, exp). ``normalise_*`` folds all of that into one dict shape
so policy code never branches on the profile.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from identity.credentials.errors import CredentialError

VC_V1_CONTEXT = "https://www.w3.org/2018/credentials/v1"
VC_V2_CONTEXT = "https://www.w3.org/ns/credentials/v2"
ENVELOPED_VC_PREFIX = "data:application/vc+jwt,"
ENVELOPED_VP_PREFIX = "data:application/vp+jwt,"


def parse_datetime(value: Any, what: str) -> datetime:
    """An XSD dateTime string (``Z`` or offset) or JWT NumericDate (int or float) as an aware UTC datetime."""
    if isinstance(value, bool):
        raise CredentialError(f"{what} must be a date-time, not a boolean")
    if isinstance(value, int | float):
        if not math.isfinite(value) or abs(value) > 253402300799:  # beyond year 9999
            raise CredentialError(f"{what} is out of range")
        return datetime.fromtimestamp(value, UTC)
    if isinstance(value, str) and 10 <= len(value) <= 40:
        text = value[:-1] + "+00:00" if value.endswith(("Z", "z")) else value
        try:
            dt = datetime.fromisoformat(text)
        except ValueError:
            raise CredentialError(f"{what} {value!r} is not an ISO 8601 date-time") from None
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=UTC)
        return dt.astimezone(UTC)
    raise CredentialError(f"{what} {str(value)[:60]!r} is not a date-time")


def format_datetime(dt: datetime) -> str:
    """UTC ``YYYY-MM-DDTHH:MM:SSZ`` (what VCDM examples and EDC emit)."""
    dt = dt.astimezone(UTC)
    if dt.year < 1000:  # keep strftime's unpadded year for these rare values
        return dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    return f"{dt.year}-{dt.month:02d}-{dt.day:02d}T{dt.hour:02d}:{dt.minute:02d}:{dt.second:02d}Z"


def as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def issuer_id(credential: dict[str, Any]) -> str:
    """The issuer as a string whether given as a URL/DID or as an object with ``id``."""
    issuer = credential.get("issuer")
    if isinstance(issuer, dict):
        issuer = issuer.get("id")
    if not isinstance(issuer, str) or not issuer:
        raise CredentialError("credential has no issuer")
    return issuer


def subject_ids(credential: dict[str, Any]) -> list[str]:
    """Ids of every credentialSubject (a credential may have several)."""
    out = []
    for subj in as_list(credential.get("credentialSubject")):
        if isinstance(subj, dict) and isinstance(subj.get("id"), str):
            out.append(subj["id"])
    return out


@dataclass(frozen=True)
class NormalisedCredential:
    """A credential in one shape whatever its profile, with its validity window resolved."""

    credential: dict[str, Any]
    profile: str  # "vc20" | "vc11"
    issuer: str
    types: list[str]
    subject_id: str | None
    valid_from: datetime | None
    valid_until: datetime | None


def _check_shape(cred: Any) -> dict[str, Any]:
    if not isinstance(cred, dict):
        raise CredentialError("credential must be a JSON object")
    types = cred.get("type")
    if "VerifiableCredential" not in as_list(types):
        raise CredentialError("credential 'type' must include VerifiableCredential")
    if not all(isinstance(t, str) for t in as_list(types)):
        raise CredentialError("credential 'type' entries must be strings")
    if "credentialSubject" not in cred:
        raise CredentialError("credential has no credentialSubject")
    if not isinstance(cred.get("@context"), list | str):
        raise CredentialError("credential has no @context")
    return cred


def _latest(*values: datetime | None) -> datetime | None:
    present = [v for v in values if v is not None]
    return max(present) if present else None


def _earliest(*values: datetime | None) -> datetime | None:
    present = [v for v in values if v is not None]
    return min(present) if present else None


def normalise_credential(cred: dict[str, Any], claims: dict[str, Any] | None = None,
                         profile: str | None = None) -> NormalisedCredential:
    """Fold a VC (and, for JWT 1.1, its registered claims) into the common shape.

    The validity window is the intersection of every bound present (nbf/issuanceDate/validFrom,
    exp/expirationDate/validUntil), so contradictory encodings can only make a credential stricter.
    """
    cred = _check_shape(cred)
    contexts = as_list(cred.get("@context"))
    if profile is None:
        profile = "vc20" if contexts and contexts[0] == VC_V2_CONTEXT else "vc11"
    # shallow copies suffice: only top-level members and credentialSubject.id are ever written
    out = dict(cred)
    if isinstance(out.get("credentialSubject"), dict):
        out["credentialSubject"] = dict(out["credentialSubject"])
    claims = claims or {}
    if "issuer" not in out and isinstance(claims.get("iss"), str):
        out["issuer"] = claims["iss"]
    iss = issuer_id(out)
    if "iss" in claims and claims["iss"] != iss:
        raise CredentialError(f"JWT iss {claims['iss']!r} differs from credential issuer {iss!r}")
    out["issuer"] = iss
    if "jti" in claims and "id" not in out and isinstance(claims["jti"], str):
        out["id"] = claims["jti"]
    subjects = subject_ids(out)
    if isinstance(claims.get("sub"), str):
        subj = out.get("credentialSubject")
        if isinstance(subj, dict) and "id" not in subj:
            subj["id"] = claims["sub"]
            subjects = [claims["sub"]]
        elif subjects and claims["sub"] not in subjects:
            raise CredentialError("JWT sub differs from credentialSubject id")
    out["type"] = as_list(out["type"])

    def _opt(name: str, source: dict[str, Any]) -> datetime | None:
        return parse_datetime(source[name], name) if source.get(name) is not None else None

    valid_from = _latest(_opt("validFrom", out), _opt("issuanceDate", out), _opt("nbf", claims))
    valid_until = _earliest(_opt("validUntil", out), _opt("expirationDate", out), _opt("exp", claims))
    if valid_from is not None:
        out["validFrom"] = format_datetime(valid_from)
    if valid_until is not None:
        out["validUntil"] = format_datetime(valid_until)
    return NormalisedCredential(
        credential=out,
        profile=profile,
        issuer=iss,
        types=[t for t in out["type"] if isinstance(t, str)],
        subject_id=subjects[0] if subjects else None,
        valid_from=valid_from,
        valid_until=valid_until,
    )
