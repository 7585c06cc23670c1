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
