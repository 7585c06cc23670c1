"""Self-Issued ID Tokens and access tokens: creation, every rejection reason, replay protection across restarts."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from identity.dcp.errors import TokenError
from identity.dcp.jti_store import JtiStore
from identity.dcp.jws import parse_jws, sign_jws
from identity.dcp.tokens import create_si_token, verify_access_token, verify_si_token
from identity.dids import Resolver
from identity.keys import generate_key
from identity.wallet import Wallet

FAST_SCRYPT = {"n": 2**10, "r": 8, "p": 1}
VERIFIER = "did:web:verifier.example.com"


@pytest.fixture
def wallet(tmp_path: Path) -> Wallet:
    return Wallet.init(tmp_path / "w", "did:web:holder.example.com", "pw", "EdDSA",
                       credential_service_url="https://holder.example.com/cs", scrypt_params=FAST_SCRYPT)


@pytest.fixture
def resolver(wallet: Wallet) -> Resolver:
    r = Resolver()
    r.add_document(wallet.did_document())
    return r


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)


def test_valid_token_verifies_and_carries_access_token(wallet: Wallet, resolver: Resolver, tmp_path: Path) -> None:
    access = wallet.issue_access_token(VERIFIER, ["org.eclipse.dspace.dcp.vc.type:MembershipCredential:read"])
    token = wallet.sign_si_token(VERIFIER, token=access)
    verified = run(verify_si_token(token, audience=VERIFIER, resolver=resolver, jti_store=JtiStore(tmp_path / "j.db")))
    assert verified.did == wallet.did
    assert verified.access_token == access
    assert verified.kid == wallet.kid
    header = parse_jws(token).header
    assert header["kid"] == f"{wallet.did}#key-1" and header["alg"] == "EdDSA"


def test_replay_rejected_even_after_restart(wallet: Wallet, resolver: Resolver, tmp_path: Path) -> None:
    token = wallet.sign_si_token(VERIFIER)
    run(verify_si_token(token, audience=VERIFIER, resolver=resolver, jti_store=JtiStore(tmp_path / "j.db")))
    reopened = JtiStore(tmp_path / "j.db")  # a new process would do exactly this
    with pytest.raises(TokenError) as err:
        run(verify_si_token(token, audience=VERIFIER, resolver=resolver, jti_store=reopened))
    assert err.value.code == "replayed"


def test_other_audience_rejected(wallet: Wallet, resolver: Resolver, tmp_path: Path) -> None:
    token = wallet.sign_si_token("did:web:someone-else.example.com")
    with pytest.raises(TokenError) as err:
        run(verify_si_token(token, audience=VERIFIER, resolver=resolver, jti_store=JtiStore(tmp_path / "j.db")))
    assert err.value.code == "audience_mismatch"


def test_expired_rejected_and_leeway_respected(wallet: Wallet, resolver: Resolver, tmp_path: Path) -> None:
    store = JtiStore(tmp_path / "j.db")
    past = time.time() - 400
    token = create_si_token(wallet.key, did=wallet.did, kid=wallet.kid, audience=VERIFIER, lifetime=300, now=past)
    with pytest.raises(TokenError) as err:
        run(verify_si_token(token, audience=VERIFIER, resolver=resolver, jti_store=store))
    assert err.value.code == "expired"
    # 100 s past expiry is accepted with a 120 s leeway
    run(verify_si_token(token, audience=VERIFIER, resolver=resolver, jti_store=store, leeway=120))


def test_future_token_rejected(wallet: Wallet, resolver: Resolver, tmp_path: Path) -> None:
    token = create_si_token(wallet.key, did=wallet.did, kid=wallet.kid, audience=VERIFIER, now=time.time() + 600)
    with pytest.raises(TokenError) as err:
        run(verify_si_token(token, audience=VERIFIER, resolver=resolver, jti_store=JtiStore(tmp_path / "j.db")))
    assert err.value.code == "not_yet_valid"


def test_forged_signature_rejected_and_does_not_burn_jti(wallet: Wallet, resolver: Resolver, tmp_path: Path) -> None:
    store = JtiStore(tmp_path / "j.db")
    intruder = generate_key("EdDSA")
    claims = parse_jws(wallet.sign_si_token(VERIFIER)).payload
    forged = sign_jws(claims, intruder, kid=wallet.kid)
    with pytest.raises(TokenError) as err:
        run(verify_si_token(forged, audience=VERIFIER, resolver=resolver, jti_store=store))
    assert err.value.code == "signature_invalid"
    assert not store.seen(f"{wallet.did}|{claims['jti']}")


def test_iss_sub_mismatch_and_unknown_kid(wallet: Wallet, resolver: Resolver, tmp_path: Path) -> None:
    store = JtiStore(tmp_path / "j.db")
    claims = parse_jws(wallet.sign_si_token(VERIFIER)).payload
    with pytest.raises(TokenError) as err:
        run(verify_si_token(sign_jws({**claims, "sub": "did:web:x"}, wallet.key, kid=wallet.kid),
                            audience=VERIFIER, resolver=resolver, jti_store=store))
    assert err.value.code == "issuer_mismatch"
    with pytest.raises(TokenError) as err:
        run(verify_si_token(sign_jws(claims, wallet.key, kid=wallet.did + "#nope"),
                            audience=VERIFIER, resolver=resolver, jti_store=store))
    assert err.value.code == "kid_unknown"


def test_unresolvable_did_and_garbage(resolver: Resolver, tmp_path: Path) -> None:
    store = JtiStore(tmp_path / "j.db")
    other = generate_key()
    token = create_si_token(other, did="did:web:127.0.0.1%3A1", kid="did:web:127.0.0.1%3A1#key-1", audience=VERIFIER)
    with pytest.raises(TokenError) as err:
        run(verify_si_token(token, audience=VERIFIER, resolver=resolver, jti_store=store))
    assert err.value.code == "did_unresolvable"
    with pytest.raises(TokenError) as err:
        run(verify_si_token("not-a-jwt", audience=VERIFIER, resolver=resolver, jti_store=store))
    assert err.value.code == "malformed"


def test_rotated_key_still_verifies_old_tokens(wallet: Wallet, tmp_path: Path) -> None:
    old = wallet.sign_si_token(VERIFIER)
    new_kid = wallet.rotate_key()
    assert new_kid.endswith("#key-2")
    new = wallet.sign_si_token(VERIFIER)
    r = Resolver()
    r.add_document(wallet.did_document())
    store = JtiStore(tmp_path / "j.db")
    for token in (old, new):
        run(verify_si_token(token, audience=VERIFIER, resolver=r, jti_store=store))


def test_access_token_checks(wallet: Wallet) -> None:
    doc = wallet.did_document()
    token = wallet.issue_access_token(VERIFIER, ["org.eclipse.tractusx.vc.type:BpnCredential:read"])
    grant = verify_access_token(token, holder_document=doc, grantee=VERIFIER)
    assert [(s.kind, s.value, s.operation) for s in grant.scopes] == [("type", "BpnCredential", "read")]
    with pytest.raises(TokenError) as err:
        verify_access_token(token, holder_document=doc, grantee="did:web:thief.example.com")
    assert err.value.code == "audience_mismatch"
    foreign = Wallet.init(wallet.folder.parent / "other", "did:web:other.example.com", "pw",
                          scrypt_params=FAST_SCRYPT).issue_access_token(VERIFIER, [])
    with pytest.raises(TokenError) as err:
        verify_access_token(foreign, holder_document=doc, grantee=VERIFIER)
    assert err.value.code == "access_token_foreign"


def test_unknown_kid_re_resolves_once_after_rotation(tmp_path: Path) -> None:
    from identity.dcp.credential_service import create_credential_service_app
    from tests.identity.test_dcp_support import free_port, make_wallet, serve

    port = free_port()
    holder = make_wallet(tmp_path / "rotating", port)
    resolver = Resolver(allow_http_hosts=["127.0.0.1"])
    store = JtiStore(tmp_path / "j.db")
    app = create_credential_service_app(holder, resolver=resolver, jti_store=JtiStore(tmp_path / "cs.db"))
    with serve(app, port):
        run(verify_si_token(holder.sign_si_token(VERIFIER), audience=VERIFIER, resolver=resolver, jti_store=store))
        holder.rotate_key()  # the resolver still caches the one-key document
        verified = run(verify_si_token(holder.sign_si_token(VERIFIER), audience=VERIFIER, resolver=resolver,
                                       jti_store=store))
        assert verified.kid == holder.kid and verified.kid.endswith("#key-2")
        bogus = sign_jws(parse_jws(holder.sign_si_token(VERIFIER)).payload, holder.key, kid=holder.did + "#key-9")
        with pytest.raises(TokenError) as err:
            run(verify_si_token(bogus, audience=VERIFIER, resolver=resolver, jti_store=store))
        assert err.value.code == "kid_unknown"


def test_jws_framing_rejections_carry_token_codes(wallet: Wallet) -> None:
    from identity.credentials.jws import sign_compact
    from identity.multibase import b64url_encode

    claims = parse_jws(wallet.sign_si_token(VERIFIER)).payload
    deep: object = 1
    for _ in range(40):
        deep = [deep]
    cases = {
        "crit header": sign_compact({"kid": wallet.kid, "crit": ["exp"]}, claims, wallet.key),
        "b64=false": sign_compact({"kid": wallet.kid, "b64": False}, claims, wallet.key),
        "deep payload": sign_compact({"kid": wallet.kid}, {**claims, "x": deep}, wallet.key),
        "header not an object": f"{b64url_encode(b'[1]')}.{b64url_encode(b'{}')}.AA",
        "not base64url": "a+b.c.d",
    }
    for name, token in cases.items():
        with pytest.raises(TokenError) as err:
            parse_jws(token)
        assert err.value.code == "malformed", name
    with pytest.raises(TokenError) as err:
        parse_jws("a." + "b" * 70_000 + ".c")
    assert err.value.code == "too_large"


def test_jti_store_purges_lazily_but_never_lets_a_live_jti_through(tmp_path: Path) -> None:
    store = JtiStore(tmp_path / "lazy.db")
    now = time.time()
    assert store.claim("did:web:a|1", now + 1, now=now)
    assert not store.claim("did:web:a|1", now + 60, now=now + 0.5)  # still valid: a replay
    # expired, and the purge interval has not passed: the old entry is still stored, yet the jti is free again
    assert store.seen("did:web:a|1")
    assert store.claim("did:web:a|1", now + 120, now=now + 2)
    assert not store.claim("did:web:a|1", now + 120, now=now + 3)
    reopened = JtiStore(tmp_path / "lazy.db")  # what a restarted process sees
    assert not reopened.claim("did:web:a|1", now + 120, now=now + 4)
