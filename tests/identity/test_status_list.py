"""Bitstring Status List / StatusList2021: bit order, encodings, the reference vector, and revocation checks
through a real HTTP server."""

from __future__ import annotations

import asyncio
import base64
import gzip
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from identity.credentials.jwt import issue_vc_jwt
from identity.credentials.status_list import (
    CachedStatusFetcher,
    HttpStatusFetcher,
    StatusList,
    StatusListError,
    build_status_list_credential,
    status_entry,
)
from identity.credentials.verify import verify_credential
from identity.dids import Resolver, build_did_document
from identity.keys import generate_key
from tests.identity.loopback_server import StaticSite, serve

VECTOR = Path(__file__).parents[1] / "data/vectors/generated-here/bssl-vector.json"
NOW = datetime(2025, 6, 1, tzinfo=UTC)


def test_index_zero_is_most_significant_bit_of_byte_zero() -> None:
    sl = StatusList.create(16)
    sl.set(0)
    sl.set(9)
    raw = gzip.decompress(base64.urlsafe_b64decode(sl.encode(multibase=False) + "=="))
    assert raw == bytes([0x80, 0x40])
    assert sl.get(0) and sl.get(9) and not sl.get(1)
    sl.set(0, False)
    assert not sl.get(0) and sl.set_indexes() == [9]


def test_reference_vector_decodes_exactly() -> None:
    vec = json.loads(VECTOR.read_text())
    decoded = StatusList.decode(vec["encodedList"])
    assert decoded.size == vec["length"]
    assert decoded.set_indexes() == vec["setIndexes"]
    assert StatusList.decode(vec["specExampleEncodedList"]).set_indexes() == []
    ours = StatusList.create(vec["length"])
    for i in vec["setIndexes"]:
        ours.set(i)
    assert StatusList.decode(ours.encode()).set_indexes() == vec["setIndexes"]


def test_all_encodings_accepted() -> None:
    sl = StatusList.create(1024)
    sl.set(1023)
    plain = sl.encode(multibase=False)
    assert sl.encode().startswith("u") and not plain.startswith("u")
    std = base64.b64encode(base64.urlsafe_b64decode(plain + "=" * (-len(plain) % 4))).decode()
    for form in (sl.encode(), plain, std):
        assert StatusList.decode(form).get(1023)


@pytest.mark.parametrize("bad", ["", "u", "u!!!", "uAAAA", base64.urlsafe_b64encode(b"not gzip").decode()])
def test_bad_encoded_lists(bad: str) -> None:
    with pytest.raises(StatusListError):
        StatusList.decode(bad)


def test_gzip_bomb_is_refused() -> None:
    bomb = base64.urlsafe_b64encode(gzip.compress(bytes(20 * 1024 * 1024))).decode()
    with pytest.raises(StatusListError, match="size limit"):
        StatusList.decode(bomb)


def test_index_and_size_validation() -> None:
    sl = StatusList.create(8)
    for bad in (-1, 8, True, "1"):
        with pytest.raises(StatusListError):
            sl.set(bad)  # type: ignore[arg-type]
    for size in (0, 7, -8):
        with pytest.raises(StatusListError):
            StatusList.create(size)


def test_built_credentials_and_entries() -> None:
    sl = StatusList.create()
    bssl = build_status_list_credential("did:web:i", "https://i/status/1", sl, ttl_ms=60000)
    assert bssl["type"] == ["VerifiableCredential", "BitstringStatusListCredential"]
    assert bssl["credentialSubject"]["encodedList"].startswith("u")
    assert bssl["credentialSubject"]["ttl"] == 60000
    sl21 = build_status_list_credential("did:web:i", "https://i/status/2", sl, kind="StatusList2021",
                                        purpose="suspension")
    assert sl21["credentialSubject"]["type"] == "StatusList2021"
    assert not sl21["credentialSubject"]["encodedList"].startswith("u")
    assert status_entry("https://i/status/1", 5) == {
        "id": "https://i/status/1#5", "type": "BitstringStatusListEntry", "statusPurpose": "revocation",
        "statusListIndex": "5", "statusListCredential": "https://i/status/1"}
    with pytest.raises(StatusListError):
        status_entry("u", 1, purpose="other")
    with pytest.raises(StatusListError):
        build_status_list_credential("did:web:i", "u", sl, kind="Other")


