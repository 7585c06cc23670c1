"""vc+jwt / vp+jwt in both DCP profiles: issue, verify, and one test per failure code."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from identity.credentials.errors import CredentialError
from identity.credentials.jws import sign_compact
from identity.credentials.jwt import decode_unverified, envelope_vc, issue_vc_jwt, issue_vp_jwt
from identity.credentials.trust import TrustList
from identity.credentials.verify import VerificationResult, verify_credential, verify_presentation
from identity.dids import Resolver, build_did_document, did_key_from_key
from identity.keys import KeyPair, generate_key
from identity.multibase import b64url_encode

V2 = "https://www.w3.org/ns/credentials/v2"
V1 = "https://www.w3.org/2018/credentials/v1"
ISSUER = "did:web:issuer.example"
OTHER_ISSUER = "did:web:other.example"
VERIFIER = "did:web:verifier.example"
NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


class Party:
    def __init__(self, did: str, key: KeyPair, kid: str) -> None:
        self.did, self.key, self.kid = did, key, kid


def make_issuer(did: str, alg: str = "EdDSA") -> tuple[Party, dict[str, Any]]:
    key = generate_key(alg)
    return Party(did, key, f"{did}#key-1"), build_did_document(did, [("key-1", key)])


@pytest.fixture(params=["EdDSA", "ES256", "ES256K"])
def world(request: pytest.FixtureRequest) -> dict[str, Any]:
    issuer, doc = make_issuer(ISSUER, request.param)
    other, other_doc = make_issuer(OTHER_ISSUER)
    hkey = generate_key(request.param)
    holder_did = did_key_from_key(hkey)
    holder = Party(holder_did, hkey, f"{holder_did}#{holder_did.removeprefix('did:key:')}")
    resolver = Resolver()
    resolver.add_document(doc)
    resolver.add_document(other_doc)
    trust = TrustList({"MembershipCredential": {ISSUER}, "BpnCredential": {ISSUER}})
    return {"issuer": issuer, "other": other, "holder": holder, "resolver": resolver, "trust": trust}


def credential(profile: str, subject: str, issuer: str = ISSUER, **extra: Any) -> dict[str, Any]:
    cred: dict[str, Any] = {
        "@context": [V2 if profile == "vc20" else V1],
        "id": "urn:uuid:00000000-0000-0000-0000-000000000001",
        "type": ["VerifiableCredential", "MembershipCredential"],
        "issuer": issuer,
        "credentialSubject": {"id": subject, "holderIdentifier": "BPNL000000000001"},
    }
    if profile == "vc20":
        cred["validFrom"] = "2025-01-01T00:00:00Z"
        cred["validUntil"] = "2026-01-01T00:00:00Z"
    else:
        cred["issuanceDate"] = "2025-01-01T00:00:00Z"
        cred["expirationDate"] = "2026-01-01T00:00:00Z"
    cred.update(extra)
    return cred


def verify(token: Any, w: dict[str, Any], **kw: Any) -> VerificationResult:
    kw.setdefault("trust", w["trust"])
    kw.setdefault("now", NOW)
    return asyncio.run(verify_credential(token, resolver=w["resolver"], **kw))


PROFILES = ["vc20", "vc11"]


@pytest.mark.parametrize("profile", PROFILES)
def test_issue_and_verify(world: dict[str, Any], profile: str) -> None:
    iss, holder = world["issuer"], world["holder"]
    token = issue_vc_jwt(credential(profile, holder.did), iss.key, iss.kid, profile)
    header, payload = decode_unverified(token)
    assert header["alg"] == iss.key.alg and header["kid"] == iss.kid
    if profile == "vc20":
        assert header["typ"] == "vc+jwt" and payload["issuer"] == ISSUER and "vc" not in payload
    else:
        assert header["typ"] == "JWT" and payload["vc"]["issuer"] == ISSUER
        assert payload["iss"] == ISSUER and payload["sub"] == holder.did
        assert payload["nbf"] == int(datetime(2025, 1, 1, tzinfo=UTC).timestamp())
    result = verify(token, world)
    assert result.ok, result.checks
    assert result.error_code is None
    assert result.issuer == ISSUER and result.subject_id == holder.did
    assert result.types == ["VerifiableCredential", "MembershipCredential"]
    assert result.credential is not None
    assert result.credential["validFrom"] == "2025-01-01T00:00:00Z"
    assert result.credential["validUntil"] == "2026-01-01T00:00:00Z"
    assert result.credential["credentialSubject"]["holderIdentifier"] == "BPNL000000000001"
    assert [c.name for c in result.checks] == ["format", "alg", "key", "signature", "validity", "trust", "status"]


@pytest.mark.parametrize("profile", PROFILES)
def test_tampered_payload_is_signature_invalid(world: dict[str, Any], profile: str) -> None:
    iss = world["issuer"]
    token = issue_vc_jwt(credential(profile, world["holder"].did), iss.key, iss.kid, profile)
    head, payload, sig = token.split(".")
    claims = decode_unverified(token).payload
    target = claims if profile == "vc20" else claims["vc"]
    target["credentialSubject"]["holderIdentifier"] = "BPNL999999999999"
    forged = f"{head}.{b64url_encode(json.dumps(claims).encode())}.{sig}"
    assert verify(forged, world).error_code == "signature_invalid"
    # signature made by a key that is not the issuer's
    wrong = sign_compact(decode_unverified(token).header, decode_unverified(token).payload, generate_key(iss.key.alg))
    assert verify(wrong, world).error_code == "signature_invalid"


def test_validity_window_with_skew(world: dict[str, Any]) -> None:
    iss = world["issuer"]
    token = issue_vc_jwt(credential("vc20", world["holder"].did), iss.key, iss.kid)
    start, end = datetime(2025, 1, 1, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC)
    assert verify(token, world, now=start - timedelta(seconds=30)).ok  # inside default 60 s skew
    assert verify(token, world, now=start - timedelta(seconds=61)).error_code == "not_yet_valid"
    assert verify(token, world, now=end + timedelta(seconds=59)).ok
    assert verify(token, world, now=end + timedelta(seconds=60)).error_code == "expired"
    assert verify(token, world, now=end, skew=timedelta(0)).error_code == "expired"


def test_vc11_claims_tighten_window(world: dict[str, Any]) -> None:
    iss = world["issuer"]
    claims = {"iss": ISSUER, "sub": world["holder"].did, "nbf": 1748779200.5,  # 2025-06-01T12:00:00.5Z as float
              "exp": 1750000000.0, "vc": credential("vc11", world["holder"].did)}
    token = sign_compact({"typ": "JWT", "kid": iss.kid}, claims, iss.key)
    result = verify(token, world, now=NOW, skew=timedelta(0))
    assert result.error_code == "not_yet_valid"
    assert verify(token, world, now=NOW + timedelta(seconds=1)).ok
    assert verify(token, world, now=datetime(2025, 6, 16, tzinfo=UTC)).error_code == "expired"


def test_untrusted_issuer(world: dict[str, Any]) -> None:
    other = world["other"]
    token = issue_vc_jwt(credential("vc20", world["holder"].did, OTHER_ISSUER), other.key, other.kid)
    assert verify(token, world).error_code == "issuer_untrusted"
    assert verify(token, world, trust={"*": [OTHER_ISSUER]}).ok
    assert verify(token, world, trust=None).ok  # trust not evaluated when no list is given
    # trusted for one type does not cover another claimed type
    extra = credential("vc20", world["holder"].did, type=["VerifiableCredential", "MembershipCredential",
                                                          "DismantlerCredential"])
    iss = world["issuer"]
    assert verify(issue_vc_jwt(extra, iss.key, iss.kid), world).error_code == "issuer_untrusted"


def test_kid_problems(world: dict[str, Any]) -> None:
    iss, other = world["issuer"], world["other"]
    cred = credential("vc20", world["holder"].did)
    unknown_fragment = sign_compact({"typ": "vc+jwt", "kid": f"{ISSUER}#key-9"}, cred, iss.key)
    assert verify(unknown_fragment, world).error_code == "kid_unresolvable"
    unknown_did = sign_compact({"typ": "vc+jwt", "kid": "did:web:nowhere.invalid#k"},
                               credential("vc20", "did:x:y", issuer="did:web:nowhere.invalid"), iss.key)
    result = verify(unknown_did, world)
    assert result.error_code == "kid_unresolvable"
    foreign = sign_compact({"typ": "vc+jwt", "kid": other.kid}, cred, other.key)
    assert verify(foreign, world).error_code == "issuer_mismatch"
    relative = sign_compact({"typ": "vc+jwt", "kid": "#key-1"}, cred, iss.key)
    assert verify(relative, world).ok
    no_kid = sign_compact({"typ": "vc+jwt"}, cred, iss.key)
    assert verify(no_kid, world).ok  # tried against every assertionMethod key of the issuer
    no_kid_bad = sign_compact({"typ": "vc+jwt"}, cred, generate_key(iss.key.alg))
    assert verify(no_kid_bad, world).error_code == "signature_invalid"


def test_key_not_in_assertion_method() -> None:
    key = generate_key()
    doc = build_did_document(ISSUER, [("key-1", key)], relationships=("authentication",))
    resolver = Resolver(methods=[])
    resolver.add_document(doc)
    token = issue_vc_jwt(credential("vc20", "did:example:h"), key, f"{ISSUER}#key-1")
    result = asyncio.run(verify_credential(token, resolver=resolver, trust=None, now=NOW))
    assert result.error_code == "key_not_in_relationship"


@pytest.mark.parametrize("alg", ["none", "HS256", "RS256", "ES384", None])
def test_alg_not_allowed(world: dict[str, Any], alg: str | None) -> None:
    iss = world["issuer"]
    token = issue_vc_jwt(credential("vc20", world["holder"].did), iss.key, iss.kid)
    _, payload, sig = token.split(".")
    header = {"typ": "vc+jwt", "kid": iss.kid, "alg": alg}
    forged = f"{b64url_encode(json.dumps(header).encode())}.{payload}.{sig if alg != 'none' else ''}"
    assert verify(forged, world).error_code == "alg_not_allowed"


def test_alg_allow_list_is_configurable_and_must_match_key(world: dict[str, Any]) -> None:
    iss = world["issuer"]
    token = issue_vc_jwt(credential("vc20", world["holder"].did), iss.key, iss.kid)
    others = {"EdDSA", "ES256", "ES256K"} - {iss.key.alg}
    assert verify(token, world, allowed_algs=others).error_code == "alg_not_allowed"
    _, payload, sig = token.split(".")
    lie = next(iter(sorted(others)))
    header = b64url_encode(json.dumps({"typ": "vc+jwt", "kid": iss.kid, "alg": lie}).encode())
    assert verify(f"{header}.{payload}.{sig}", world).error_code == "alg_not_allowed"


@pytest.mark.parametrize("token", [
    "", "abc", "a.b", "a.b.c.d", "!!!.???.###", "eyJhbGciOiJFZERTQSJ9.bm90IGpzb24.AAAA",
    b64url_encode(b"[]") + "." + b64url_encode(b"{}") + ".AA",
    b64url_encode(b'{"alg":"EdDSA"}') + "." + b64url_encode(b'{"vc": 5}') + ".AA",
    b64url_encode(b'{"alg":"EdDSA"}') + "." + b64url_encode(b'{"type":["VerifiableCredential"]}') + ".AA",
    b64url_encode(b'{"alg":"EdDSA","crit":["x"]}') + "." + b64url_encode(b"{}") + ".AA",
])
def test_malformed_tokens(world: dict[str, Any], token: str) -> None:
    result = verify(token, world)
    assert not result.ok
    assert result.error_code == "malformed"


def test_non_string_and_unsecured_inputs(world: dict[str, Any]) -> None:
    assert verify(12, world).error_code == "malformed"
    assert verify(credential("vc20", "did:x:y"), world).error_code == "malformed"  # JSON without proof
    assert verify({"type": "EnvelopedVerifiableCredential", "id": "https://x"}, world).error_code == "malformed"


def test_enveloped_credential_is_unwrapped(world: dict[str, Any]) -> None:
    iss = world["issuer"]
    token = issue_vc_jwt(credential("vc20", world["holder"].did), iss.key, iss.kid)
    assert verify(envelope_vc(token), world).ok


def test_too_large_and_too_deep_never_crash(world: dict[str, Any]) -> None:
    iss = world["issuer"]
    huge = credential("vc20", world["holder"].did, blob="x" * (5 * 1024 * 1024))
    big_token = issue_vc_jwt(huge, iss.key, iss.kid)
    assert verify(big_token, world).error_code == "too_large"
    deep: Any = "leaf"
    for _ in range(100):
        deep = {"n": deep}
    token = issue_vc_jwt(credential("vc20", world["holder"].did, deep=deep), iss.key, iss.kid)
    assert verify(token, world).error_code == "too_deep"
    header = b64url_encode(b'{"alg":"EdDSA"}')
    bomb = header + "." + b64url_encode(b"[" * 200_000 + b"]" * 200_000) + ".AA"
    assert verify(bomb, world).error_code in ("too_deep", "too_large")
    bomb2 = header + "." + b64url_encode(b"[" * 100_000) + ".AA"
    assert verify(bomb2, world).error_code in ("too_deep", "malformed")


def test_presentation_given_as_credential_is_malformed(world: dict[str, Any]) -> None:
    h = world["holder"]
    vp = issue_vp_jwt(h.did, [], h.key, h.kid, VERIFIER, issued_at=NOW)
    assert verify(vp, world).error_code == "malformed"


def test_issue_rejects_bad_input(world: dict[str, Any]) -> None:
    iss = world["issuer"]
    cred = credential("vc20", "did:x:y")
    with pytest.raises(CredentialError):
        issue_vc_jwt(cred, iss.key, "did:web:someone.else#key-1")
    with pytest.raises(CredentialError):
        issue_vc_jwt(cred, iss.key, "key-1")
    with pytest.raises(CredentialError):
        issue_vc_jwt(cred, iss.key, iss.kid, "vc30")
    with pytest.raises(CredentialError):
        issue_vc_jwt(credential("vc11", "did:x:y"), iss.key, iss.kid, "vc20")
    with pytest.raises(CredentialError):
        issue_vc_jwt({"issuer": ISSUER}, iss.key, iss.kid)
    with pytest.raises(CredentialError):
        issue_vc_jwt({**cred, "validFrom": "yesterday"}, iss.key, iss.kid)
    with pytest.raises(CredentialError):
        issue_vp_jwt("did:x:y", ["not-a-jwt"], iss.key, "did:x:y#k", None)


# ---- presentations ----------------------------------------------------------------------------------------


def vp_verify(vp: Any, w: dict[str, Any], **kw: Any) -> Any:
    kw.setdefault("trust", w["trust"])
    kw.setdefault("audience", VERIFIER)
    kw.setdefault("expected_holder", w["holder"].did)
    kw.setdefault("now", NOW)
    return asyncio.run(verify_presentation(vp, resolver=w["resolver"], **kw))


@pytest.mark.parametrize("profile", PROFILES)
def test_presentation_round_trip(world: dict[str, Any], profile: str) -> None:
    iss, h = world["issuer"], world["holder"]
    vc = issue_vc_jwt(credential(profile, h.did), iss.key, iss.kid, profile)
    vp = issue_vp_jwt(h.did, [vc, vc], h.key, h.kid, VERIFIER, nonce="n-1", profile=profile,
                      issued_at=NOW)
    header, payload = decode_unverified(vp)
    if profile == "vc20":
        assert header["typ"] == "vp+jwt"
        assert payload["verifiableCredential"][0] == {
            "@context": [V2], "id": f"data:application/vc+jwt,{vc}", "type": "EnvelopedVerifiableCredential"}
    else:
        assert payload["vp"]["verifiableCredential"] == [vc, vc]
    result = vp_verify(vp, world, nonce="n-1")
    assert result.ok, (result.checks, [c.checks for c in result.credentials])
    assert result.holder == h.did and len(result.credentials) == 2
    assert result.credentials[0].types[-1] == "MembershipCredential"
    assert vp_verify(vp, world, audience=None, expected_holder=None).ok


def test_presentation_failures(world: dict[str, Any]) -> None:
    iss, h, other = world["issuer"], world["holder"], world["other"]
    vc = issue_vc_jwt(credential("vc20", h.did), iss.key, iss.kid)
    vp = issue_vp_jwt(h.did, [vc], h.key, h.kid, VERIFIER, nonce="n-1", issued_at=NOW)
    assert vp_verify(vp, world, audience="did:web:someone").error_code == "audience_mismatch"
    assert vp_verify(vp, world, nonce="n-2").error_code == "nonce_mismatch"
    assert vp_verify(vp, world, expected_holder="did:web:caller").error_code == "holder_mismatch"
    far = NOW.replace(year=2030)
    assert vp_verify(vp, world, now=far).error_code == "expired"
    assert vp_verify(vp, world, now=datetime(2000, 1, 1, tzinfo=UTC)).error_code == "not_yet_valid"
    # credential about somebody else, presented by h
    someone = issue_vc_jwt(credential("vc20", "did:web:victim.example"), iss.key, iss.kid)
    stolen = issue_vp_jwt(h.did, [someone], h.key, h.kid, VERIFIER, issued_at=NOW)
    result = vp_verify(stolen, world)
    assert result.error_code == "holder_mismatch" and not result.credentials[0].ok
    # inner credential failure surfaces
    untrusted = issue_vc_jwt(credential("vc20", h.did, OTHER_ISSUER), other.key, other.kid)
    carrying = issue_vp_jwt(h.did, [untrusted], h.key, h.kid, VERIFIER, issued_at=NOW)
    assert vp_verify(carrying, world).error_code == "issuer_untrusted"
    # signed by a key that is not the holder's
    forged = issue_vp_jwt(h.did, [vc], generate_key(h.key.alg), h.kid, VERIFIER, issued_at=NOW)
    assert vp_verify(forged, world).error_code == "signature_invalid"
    # a credential given where a presentation is expected
    assert vp_verify(vc, world).error_code == "malformed"
    assert vp_verify({"not": "a jwt"}, world).error_code == "malformed"
    assert vp_verify("x" * (5 * 1024 * 1024), world).error_code == "too_large"


def test_presentation_key_must_be_authentication() -> None:
    key = generate_key()
    did = "did:web:holder.example"
    resolver = Resolver(methods=[])
    resolver.add_document(build_did_document(did, [("key-1", key)], relationships=("assertionMethod",)))
    vp = issue_vp_jwt(did, [], key, f"{did}#key-1", VERIFIER, issued_at=NOW)
    result = asyncio.run(verify_presentation(vp, resolver=resolver, trust=None, audience=VERIFIER,
                                             expected_holder=did, now=NOW))
    assert result.error_code == "key_not_in_relationship"


def test_presentation_iss_must_equal_holder(world: dict[str, Any]) -> None:
    h = world["holder"]
    claims = {"iss": "did:web:mallory.example", "aud": VERIFIER, "@context": [V2],
              "type": ["VerifiablePresentation"], "holder": h.did, "verifiableCredential": []}
    vp = sign_compact({"typ": "vp+jwt", "kid": h.kid}, claims, h.key)
    assert vp_verify(vp, world).error_code == "malformed"


def test_presentation_signed_with_someone_elses_key(world: dict[str, Any]) -> None:
    h, other = world["holder"], world["other"]
    claims = {"iss": h.did, "aud": VERIFIER, "@context": [V2], "type": ["VerifiablePresentation"], "holder": h.did,
              "verifiableCredential": []}
    vp = sign_compact({"typ": "vp+jwt", "kid": other.kid}, claims, other.key)
    assert vp_verify(vp, world).error_code == "holder_mismatch"


def test_presentation_issued_in_the_future(world: dict[str, Any]) -> None:
    h = world["holder"]
    claims = {"iss": h.did, "aud": VERIFIER, "iat": int(NOW.timestamp()) + 3600, "@context": [V2],
              "type": ["VerifiablePresentation"], "holder": h.did, "verifiableCredential": []}
    vp = sign_compact({"typ": "vp+jwt", "kid": h.kid}, claims, h.key)
    assert vp_verify(vp, world).error_code == "not_yet_valid"
    claims["iat"] = "yesterday"
    assert vp_verify(sign_compact({"typ": "vp+jwt", "kid": h.kid}, claims, h.key), world).error_code == "malformed"
