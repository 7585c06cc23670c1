"""did:web: URL derivation, resolution over a real loopback HTTP server, caching, and every rejection."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest

from identity.dids import (
    DidIdMismatch,
    DidResolutionError,
    InvalidDid,
    InvalidDidDocument,
    KeyNotInRelationship,
    Resolver,
    UnsupportedDidMethod,
    VerificationMethodNotFound,
    build_did_document,
    did_web_from_url,
    did_web_url,
    find_service,
)
from identity.dids.document import validate_did_document
from identity.keys import generate_key
from tests.identity.loopback_server import StaticSite, serve


@pytest.mark.parametrize(("did", "url"), [
    ("did:web:w3c-ccg.github.io", "https://w3c-ccg.github.io/.well-known/did.json"),
    ("did:web:w3c-ccg.github.io:user:alice", "https://w3c-ccg.github.io/user/alice/did.json"),
    ("did:web:example.com%3A3000", "https://example.com:3000/.well-known/did.json"),
    ("did:web:example.com%3A3000:user:alice", "https://example.com:3000/user/alice/did.json"),
    ("did:web:example.com#key-1", "https://example.com/.well-known/did.json"),
])
def test_did_web_url_per_method_spec(did: str, url: str) -> None:
    assert did_web_url(did) == url


def test_http_only_for_configured_loopback() -> None:
    assert did_web_url("did:web:127.0.0.1%3A8080") == "https://127.0.0.1:8080/.well-known/did.json"
    assert did_web_url("did:web:127.0.0.1%3A8080:p", {"127.0.0.1"}) == "http://127.0.0.1:8080/p/did.json"
    assert did_web_url("did:web:localhost%3A9", {"localhost"}) == "http://localhost:9/.well-known/did.json"
    # a non-loopback host listed for http is a configuration error, never a downgrade
    with pytest.raises(InvalidDid):
        did_web_url("did:web:example.com", {"example.com"})
    with pytest.raises(InvalidDid):
        Resolver(allow_http_hosts={"10.0.0.1"})


@pytest.mark.parametrize("bad", ["did:web:", "did:web:a::b", "did:web:ex/ample.com", "did:key:z6Mk", "did:web:a%40b"])
def test_malformed_did_web(bad: str) -> None:
    with pytest.raises(InvalidDid):
        did_web_url(bad)


@pytest.mark.parametrize(("url", "did"), [
    ("http://127.0.0.1:8080/issuer", "did:web:127.0.0.1%3A8080:issuer"),
    ("https://example.com", "did:web:example.com"),
    ("https://example.com/.well-known/did.json", "did:web:example.com"),
    ("https://example.com:8443/a/b/did.json", "did:web:example.com%3A8443:a:b"),
])
def test_did_web_from_url(url: str, did: str) -> None:
    assert did_web_from_url(url) == did
    assert did_web_url(did).rsplit("/", 1)[0].split("://")[1] in url or did.endswith("example.com")


def test_built_document_publishes_jwk_and_multikey_with_services() -> None:
    did = "did:web:example.com"
    k1, k2 = generate_key("ES256"), generate_key()
    doc = build_did_document(did, [("key-1", k1), ("key-2", k2)], [
        {"type": "CredentialService", "serviceEndpoint": "https://example.com/cs"},
        {"id": "#dsp", "type": "DataService", "serviceEndpoint": "https://example.com/dsp"},
    ])
    ids = [vm["id"] for vm in doc["verificationMethod"]]
    assert ids == [f"{did}#key-1", f"{did}#key-1-multikey", f"{did}#key-2", f"{did}#key-2-multikey"]
    assert doc["verificationMethod"][0]["type"] == "JsonWebKey2020"
    assert doc["verificationMethod"][0]["publicKeyJwk"] == k1.public_jwk()
    assert doc["verificationMethod"][1]["type"] == "Multikey"
    assert doc["verificationMethod"][1]["publicKeyMultibase"] == k1.public_multibase()
    for rel in ("authentication", "assertionMethod", "capabilityInvocation"):
        assert doc[rel] == ids
    assert find_service(doc, "DataService")["id"] == f"{did}#dsp"
    assert find_service(doc, "CredentialService")["serviceEndpoint"] == "https://example.com/cs"
    assert find_service(doc, "Nope") is None
    with pytest.raises(InvalidDidDocument):
        build_did_document(did, [])
    with pytest.raises(InvalidDidDocument):
        build_did_document(did, [("k", k1)], [{"type": "X"}])
    with pytest.raises(InvalidDidDocument):
        build_did_document("not-a-did", [("k", k1)])


def test_service_helpers() -> None:
    from identity.dids import credential_service, data_service

    doc = build_did_document("did:web:example.com", [("key-1", generate_key())],
                             [credential_service("https://example.com/cs"), data_service("https://example.com/dsp")])
    assert find_service(doc, "CredentialService") == {
        "id": "did:web:example.com#credential-service", "type": "CredentialService",
        "serviceEndpoint": "https://example.com/cs"}
    assert find_service(doc, "DataService")["serviceEndpoint"] == "https://example.com/dsp"


def test_validate_rejects_non_documents() -> None:
    with pytest.raises(InvalidDidDocument):
        validate_did_document([])
    with pytest.raises(InvalidDidDocument):
        validate_did_document({"id": "nope"})
    with pytest.raises(DidIdMismatch):
        validate_did_document({"id": "did:web:a.example"}, "did:web:b.example")


def _run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_resolution_over_loopback_http_with_ttl_cache() -> None:
    site = StaticSite()
    key = generate_key()
    with serve(site) as port:
        did = f"did:web:127.0.0.1%3A{port}:issuer"
        site.put("/issuer/did.json", json.dumps(build_did_document(did, [("key-1", key)])))

        async def go() -> None:
            resolver = Resolver(ttl=300, allow_http_hosts={"127.0.0.1"})
            doc = await resolver.resolve(did)
            assert doc["id"] == did
            got = await resolver.verification_key(f"{did}#key-1", "assertionMethod")
            assert got.same_public_key(key)
            await asyncio.gather(*(resolver.resolve(did) for _ in range(5)))
            assert site.hits["/issuer/did.json"] == 1  # served from cache
            resolver.invalidate(did)
            await resolver.resolve(did)
            assert site.hits["/issuer/did.json"] == 2
            expired = Resolver(ttl=0, allow_http_hosts={"127.0.0.1"})
            await expired.resolve(did)
            await expired.resolve(did)
            assert site.hits["/issuer/did.json"] == 4

        _run(go())


def test_concurrent_first_resolutions_share_one_fetch() -> None:
    site = StaticSite()
    with serve(site) as port:
        did = f"did:web:localhost%3A{port}"
        site.put("/.well-known/did.json", json.dumps(build_did_document(did, [("key-1", generate_key())])))

        async def go() -> None:
            resolver = Resolver(allow_http_hosts={"localhost"})
            docs = await asyncio.gather(*(resolver.resolve(did) for _ in range(10)))
            assert all(d["id"] == did for d in docs)

        _run(go())
        assert site.hits["/.well-known/did.json"] == 1


def test_resolution_rejections() -> None:
    site = StaticSite()
    with serve(site) as port:
        host = f"127.0.0.1%3A{port}"
        other = f"did:web:{host}:someone-else"
        site.put("/swap/did.json", json.dumps(build_did_document(other, [("key-1", generate_key())])))
        site.put("/notjson/did.json", "<html>")
        site.put("/array/did.json", "[]")
        site.put("/huge/did.json", json.dumps({"id": f"did:web:{host}:huge", "pad": "x" * 300_000}))
        site.put("/gone/did.json", "nope", status=410)

        async def go() -> None:
            resolver = Resolver(allow_http_hosts={"127.0.0.1"})
            with pytest.raises(DidIdMismatch):
                await resolver.resolve(f"did:web:{host}:swap")
            with pytest.raises(InvalidDidDocument):
                await resolver.resolve(f"did:web:{host}:notjson")
            with pytest.raises(InvalidDidDocument):
                await resolver.resolve(f"did:web:{host}:array")
            with pytest.raises(DidResolutionError, match="exceeds"):
                await resolver.resolve(f"did:web:{host}:huge")
            with pytest.raises(DidResolutionError, match="410"):
                await resolver.resolve(f"did:web:{host}:gone")
            with pytest.raises(DidResolutionError, match="404"):
                await resolver.resolve(f"did:web:{host}:missing")
            # without configuration plain http is not used: https to a plain server fails cleanly
            strict = Resolver()
            with pytest.raises(DidResolutionError):
                await strict.resolve(f"did:web:{host}:swap")
            with pytest.raises(UnsupportedDidMethod):
                await resolver.resolve("did:ion:abc")
            with pytest.raises(InvalidDid):
                await resolver.resolve("not a did")

        _run(go())


def test_key_lookup_errors_and_relationships() -> None:
    did = "did:web:example.com"
    k1, k2 = generate_key(), generate_key()
    doc = build_did_document(did, [("key-1", k1)])
    doc["verificationMethod"].append({"id": f"{did}#auth-only", "type": "JsonWebKey2020", "controller": did,
                                      "publicKeyJwk": k2.public_jwk()})
    doc["authentication"].append("#auth-only")  # relative references are valid too

    async def go() -> None:
        resolver = Resolver(methods=[])
        resolver.add_document(doc)
        assert (await resolver.verification_key("#key-1", "assertionMethod", did)).same_public_key(k1)
        assert (await resolver.verification_key(f"{did}#auth-only", "authentication")).same_public_key(k2)
        with pytest.raises(KeyNotInRelationship):
            await resolver.verification_key(f"{did}#auth-only", "assertionMethod")
        with pytest.raises(VerificationMethodNotFound):
            await resolver.verification_key(f"{did}#nope", "assertionMethod")
        with pytest.raises(InvalidDid):
            await resolver.verification_key(did, "assertionMethod")
        with pytest.raises(UnsupportedDidMethod):
            await resolver.resolve("did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK")

    _run(go())


def test_injected_http_client_is_used() -> None:
    site = StaticSite()
    seen: list[str] = []

    async def record(request: httpx.Request) -> None:
        seen.append(str(request.url))

    with serve(site) as port:
        did = f"did:web:127.0.0.1%3A{port}"
        site.put("/.well-known/did.json", json.dumps(build_did_document(did, [("key-1", generate_key())])))

        async def go() -> None:
            async with httpx.AsyncClient(event_hooks={"request": [record]}) as client:
                resolver = Resolver(allow_http_hosts={"127.0.0.1"}, http_client=client)
                assert (await resolver.resolve(did))["id"] == did

        _run(go())
    assert seen == [f"http://127.0.0.1:{port}/.well-known/did.json"]


def test_key_rotation_is_picked_up_by_refetching_on_unknown_kid(tmp_path: Any) -> None:
    from identity.credentials.jwt import issue_vc_jwt
    from identity.credentials.verify import verify_credential
    from identity.keystore import Keystore

    store = Keystore.create(tmp_path / "ks.json", "pw", scrypt_params={"n": 2**10, "r": 8, "p": 1})
    first = store.rotate()
    site = StaticSite()
    with serve(site) as port:
        did = f"did:web:127.0.0.1%3A{port}"

        def publish() -> None:
            site.put("/.well-known/did.json", json.dumps(build_did_document(did, store.keys())))

        def credential() -> str:
            kid, key = store.current()
            cred = {"@context": ["https://www.w3.org/ns/credentials/v2"], "type": ["VerifiableCredential"],
                    "issuer": did, "credentialSubject": {"id": "did:web:h.example"}}
            return issue_vc_jwt(cred, key, f"{did}#{kid}")

        publish()
        old_token = credential()

        async def go() -> None:
            eager = Resolver(allow_http_hosts={"127.0.0.1"}, refetch_after=0)
            lazy = Resolver(allow_http_hosts={"127.0.0.1"}, refetch_after=3600)
            for r in (eager, lazy):
                assert (await verify_credential(old_token, resolver=r, trust=None)).ok
            second = store.rotate()
            assert second != first
            publish()
            new_token = credential()
            assert (await verify_credential(new_token, resolver=eager, trust=None)).ok
            # a resolver that fetched recently does not hammer the issuer: the new kid waits for the TTL
            assert (await verify_credential(new_token, resolver=lazy, trust=None)).error_code == "kid_unresolvable"
            # old key still published for verification until removed
            assert (await verify_credential(old_token, resolver=eager, trust=None)).ok
            store.remove(first)
            publish()
            eager.invalidate()
            assert (await verify_credential(old_token, resolver=eager, trust=None)).error_code == "kid_unresolvable"

        _run(go())


def test_cache_is_bounded() -> None:
    from identity.dids import did_key_from_key

    async def go() -> None:
        resolver = Resolver(max_entries=3)
        static = build_did_document("did:web:static.example", [("key-1", generate_key())])
        resolver.add_document(static)
        for _ in range(6):
            await resolver.resolve(did_key_from_key(generate_key()))
        assert len(resolver._cache) <= 3
        assert (await resolver.resolve("did:web:static.example"))["id"] == "did:web:static.example"

    _run(go())


def test_is_pinned_and_refresh() -> None:
    site = StaticSite()
    with serve(site) as port:
        did = f"did:web:127.0.0.1%3A{port}"
        site.put("/.well-known/did.json", json.dumps(build_did_document(did, [("key-1", generate_key())])))
        pinned = build_did_document("did:web:pinned.example", [("key-1", generate_key())])

        async def go() -> None:
            resolver = Resolver(allow_http_hosts={"127.0.0.1"}, methods=None)
            resolver.add_document(pinned)
            assert resolver.is_pinned("did:web:pinned.example")
            assert resolver.is_pinned("did:web:pinned.example#key-1")  # a DID URL names its DID
            assert not resolver.is_pinned("did:web:unknown.example")
            assert not resolver.is_pinned("not a did")
            first = await resolver.resolve(did)
            assert not resolver.is_pinned(did)  # fetched documents expire
            rotated = build_did_document(did, [("key-2", generate_key())])
            site.put("/.well-known/did.json", json.dumps(rotated))
            assert await resolver.resolve(did) == first  # still cached
            assert (await resolver.refresh(did))["verificationMethod"][0]["id"] == f"{did}#key-2"
            assert await resolver.resolve(did) == rotated
            # refreshing a pinned document keeps it: there is nothing to fetch it from
            assert await resolver.refresh("did:web:pinned.example") == pinned
            with pytest.raises(InvalidDid):
                await resolver.refresh("not a did")

        _run(go())