class Issuer:
    """A real issuer: key, DID document, status lists, and signed credentials."""

    def __init__(self, did: str, base_url: str, kind: str) -> None:
        self.did, self.base_url, self.kind = did, base_url, kind
        self.key = generate_key()
        self.kid = f"{did}#key-1"
        self.lists = {"revocation": StatusList.create(), "suspension": StatusList.create()}
        self.profile = "vc20" if kind == "BitstringStatusList" else "vc11"

    def document(self) -> dict[str, Any]:
        return build_did_document(self.did, [("key-1", self.key)])

    def list_url(self, purpose: str) -> str:
        return f"{self.base_url}/status/{purpose}"

    def list_jwt(self, purpose: str) -> str:
        cred = build_status_list_credential(self.did, self.list_url(purpose), self.lists[purpose], purpose=purpose,
                                            kind=self.kind, valid_from="2025-01-01T00:00:00Z")
        return issue_vc_jwt(cred, self.key, self.kid, self.profile)

    def credential(self, index: int, subject: str = "did:web:holder.example") -> str:
        ctx = "https://www.w3.org/ns/credentials/v2" if self.profile == "vc20" else \
            "https://www.w3.org/2018/credentials/v1"
        cred = {"@context": [ctx], "type": ["VerifiableCredential", "MembershipCredential"], "issuer": self.did,
                "credentialSubject": {"id": subject},
                "credentialStatus": [status_entry(self.list_url(p), index, purpose=p, kind=self.kind)
                                     for p in ("revocation", "suspension")]}
        cred["validFrom" if self.profile == "vc20" else "issuanceDate"] = "2025-01-01T00:00:00Z"
        return issue_vc_jwt(cred, self.key, self.kid, self.profile)


@pytest.mark.parametrize("kind", ["BitstringStatusList", "StatusList2021"])
def test_revocation_and_suspension_over_http(kind: str) -> None:
    site = StaticSite()
    with serve(site) as port:
        base = f"http://127.0.0.1:{port}"
        issuer = Issuer("did:web:issuer.example", base, kind)
        resolver = Resolver(methods=[])
        resolver.add_document(issuer.document())

        def publish() -> None:
            for purpose in ("revocation", "suspension"):
                site.put(f"/status/{purpose}", issuer.list_jwt(purpose), content_type="application/vc+jwt")

        publish()
        good, revoked, suspended = issuer.credential(3), issuer.credential(4), issuer.credential(5)

        async def go() -> None:
            fetcher = HttpStatusFetcher(allow_http_hosts={"127.0.0.1"}, ttl=300)

            async def check(token: str) -> Any:
                return await verify_credential(token, resolver=resolver, trust=None, now=NOW, status_fetcher=fetcher)

            assert (await check(good)).ok
            assert (await check(revoked)).ok
            issuer.lists["revocation"].set(4)
            issuer.lists["suspension"].set(5)
            publish()
            assert (await check(revoked)).ok  # still cached
            fetcher.invalidate()
            assert (await check(good)).ok
            result = await check(revoked)
            assert result.error_code == "revoked" and "4" in (result.error_detail or "")
            assert (await check(suspended)).error_code == "suspended"
            # unsuspend: back to valid after the cache is refreshed
            issuer.lists["suspension"].set(5, False)
            publish()
            fetcher.invalidate()
            assert (await check(suspended)).ok
            # no fetcher: status is never silently assumed valid
            no_fetcher = await verify_credential(good, resolver=resolver, trust=None, now=NOW)
            assert no_fetcher.error_code == "status_unavailable"

        asyncio.run(go())
        # two lists fetched once per cache period (initial, after first and second invalidation)
        assert site.hits["/status/revocation"] == 3


