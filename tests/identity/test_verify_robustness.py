"""Property tests: whatever arrives, verification answers with a result and a code, never an exception."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from identity.credentials.jws import sign_compact
from identity.credentials.verify import verify_credential, verify_presentation
from identity.dids import Resolver, build_did_document
from identity.keys import generate_key

ISSUER = "did:web:issuer.example"
KEY = generate_key()
RESOLVER = Resolver(methods=[])
RESOLVER.add_document(build_did_document(ISSUER, [("key-1", KEY)]))
NOW = datetime(2025, 1, 1, tzinfo=UTC)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)
credential_like = st.fixed_dictionaries(
    {},
    optional={
        "@context": st.sampled_from([["https://www.w3.org/ns/credentials/v2"], "x", [1], None]),
        "type": st.sampled_from([["VerifiableCredential"], "VerifiableCredential", [None], 5]),
        "issuer": st.sampled_from([ISSUER, {"id": ISSUER}, {"id": 3}, "", None, "did:web:other.example"]),
        "credentialSubject": json_values,
        "validFrom": st.sampled_from(["2024-01-01T00:00:00Z", "garbage", 12, None, "9999-99-99"]),
        "validUntil": json_values,
        "credentialStatus": json_values,
        "vc": json_values,
        "nbf": st.one_of(st.integers(), st.floats(allow_nan=False, allow_infinity=True), st.text(max_size=5)),
        "exp": st.one_of(st.integers(), st.floats(allow_nan=False, allow_infinity=True)),
        "iss": st.sampled_from([ISSUER, "x", 5]),
        "sub": json_values,
    },
)
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _check(result: Any) -> None:
    assert result.ok in (True, False)
    if not result.ok:
        assert isinstance(result.error_code, str) and result.error_code


@FUZZ
@given(st.one_of(st.text(max_size=200), json_values))
def test_arbitrary_inputs(value: Any) -> None:
    _check(asyncio.run(verify_credential(value, resolver=RESOLVER, trust=None, now=NOW)))
    _check(asyncio.run(verify_presentation(value, resolver=RESOLVER, trust=None, audience=None,
                                           expected_holder=None, now=NOW)))


@FUZZ
@given(credential_like, st.dictionaries(st.sampled_from(["kid", "typ", "cty", "x"]), json_values, max_size=3))
def test_validly_signed_garbage(payload: dict[str, Any], header: dict[str, Any]) -> None:
    """Even payloads signed by the trusted issuer's real key must not crash the checks after the signature."""
    header = {**header, "kid": header.get("kid", f"{ISSUER}#key-1")}
    token = sign_compact(header, payload, KEY)
    _check(asyncio.run(verify_credential(token, resolver=RESOLVER, trust={"*": [ISSUER]}, now=NOW)))
    vp = sign_compact(header, {"type": ["VerifiablePresentation"], "holder": ISSUER, "iss": ISSUER,
                               "verifiableCredential": [token, payload]}, KEY)
    _check(asyncio.run(verify_presentation(vp, resolver=RESOLVER, trust=None, audience=None,
                                           expected_holder=ISSUER, now=NOW)))
