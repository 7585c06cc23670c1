"""Identity benchmark: vc+jwt verification with a warm resolver cache vs. bare Ed25519, and eddsa-rdfc-2022.

Run: ``.venv/bin/python bench/identity.py [--seconds 2]``. All three figures come from the same process and
run, so the overhead ratio compares like with like. Prints one ``RESULT`` line per headline figure.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from identity.credentials.data_integrity import sign_data_integrity  # noqa: E402
from identity.credentials.jwt import issue_vc_jwt  # noqa: E402
from identity.credentials.trust import TrustList  # noqa: E402
from identity.credentials.verify import verify_credential  # noqa: E402
from identity.dids import Resolver, build_did_document  # noqa: E402
from identity.keys import generate_key  # noqa: E402

ISSUER = "did:web:issuer.example"
NOW = datetime(2025, 6, 1, tzinfo=UTC)


def _rate_sync(fn: Callable[[], object], seconds: float) -> float:
    fn()
    count, start = 0, time.perf_counter()
    deadline = start + seconds
    while True:
        for _ in range(50):
            fn()
        count += 50
        now = time.perf_counter()
        if now >= deadline:
            return count / (now - start)


async def _rate_async(fn: Callable[[], Awaitable[object]], seconds: float, batch: int = 50) -> float:
    await fn()
    count, start = 0, time.perf_counter()
    deadline = start + seconds
    while True:
        for _ in range(batch):
            await fn()
        count += batch
        now = time.perf_counter()
        if now >= deadline:
            return count / (now - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=0.5, help="time per measurement round")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds; the best round counts")
    args = parser.parse_args()

    key = generate_key("EdDSA")
    resolver = Resolver(methods=[])
    resolver.add_document(build_did_document(ISSUER, [("key-1", key)]))
    trust = TrustList({"MembershipCredential": {ISSUER}})
    credential = {
        "@context": ["https://www.w3.org/ns/credentials/v2", "https://w3id.org/catenax/credentials/v1.0.0"],
        "id": "urn:uuid:5b5b7a5e-0f0e-4d0e-9f3c-1d2c3b4a5f60",
        "type": ["VerifiableCredential", "MembershipCredential"],
        "issuer": ISSUER,
        "validFrom": "2025-01-01T00:00:00Z",
        "validUntil": "2026-01-01T00:00:00Z",
        "credentialSubject": {"id": "did:web:holder.example", "holderIdentifier": "BPNL000000000001"},
    }
    token = issue_vc_jwt(credential, key, f"{ISSUER}#key-1")
    signing_input, _, sig_b64 = token.rpartition(".")
    from identity.multibase import b64url_decode

    signature = b64url_decode(sig_b64)
    from cryptography.hazmat.primitives.asymmetric import ed25519

    raw_public = key.public_key  # cryptography Ed25519PublicKey: the floor any verifier pays
    assert isinstance(raw_public, ed25519.Ed25519PublicKey)

    def bare() -> None:
        raw_public.verify(signature, signing_input.encode())

    async def vcjwt() -> None:
        result = await verify_credential(token, resolver=resolver, trust=trust, now=NOW)
        if not result.ok:
            raise SystemExit(f"benchmark credential failed verification: {result.error_code}")

    di_credential = {
        "@context": ["https://www.w3.org/ns/credentials/v2", "https://www.w3.org/ns/credentials/examples/v2"],
        "id": "urn:uuid:58172aac-d8ba-11ed-83dd-0b3aef56cc33",
        "type": ["VerifiableCredential", "AlumniCredential"],
        "issuer": ISSUER,
        "validFrom": "2023-01-01T00:00:00Z",
        "credentialSubject": {"id": "did:example:abcdefgh", "alumniOf": "The School of Examples"},
    }
    signed = sign_data_integrity(di_credential, key, f"{ISSUER}#key-1-multikey", cryptosuite="eddsa-rdfc-2022")

    async def rdfc() -> None:
        result = await verify_credential(signed, resolver=resolver, trust=None, now=NOW)
        if not result.ok:
            raise SystemExit(f"benchmark DI credential failed verification: {result.error_code}")

    async def run_async() -> tuple[float, float, float]:
        # interleave the three measurements and keep each one's best round: on a shared, noisy machine
        # this compares the figures under the same conditions instead of whatever load each happened to get
        bare_best = jwt_best = rdfc_best = 0.0
        for _ in range(args.rounds):
            bare_best = max(bare_best, _rate_sync(bare, args.seconds))
            jwt_best = max(jwt_best, await _rate_async(vcjwt, args.seconds))
            rdfc_best = max(rdfc_best, await _rate_async(rdfc, args.seconds, batch=5))
        return bare_best, jwt_best, rdfc_best

    bare_rate, jwt_rate, rdfc_rate = asyncio.run(run_async())
    print(f"bare Ed25519 verify (cryptography)     {bare_rate:12,.0f} /s")
    print(f"vc+jwt verify_credential (warm cache)  {jwt_rate:12,.0f} /s")
    print(f"eddsa-rdfc-2022 verify_credential      {rdfc_rate:12,.0f} /s")
    print(f"RESULT identity_vcjwt_verify_per_s={jwt_rate:.0f} 1/s")
    print(f"RESULT identity_vcjwt_overhead_vs_ed25519={bare_rate / jwt_rate:.2f} x")
    print(f"RESULT identity_eddsa_rdfc_verify_per_s={rdfc_rate:.0f} 1/s")


if __name__ == "__main__":
    main()
