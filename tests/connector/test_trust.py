"""DCP trust adapter: outgoing requests carry a fresh SI token for the audience; incoming ones are checked."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from connector.app import build_protocol_app
from connector.trust import TrustError
from identity.dcp.jws import parse_jws
from tests.connector.test_protocol_support import context, serve


def test_authorization_is_a_fresh_si_token_for_the_audience(tmp_path: Path) -> None:
    with context(tmp_path) as ctx:
        first = ctx.trust.authorization("did:web:peer.example")
        second = ctx.trust.authorization("did:web:peer.example")
        a, b = parse_jws(first.removeprefix("Bearer ")), parse_jws(second.removeprefix("Bearer "))
        assert a.verify_with(ctx.wallet.key)
        assert a.payload["aud"] == "did:web:peer.example" and a.payload["iss"] == a.payload["sub"] == ctx.did
        assert a.payload["jti"] != b.payload["jti"]
        assert "token" not in a.payload  # we hold no credentials, so we grant nothing to read


def test_required_scopes_follow_the_trusted_types(tmp_path: Path) -> None:
    with context(tmp_path, trust={"issuers": {"MembershipCredential": ["did:web:a"], "*": ["did:web:b"]},
                                  "scope_format": "edc"}) as ctx:
        assert ctx.trust.required_scopes() == ["org.eclipse.edc.vc.type:MembershipCredential:read"]


@pytest.mark.parametrize(("header", "code"), [(None, "token_missing"), ("Basic abc", "token_missing"),
                                              ("Bearer not-a-jwt", None)])
def test_bad_authorization_is_a_trust_error(tmp_path: Path, header: str | None, code: str | None) -> None:
    with context(tmp_path) as ctx:
        with pytest.raises(TrustError) as info:
            asyncio.run(ctx.trust.verify_request(header))
        assert info.value.status == 401
        if code:
            assert info.value.code == code


def test_own_token_replayed_to_ourselves_is_refused(tmp_path: Path) -> None:
    with context(tmp_path) as ctx:
        token = ctx.trust.authorization(ctx.did)

        async def twice() -> tuple[str, str]:
            party = await ctx.trust.verify_request(token)
            try:
                await ctx.trust.verify_request(token)
            except TrustError as exc:
                return party.did, exc.code
            return party.did, "accepted twice"

        did, code = asyncio.run(twice())
        assert did == ctx.did and code == "replayed"


def test_counterparty_did_is_discovered_from_version_metadata(tmp_path: Path) -> None:
    with context(tmp_path / "a") as provider, context(tmp_path / "b") as consumer:
        with serve(build_protocol_app(provider)) as base:
            async def discover() -> str:
                try:
                    return await consumer.trust.discover_did(base)
                finally:
                    await consumer.http.aclose()
            assert asyncio.run(discover()) == provider.did


def test_held_scopes_follow_the_wallet_at_once(tmp_path: Path) -> None:
    """The remembered scopes are read again as soon as a credential is stored or removed."""
    from datetime import UTC, datetime, timedelta

    from identity.credentials.jwt import issue_vc_jwt
    from identity.dids import did_key_from_key
    from identity.keys import generate_key

    issuer_key = generate_key("EdDSA")
    issuer = did_key_from_key(issuer_key)
    with context(tmp_path) as ctx:
        assert ctx.trust.held_scopes() == []
        now = datetime.now(UTC)
        credential = issue_vc_jwt({
            "@context": ["https://www.w3.org/ns/credentials/v2"], "id": "urn:uuid:m1",
            "type": ["VerifiableCredential", "MembershipCredential"], "issuer": issuer,
            "validFrom": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "validUntil": (now + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "credentialSubject": {"id": ctx.did}}, issuer_key, f"{issuer}#{issuer.split(':')[-1]}")
        ctx.wallet.store_credential(credential)
        assert ctx.trust.held_scopes() == ["org.eclipse.dspace.dcp.vc.type:MembershipCredential:read"]
        assert "token" in parse_jws(ctx.trust.authorization("did:web:peer.example").removeprefix("Bearer ")).payload
        ctx.wallet.remove_credential("urn:uuid:m1")
        assert ctx.trust.held_scopes() == []