def test_status_list_failures_are_status_unavailable() -> None:
    site = StaticSite()
    with serve(site) as port:
        base = f"http://127.0.0.1:{port}"
        issuer = Issuer("did:web:issuer.example", base, "BitstringStatusList")
        mallory = Issuer("did:web:mallory.example", base, "BitstringStatusList")
        resolver = Resolver(methods=[])
        resolver.add_document(issuer.document())
        resolver.add_document(mallory.document())
        token = issuer.credential(1)

        async def check(**kw: Any) -> str | None:
            fetcher = HttpStatusFetcher(allow_http_hosts={"127.0.0.1"}, **kw)
            res = await verify_credential(token, resolver=resolver, trust=None, now=NOW, status_fetcher=fetcher)
            return res.error_code

        # 404
        assert asyncio.run(check()) == "status_unavailable"
        # list signed by another issuer
        site.put("/status/revocation", mallory.list_jwt("revocation").replace(mallory.base_url, base))
        site.put("/status/suspension", issuer.list_jwt("suspension"))
        assert asyncio.run(check()) == "status_unavailable"
        # list with a broken signature
        head, body, sig = issuer.list_jwt("revocation").split(".")
        site.put("/status/revocation", f"{head}.{body}.{sig[::-1]}")
        assert asyncio.run(check()) == "status_unavailable"
        # wrong purpose: the suspension list served where the revocation list is expected
        site.put("/status/revocation", issuer.list_jwt("suspension"))
        assert asyncio.run(check()) == "status_unavailable"
        # oversized response
        site.put("/status/revocation", "x" * 5000)
        assert asyncio.run(check(max_bytes=1000)) == "status_unavailable"
        # the real list: fine
        site.put("/status/revocation", issuer.list_jwt("revocation"))
        assert asyncio.run(check()) is None
        # http is refused unless the host is allowed
        res = asyncio.run(verify_credential(token, resolver=resolver, trust=None, now=NOW,
                                            status_fetcher=HttpStatusFetcher()))
        assert res.error_code == "status_unavailable" and "refusing" in (res.error_detail or "")


def test_injected_fetcher_and_json_status_credentials() -> None:
    """Any async callable works as fetcher; Data-Integrity-free JSON lists are rejected (unsigned)."""
    issuer = Issuer("did:web:issuer.example", "https://issuer.example", "BitstringStatusList")
    resolver = Resolver(methods=[])
    resolver.add_document(issuer.document())
    served: dict[str, Any] = {issuer.list_url(p): issuer.list_jwt(p) for p in ("revocation", "suspension")}
    calls: list[str] = []

    async def fetch(url: str) -> Any:
        calls.append(url)
        return served[url]

    cached = CachedStatusFetcher(fetch, ttl=60)
    token = issuer.credential(7)

    async def go() -> None:
        for _ in range(3):
            assert (await verify_credential(token, resolver=resolver, trust=None, now=NOW,
                                            status_fetcher=cached)).ok
        served[issuer.list_url("revocation")] = build_status_list_credential(
            issuer.did, issuer.list_url("revocation"), StatusList.create())
        plain = await verify_credential(token, resolver=resolver, trust=None, now=NOW, status_fetcher=fetch)
        assert plain.error_code == "status_unavailable"

    asyncio.run(go())
    assert calls.count(issuer.list_url("revocation")) == 2  # once cached, once uncached


@settings(max_examples=60, deadline=None)
@given(st.sets(st.integers(min_value=0, max_value=8 * 2048 - 1), max_size=50))
def test_encode_decode_round_trip(indexes: set[int]) -> None:
    sl = StatusList.create(8 * 2048)
    for i in indexes:
        sl.set(i)
    for multibase in (True, False):
        back = StatusList.decode(sl.encode(multibase=multibase))
        assert back.set_indexes() == sorted(indexes)
