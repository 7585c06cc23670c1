"""Verify credentials and presentations; every failed check gets its own stable code.

Nothing here raises for a bad credential: callers get a result with ``ok`` and a list of :class:`Check`
(name, ok, code, detail); ``error_code`` is the first failure. Checks run in the order a careful verifier
needs: format & size -> alg allow-list -> issuer key (DID resolution, verification relationship) ->
signature -> validity window -> issuer trust -> status list. Status lists are fetched only for credentials
that passed every earlier check, so untrusted issuers cannot make the verifier fetch arbitrary URLs.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any, Self

from identity.credentials.errors import CredentialError
from identity.credentials.jws import (
    DEFAULT_ALGS,
    MAX_JSON_DEPTH,
    MAX_JWT_BYTES,
    ParsedJws,
    check_alg,
    depth_ok,
    parse_compact,
)
from identity.credentials.model import (
    ENVELOPED_VC_PREFIX,
    ENVELOPED_VP_PREFIX,
    NormalisedCredential,
    as_list,
    issuer_id,
    normalise_credential,
    parse_datetime,
)
from identity.credentials.status_list import StatusFetcher, StatusList, StatusListError
from identity.credentials.trust import TrustList, as_trust_list
from identity.dids.document import key_from_verification_method
from identity.dids.errors import DidError, KeyNotInRelationship
from identity.dids.resolver import Resolver, parse_did
from identity.errors import IdentityError
from identity.keys import KeyPair

MAX_PRESENTATION_BYTES = 4 * 1024 * 1024
MAX_CREDENTIALS_PER_PRESENTATION = 100
DEFAULT_SKEW = timedelta(seconds=60)
STATUS_ENTRY_TYPES = {"BitstringStatusListEntry": "BitstringStatusList", "StatusList2021Entry": "StatusList2021"}
STATUS_CRED_TYPES = {"BitstringStatusListCredential", "StatusList2021Credential"}
_UNEXPECTED = (IdentityError, ValueError, TypeError, KeyError, AttributeError, RecursionError, OverflowError)


@dataclass(frozen=True)
class Check:
    """One verification step: ``code`` is set (stable id) when ``ok`` is False."""

    name: str
    ok: bool
    code: str | None = None
    detail: str = ""


@lru_cache(maxsize=1024)
def _passed_check(name: str, detail: str) -> Check:
    # a passed check is immutable and the same few (name, detail) pairs recur on every call: share them
    return Check(name, True, None, detail)


@dataclass
class _CheckLog:
    """The ordered checks of a verification; subclasses say what the checks were about."""

    checks: list[Check] = field(default_factory=list)

    def fail(self, name: str, code: str, detail: str) -> Self:
        self.checks.append(Check(name, False, code, detail))
        return self

    def passed(self, name: str, detail: str = "") -> None:
        self.checks.append(_passed_check(name, detail))


@dataclass
class VerificationResult(_CheckLog):
    """Outcome of verifying one credential; ``credential`` is the normalised plain VC JSON when parseable."""

    credential: dict[str, Any] | None = None
    issuer: str | None = None
    types: list[str] = field(default_factory=list)
    subject_id: str | None = None
    format: str | None = None  # "vc20-jwt" | "vc11-jwt" | "data-integrity"
    valid_from: datetime | None = None
    valid_until: datetime | None = None

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(c.ok for c in self.checks)

    @property
    def error_code(self) -> str | None:
        return next((c.code for c in self.checks if not c.ok), None)

    @property
    def error_detail(self) -> str | None:
        return next((c.detail for c in self.checks if not c.ok), None)


@dataclass
class PresentationResult(_CheckLog):
    """Outcome of verifying a presentation and every credential inside it."""

    holder: str | None = None
    credentials: list[VerificationResult] = field(default_factory=list)
    format: str | None = None
    claims: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(c.ok for c in self.checks) and all(c.ok for c in self.credentials)

    @property
    def error_code(self) -> str | None:
        own = next((c.code for c in self.checks if not c.ok), None)
        if own is not None:
            return own
        return next((c.error_code for c in self.credentials if not c.ok), None)



def _now(now: datetime | None) -> datetime:
    if now is None:
        return datetime.now(UTC)
    return now if now.tzinfo else now.replace(tzinfo=UTC)


async def _resolve_key(resolver: Resolver, header: dict[str, Any], controller: str, relationship: str,
                       alg: str) -> tuple[KeyPair | None, Check]:
    """Find the signer's key: ``kid`` (absolute or relative to ``controller``) under ``relationship``.

    Without ``kid`` (seen in the wild), every key of that relationship with a matching alg is a candidate:
    the caller tries each; here we return the first and let signature checking decide.
    """
    kid = header.get("kid")
    try:
        if isinstance(kid, str) and kid:
            did = kid.split("#", 1)[0] if not kid.startswith("#") else controller
            if did != controller:
                mismatch = "holder_mismatch" if relationship == "authentication" else "issuer_mismatch"
                return None, Check("key", False, mismatch,
                                   f"kid {kid!r} is not a key of {controller!r}")
            key = await resolver.verification_key(kid, relationship, controller)
        else:
            return None, Check("key", False, "kid_unresolvable", "JWT header has no kid")
    except KeyNotInRelationship as exc:
        return None, Check("key", False, "key_not_in_relationship", str(exc))
    except DidError as exc:
        return None, Check("key", False, "kid_unresolvable", f"{exc} ({exc.code})")
    if key.alg != alg:
        return None, Check("key", False, "alg_not_allowed",
                           f"header alg {alg} does not match the {key.alg} key {kid}")
    return key, Check("key", True, None, str(kid))


async def _keys_without_kid(resolver: Resolver, controller: str, relationship: str, alg: str) -> list[KeyPair]:
    doc = await resolver.resolve(controller)
    out = []
    for entry in doc.get(relationship) or []:
        ref = entry if isinstance(entry, str) else entry.get("id") if isinstance(entry, dict) else None
        if not isinstance(ref, str):
            continue
        try:
            key = await resolver.verification_key(ref, relationship, controller)
        except DidError:
            if isinstance(entry, dict):
                try:
                    key = key_from_verification_method(entry)
                except DidError:
                    continue
            else:
                continue
        if key.alg == alg:
            out.append(key)
    return out


async def _check_signature(result: VerificationResult | PresentationResult, parsed: ParsedJws, resolver: Resolver,
                           controller: str, relationship: str, alg: str) -> bool:
    if "kid" not in parsed.header:
        try:
            candidates = await _keys_without_kid(resolver, controller, relationship, alg)
        except (DidError, IdentityError) as exc:
            result.fail("key", "kid_unresolvable", f"{exc}")
            return False
        if not candidates:
            result.fail("key", "kid_unresolvable", f"no kid and no {alg} key under {relationship} of {controller}")
            return False
        for key in candidates:
            if key.verify(parsed.signature, parsed.signing_input):
                result.passed("key", f"{key.kid} (no kid in header)")
                result.passed("signature")
                return True
        result.passed("key", f"{len(candidates)} candidate keys (no kid in header)")
        result.fail("signature", "signature_invalid", "signature does not verify with any candidate key")
        return False
    signer, check = await _resolve_key(resolver, parsed.header, controller, relationship, alg)
    result.checks.append(check)
    if signer is None:
        return False
    if not signer.verify(parsed.signature, parsed.signing_input):
        result.fail("signature", "signature_invalid", f"signature does not verify with {signer.kid}")
        return False
    result.passed("signature")
    return True


def _check_validity(result: VerificationResult, now: datetime, skew: timedelta) -> bool:
    if result.valid_from is not None and now + skew < result.valid_from:
        result.fail("validity", "not_yet_valid", f"valid from {result.valid_from.isoformat()}")
        return False
    if result.valid_until is not None and now - skew >= result.valid_until:
        result.fail("validity", "expired", f"expired at {result.valid_until.isoformat()}")
        return False
    result.passed("validity")
    return True


def _check_trust(result: VerificationResult, trust: TrustList | None) -> bool:
    if trust is None:
        result.passed("trust", "no trust list given: issuer trust not evaluated")
        return True
    missing = trust.untrusted_types(result.issuer or "", result.types)
    if missing:
        result.fail("trust", "issuer_untrusted", f"{result.issuer} is not trusted for {', '.join(missing)}")
        return False
    result.passed("trust")
    return True


def _apply_normalised(result: VerificationResult, norm: NormalisedCredential) -> None:
    result.credential = norm.credential
    result.issuer = norm.issuer
    result.types = norm.types
    result.subject_id = norm.subject_id
    result.valid_from = norm.valid_from
    result.valid_until = norm.valid_until


def unwrap_enveloped(value: Any, prefix: str = ENVELOPED_VC_PREFIX) -> Any:
    """A JWT from an ``Enveloped*`` object (``data:application/vc+jwt,<jwt>``); other values unchanged."""
    if isinstance(value, dict) and "Enveloped" in str(value.get("type")):
        ident = value.get("id")
        if isinstance(ident, str) and ident.startswith(prefix):
            return ident[len(prefix):]
        if isinstance(ident, str) and ident.startswith("data:") and "," in ident:
            media, _, data = ident.partition(",")
            if media in ("data:application/jwt", "data:application/vc+jwt", "data:application/vp+jwt"):
                return data
        raise CredentialError("enveloped object must carry a data:application/vc+jwt URL in its id")
    return value


async def verify_credential(
    credential: str | dict[str, Any],
    *,
    resolver: Resolver,
    trust: TrustList | dict[str, Any] | None,
    now: datetime | None = None,
    status_fetcher: StatusFetcher | None = None,
    skew: timedelta = DEFAULT_SKEW,
    allowed_algs: frozenset[str] | set[str] = DEFAULT_ALGS,
    check_status: bool = True,
    max_bytes: int = MAX_JWT_BYTES,
) -> VerificationResult:
    """Verify a credential given as a JWT (vc20 or vc11 profile), an Enveloped credential, or a
    Data Integrity secured JSON credential. Never raises for bad input.

    A credential with ``credentialStatus`` needs ``status_fetcher`` (async url -> status list credential);
    without one its status is reported ``status_unavailable`` rather than silently assumed valid.
    """
    result = VerificationResult()
    try:
        return await _verify_credential(result, credential, resolver, trust, now, status_fetcher, skew,
                                        allowed_algs, check_status, max_bytes)
    except _UNEXPECTED as exc:  # last line of defence: bad input must never escape as an exception
        return result.fail("format", "malformed", f"unverifiable credential ({type(exc).__name__}: {exc})")


async def _verify_credential(result: VerificationResult, credential: Any, resolver: Resolver, trust: Any,
                             now: datetime | None, status_fetcher: StatusFetcher | None, skew: timedelta,
                             allowed_algs: frozenset[str] | set[str], check_status: bool,
                             max_bytes: int) -> VerificationResult:
    try:
        trust_list = as_trust_list(trust)
    except IdentityError as exc:
        return result.fail("trust", "issuer_untrusted", f"invalid trust list: {exc}")
    moment = _now(now)
    try:
        credential = unwrap_enveloped(credential)
    except CredentialError as exc:
        return result.fail("format", exc.code, str(exc))
    if isinstance(credential, str):
        if not await _verify_jwt_credential(result, credential, resolver, allowed_algs, max_bytes):
            return result
    elif isinstance(credential, dict):
        if not depth_ok(credential, MAX_JSON_DEPTH):
            return result.fail("format", "too_deep", f"JSON nesting exceeds depth {MAX_JSON_DEPTH}")
        if not await _verify_di_credential(result, credential, resolver):
            return result
    else:
        return result.fail("format", "malformed", "credential must be a JWT string or a JSON object")
    valid = _check_validity(result, moment, skew)
    trusted = _check_trust(result, trust_list)
    if not (valid and trusted):
        return result
    if check_status:
        await _check_status(result, resolver, status_fetcher, moment, skew, allowed_algs)
    return result


async def _verify_jwt_credential(result: VerificationResult, token: str, resolver: Resolver,
                                 allowed_algs: frozenset[str] | set[str], max_bytes: int) -> bool:
    try:
        parsed = parse_compact(token, max_bytes=max_bytes)
    except CredentialError as exc:
        result.fail("format", exc.code, str(exc))
        return False
    typ = parsed.header.get("typ")
    if isinstance(typ, str) and typ.lower() in ("vp+jwt", "vp+ld+jwt", "application/vp+jwt"):
        result.fail("format", "malformed", "a presentation was given where a credential is expected")
        return False
    payload = parsed.payload
    try:
        if "vc" in payload:
            if not isinstance(payload["vc"], dict):
                raise CredentialError("'vc' claim must be a JSON object")
            norm = normalise_credential(payload["vc"], payload, profile="vc11")
            result.format = "vc11-jwt"
        else:
            claims: dict[str, Any] = {k: payload[k] for k in ("iss", "nbf", "exp") if k in payload}
            norm = normalise_credential(payload, claims, profile="vc20")
            result.format = "vc20-jwt"
    except CredentialError as exc:
        result.fail("format", exc.code, str(exc))
        return False
    _apply_normalised(result, norm)
    result.passed("format", result.format)
    try:
        alg = check_alg(parsed.header, allowed_algs)
        parse_did(norm.issuer)
    except CredentialError as exc:
        result.fail("alg", exc.code, str(exc))
        return False
    except DidError as exc:
        result.fail("key", "kid_unresolvable", f"issuer is not a DID: {exc}")
        return False
    result.passed("alg", alg)
    return await _check_signature(result, parsed, resolver, norm.issuer, "assertionMethod", alg)


async def _verify_di_credential(result: VerificationResult, credential: dict[str, Any], resolver: Resolver) -> bool:
    # imported lazily: pyld is heavy and JWT-only verifiers never need it
    from identity.credentials.data_integrity import DataIntegrityError, verify_data_integrity

    if "proof" not in credential:
        result.fail("format", "malformed", "JSON credential carries no proof (unsecured credentials are rejected)")
        return False
    try:
        norm = normalise_credential({k: v for k, v in credential.items() if k != "proof"})
    except CredentialError as exc:
        result.fail("format", exc.code, str(exc))
        return False
    _apply_normalised(result, norm)
    result.format = "data-integrity"
    result.passed("format", result.format)
    try:
        proof = await verify_data_integrity(credential, resolver=resolver, purpose="assertionMethod")
    except DataIntegrityError as exc:
        name = "signature" if exc.code == "signature_invalid" else "key" if exc.code in (
            "kid_unresolvable", "key_not_in_relationship") else "alg" if exc.code == "alg_not_allowed" else "format"
        result.fail(name, exc.code, str(exc))
        return False
    vm_did = proof.verification_method.split("#", 1)[0]
    if vm_did != norm.issuer:
        result.fail("key", "issuer_mismatch", f"proof key {proof.verification_method} is not the issuer's")
        return False
    result.passed("key", proof.verification_method)
    result.passed("signature", proof.cryptosuite)
    return True


async def _check_status(result: VerificationResult, resolver: Resolver, fetcher: StatusFetcher | None,
                        now: datetime, skew: timedelta, allowed_algs: frozenset[str] | set[str]) -> None:
    entries = as_list((result.credential or {}).get("credentialStatus"))
    if not entries:
        result.passed("status", "no credentialStatus")
        return
    if fetcher is None:
        result.fail("status", "status_unavailable", "credential has credentialStatus but no status fetcher given")
        return
    for entry in entries:
        try:
            await _check_status_entry(entry, result, resolver, fetcher, now, skew, allowed_algs)
        except _StatusSet as hit:
            result.fail("status", hit.code, hit.detail)
            return
        except (IdentityError, ValueError, TypeError) as exc:
            result.fail("status", "status_unavailable", f"{type(exc).__name__}: {exc}")
            return
    result.passed("status")


class _StatusSet(Exception):
    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code, self.detail = code, detail


async def _check_status_entry(entry: Any, result: VerificationResult, resolver: Resolver, fetcher: StatusFetcher,
                              now: datetime, skew: timedelta, allowed_algs: frozenset[str] | set[str]) -> None:
    if not isinstance(entry, dict):
        raise StatusListError("credentialStatus entry must be an object")
    kind = STATUS_ENTRY_TYPES.get(str(entry.get("type")))
    if kind is None:
        raise StatusListError(f"unsupported credentialStatus type {entry.get('type')!r}")
    purpose = entry.get("statusPurpose", "revocation")
    if purpose not in ("revocation", "suspension"):
        return  # e.g. "message" status lists carry no validity meaning
    if entry.get("statusSize", 1) not in (1, "1"):
        raise StatusListError("multi-bit status entries (statusSize > 1) are not supported for validity checks")
    try:
        index = int(entry["statusListIndex"])
        url = entry["statusListCredential"]
    except (KeyError, ValueError, TypeError):
        raise StatusListError("credentialStatus needs statusListIndex and statusListCredential") from None
    if not isinstance(url, str):
        raise StatusListError("statusListCredential must be a URL")
    status_list = await _load_status_list(url, purpose, result.issuer or "", resolver, fetcher, now, skew,
                                          allowed_algs)
    if status_list.get(index):
        raise _StatusSet("revoked" if purpose == "revocation" else "suspended",
                         f"{purpose} bit {index} is set in {url}")


async def _load_status_list(url: str, purpose: str, issuer: str, resolver: Resolver, fetcher: StatusFetcher,
                            now: datetime, skew: timedelta, allowed_algs: frozenset[str] | set[str]) -> StatusList:
    verified: dict[str, tuple[float, Any]] | None = getattr(fetcher, "verified", None)
    if verified is not None:
        hit = verified.get(url)
        if hit and hit[0] > time.monotonic() and hit[1][1] == issuer:
            return hit[1][0]  # type: ignore[no-any-return]
    raw = await fetcher(url)
    listed = await verify_credential(raw, resolver=resolver, trust=None, now=now, skew=skew,
                                     allowed_algs=allowed_algs, check_status=False)
    if not listed.ok:
        raise StatusListError(f"status list credential {url} failed verification: {listed.error_code}")
    if listed.issuer != issuer:
        raise StatusListError(f"status list {url} is issued by {listed.issuer}, not by {issuer}")
    if not STATUS_CRED_TYPES & set(listed.types):
        raise StatusListError(f"{url} is not a status list credential")
    subject = (listed.credential or {}).get("credentialSubject")
    if not isinstance(subject, dict):
        raise StatusListError(f"status list {url} has no credentialSubject")
    if subject.get("statusPurpose", purpose) != purpose and purpose not in as_list(subject.get("statusPurpose")):
        raise StatusListError(f"status list {url} is for {subject.get('statusPurpose')!r}, not {purpose!r}")
    status_list = StatusList.decode(subject.get("encodedList", ""))
    if verified is not None:
        ttl = float(getattr(fetcher, "ttl", 300))
        if isinstance(subject.get("ttl"), int) and subject["ttl"] > 0:
            ttl = min(ttl, subject["ttl"] / 1000)
        verified[url] = (time.monotonic() + ttl, (status_list, issuer))
    return status_list


# ---- presentations ----------------------------------------------------------------------------------------


async def verify_presentation(
    presentation: str | dict[str, Any],
    *,
    resolver: Resolver,
    trust: TrustList | dict[str, Any] | None,
    audience: str | None,
    expected_holder: str | None,
    nonce: str | None = None,
    now: datetime | None = None,
    status_fetcher: StatusFetcher | None = None,
    skew: timedelta = DEFAULT_SKEW,
    allowed_algs: frozenset[str] | set[str] = DEFAULT_ALGS,
    require_subject_is_holder: bool = True,
    max_bytes: int = MAX_PRESENTATION_BYTES,
) -> PresentationResult:
    """Verify a vp+jwt (vc20) or VC-JWT 1.1 presentation and every credential in it. Never raises.

    The holder's key must be under ``authentication``; ``aud`` must contain ``audience`` and ``nonce`` must
    match when given; the holder must equal ``expected_holder`` (the caller) and each credential's subject.
    """
    result = PresentationResult()
    try:
        return await _verify_presentation(result, presentation, resolver, trust, audience, expected_holder, nonce,
                                          now, status_fetcher, skew, allowed_algs, require_subject_is_holder,
                                          max_bytes)
    except _UNEXPECTED as exc:  # last line of defence: bad input must never escape as an exception
        return result.fail("format", "malformed", f"unverifiable presentation ({type(exc).__name__}: {exc})")


async def _verify_presentation(result: PresentationResult, presentation: Any, resolver: Resolver, trust: Any,
                               audience: str | None, expected_holder: str | None, nonce: str | None,
                               now: datetime | None, status_fetcher: StatusFetcher | None, skew: timedelta,
                               allowed_algs: frozenset[str] | set[str], require_subject_is_holder: bool,
                               max_bytes: int) -> PresentationResult:
    moment = _now(now)
    try:
        presentation = unwrap_enveloped(presentation, ENVELOPED_VP_PREFIX)
    except CredentialError as exc:
        return result.fail("format", exc.code, str(exc))
    if not isinstance(presentation, str):
        return result.fail("format", "malformed", "presentation must be a JWT (vp+jwt or VC-JWT 1.1)")
    try:
        parsed = parse_compact(presentation, max_bytes=max_bytes)
    except CredentialError as exc:
        return result.fail("format", exc.code, str(exc))
    payload = parsed.payload
    result.claims = {k: payload[k] for k in ("iss", "sub", "aud", "nonce", "iat", "nbf", "exp", "jti") if k in payload}
    try:
        holder, credentials = _presentation_parts(payload)
    except CredentialError as exc:
        return result.fail("format", exc.code, str(exc))
    result.holder = holder
    result.format = "vc11-jwt" if "vp" in payload else "vc20-jwt"
    result.passed("format", result.format)
    try:
        alg = check_alg(parsed.header, allowed_algs)
        parse_did(holder)
    except CredentialError as exc:
        return result.fail("alg", exc.code, str(exc))
    except DidError as exc:
        return result.fail("key", "kid_unresolvable", f"holder is not a DID: {exc}")
    result.passed("alg", alg)
    if not await _check_signature(result, parsed, resolver, holder, "authentication", alg):
        return result
    if not _check_presentation_claims(result, payload, audience, nonce, moment, skew):
        return result
    if expected_holder is not None and holder != expected_holder:
        return result.fail("holder", "holder_mismatch", f"presentation holder {holder} is not {expected_holder}")
    result.passed("holder")
    for item in credentials:
        cred_result = await verify_credential(item, resolver=resolver, trust=trust, now=moment,
                                              status_fetcher=status_fetcher, skew=skew, allowed_algs=allowed_algs)
        if cred_result.ok and require_subject_is_holder and cred_result.subject_id != holder:
            cred_result.fail("holder", "holder_mismatch",
                             f"credential subject {cred_result.subject_id} is not the holder {holder}")
        result.credentials.append(cred_result)
    return result


def _presentation_parts(payload: dict[str, Any]) -> tuple[str, list[Any]]:
    if "vp" in payload:
        vp = payload["vp"]
        if not isinstance(vp, dict):
            raise CredentialError("'vp' claim must be a JSON object")
        holder = vp.get("holder") or payload.get("iss")
        if payload.get("iss") and vp.get("holder") and payload["iss"] != vp["holder"]:
            raise CredentialError("JWT iss differs from the presentation holder")
    else:
        vp = payload
        holder = vp.get("holder") or payload.get("iss")
        if isinstance(holder, dict):
            holder = holder.get("id")
        if payload.get("iss") and holder != payload["iss"]:
            raise CredentialError("JWT iss differs from the presentation holder")
    if "VerifiablePresentation" not in as_list(vp.get("type")):
        raise CredentialError("presentation 'type' must include VerifiablePresentation")
    if not isinstance(holder, str) or not holder:
        raise CredentialError("presentation names no holder (holder or iss)")
    creds = as_list(vp.get("verifiableCredential"))
    if len(creds) > MAX_CREDENTIALS_PER_PRESENTATION:
        raise CredentialError(f"presentation carries more than {MAX_CREDENTIALS_PER_PRESENTATION} credentials")
    return holder, creds


def _check_presentation_claims(result: PresentationResult, payload: dict[str, Any], audience: str | None,
                               nonce: str | None, now: datetime, skew: timedelta) -> bool:
    if audience is not None and audience not in as_list(payload.get("aud")):
        result.fail("audience", "audience_mismatch", f"aud {payload.get('aud')!r} does not contain {audience!r}")
        return False
    result.passed("audience", "" if audience is not None else "no audience required")
    if nonce is not None and payload.get("nonce") != nonce:
        result.fail("nonce", "nonce_mismatch", "presentation nonce does not match the expected one")
        return False
    if nonce is not None:
        result.passed("nonce")
    try:
        nbf = parse_datetime(payload["nbf"], "nbf") if "nbf" in payload else None
        exp = parse_datetime(payload["exp"], "exp") if "exp" in payload else None
        iat = parse_datetime(payload["iat"], "iat") if "iat" in payload else None
    except CredentialError as exc:
        result.fail("validity", "malformed", str(exc))
        return False
    if iat is not None and (nbf is None or iat > nbf):
        nbf = iat  # a presentation "issued" in the future is not valid yet either
    if nbf is not None and now + skew < nbf:
        result.fail("validity", "not_yet_valid", f"presentation valid from {nbf.isoformat()}")
        return False
    if exp is not None and now - skew >= exp:
        result.fail("validity", "expired", f"presentation expired at {exp.isoformat()}")
        return False
    result.passed("validity")
    return True


def credential_issuer(credential: dict[str, Any]) -> str:
    """Convenience for callers holding plain JSON: the issuer id as a string."""
    return issuer_id(credential)
