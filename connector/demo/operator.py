"""What a company's operator does with its wallet beside the running connector, as ``pactum identity`` does.

WHY in-process instead of spawning ``pactum identity request`` four times: it is the same library call the
CLI makes (DCP issuance: the operator signs the request with the connector's wallet key, the authority
delivers the credentials to the connector's credential service), without paying a Python start-up per
company. It only touches the wallet folder, never the connector's internals.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Mapping
from dataclasses import dataclass

import httpx

from connector.demo.errors import DemoError
from connector.demo.space import Company
from identity.dcp.issuance import request_credentials, wait_for_issuance
from identity.errors import IdentityError
from identity.wallet import Wallet


@dataclass(frozen=True)
class IssuanceOutcome:
    company: str
    status: str
    detail: str


async def _request_one(company: Company, issuer_url: str, ids: list[str], client: httpx.AsyncClient,
                       timeout: float) -> IssuanceOutcome:
    try:
        wallet = await asyncio.to_thread(Wallet.open, company.wallet_dir, company.wallet_passphrase)
    except IdentityError as exc:
        return IssuanceOutcome(company.key, "failed", f"cannot open the wallet: {exc}")
    try:
        pending = await request_credentials(wallet, issuer_url, ids, http_client=client)
        status = await wait_for_issuance(wallet, pending, http_client=client, timeout=timeout)
        return IssuanceOutcome(company.key, status, f"request {pending.location}")
    except IdentityError as exc:
        return IssuanceOutcome(company.key, "failed", str(exc))
    finally:
        wallet.close()


def request_all(companies: Mapping[str, Company], wanted: Mapping[str, list[str]], issuer_url: str, *,
                timeout: float = 20.0, verify: ssl.SSLContext | bool = True) -> dict[str, IssuanceOutcome]:
    """Every operator requests its credentials at the same time; returns each request's final status."""
    async def run() -> list[IssuanceOutcome]:
        async with httpx.AsyncClient(timeout=15, verify=verify) as client:
            return list(await asyncio.gather(*(
                _request_one(c, issuer_url, wanted[key], client, timeout) for key, c in companies.items())))

    return {o.company: o for o in asyncio.run(run())}


def held_credentials(company: Company) -> list[tuple[str, tuple[str, ...], str | dict[str, object]]]:
    """(id, types, payload) of every credential in the company's wallet."""
    try:
        wallet = Wallet.open(company.wallet_dir, company.wallet_passphrase)
    except IdentityError as exc:
        raise DemoError(f"cannot open {company.key}'s wallet: {exc}") from exc
    try:
        return [(c.id, c.types, c.payload) for c in wallet.credentials()]
    finally:
        wallet.close()


def store_credential(company: Company, credential: str) -> str:
    """Put a credential into the company's wallet as ``pactum identity credentials add`` does; returns its id."""
    try:
        wallet = Wallet.open(company.wallet_dir, company.wallet_passphrase)
    except IdentityError as exc:
        raise DemoError(f"cannot open {company.key}'s wallet: {exc}") from exc
    try:
        return wallet.store_credential(credential).id
    except IdentityError as exc:
        raise DemoError(f"the wallet refused the credential: {exc}") from exc
    finally:
        wallet.close()
