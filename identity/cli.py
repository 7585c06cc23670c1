"""``pactum identity`` (wallet, DIDs, credentials) and ``pactum authority`` (the data space authority).

Both are plain Typer apps: ``connector/cli.py`` mounts them, and :func:`main` runs them alone. User errors
raise :class:`identity.errors.IdentityError` and become one ``error: ...`` line with exit code 1; ``--json``
prints nothing but JSON on stdout.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from identity.errors import IdentityError

app = typer.Typer(
    help="Keys, DIDs, wallet and verifiable credentials.\n\n"
    "Examples:\n\n"
    "  pactum identity init --dir wallet --web https://supplier.example.com\n\n"
    "  pactum identity verify credential.jwt --did-doc issuer-did.json --trust did:web:authority.example.com\n\n"
    "  pactum identity credentials list --dir wallet --json",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
credentials_app = typer.Typer(help="Credentials held in the wallet.\n\nExample: pactum identity credentials list",
                              no_args_is_help=True)
app.add_typer(credentials_app, name="credentials")
authority_app = typer.Typer(
    help="Run the data space authority (issuer, status list, directory, trust list).\n\n"
    "Examples:\n\n"
    "  pactum authority serve --config authority.toml\n\n"
    "  pactum authority issue --config authority.toml --holder did:web:supplier.example.com --credential membership\n\n"
    "  pactum authority revoke --config authority.toml --credential-id urn:uuid:...",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

_out = Console(highlight=False, soft_wrap=True, emoji=False)


class CliError(IdentityError):
    """A command-line usage problem (missing passphrase, unreadable file, ...)."""

    code = "cli_error"


class VerificationFailed(IdentityError):
    """``verify`` found the input invalid (the checks were printed; this makes the exit code 1)."""

    code = "verification_failed"


WalletDir = Annotated[Path, typer.Option("--dir", "-d", envvar="PACTUM_WALLET",
                                         help="Wallet folder (env PACTUM_WALLET).")]
Passphrase = Annotated[str | None, typer.Option("--passphrase", envvar="PACTUM_WALLET_PASSPHRASE",
                                                help="Keystore passphrase (env PACTUM_WALLET_PASSPHRASE).")]
JsonFlag = Annotated[bool, typer.Option("--json", help="Print only JSON.")]
ConfigFile = Annotated[Path, typer.Option("--config", "-c", help="The authority's TOML configuration.")]
CaFile = Annotated[Path | None, typer.Option("--ca-file", envvar="PACTUM_TLS__CA_FILE",
                                             help="A data-space CA to trust besides the public ones "
                                             "(env PACTUM_TLS__CA_FILE).")]


def _passphrase(value: str | None) -> str:
    if value:
        return value
    if sys.stdin.isatty():
        return str(typer.prompt("Keystore passphrase", hide_input=True))
    raise CliError("no passphrase: pass --passphrase or set PACTUM_WALLET_PASSPHRASE")


def _print_json(value: Any) -> None:
    typer.echo(json.dumps(value, indent=2, ensure_ascii=False))


def _read_text(path: Path) -> str:
    try:
        return path.read_text("utf-8")
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror or exc}") from None


def _read_json(path: Path) -> Any:
    try:
        return json.loads(_read_text(path))
    except ValueError as exc:
        raise CliError(f"{path} is not JSON: {exc}") from None


def _open_wallet(folder: Path, passphrase: str | None) -> Any:
    from identity.wallet import Wallet

    return Wallet.open(folder, _passphrase(passphrase))


def _parse_time(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise CliError(f"--at {value!r} is not an ISO 8601 date-time such as 2025-01-31T12:00:00Z") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


# ---- pactum identity ------------------------------------------------------------------------------------------
@app.command()
def init(
    folder: WalletDir = Path("wallet"),
    did: Annotated[str | None, typer.Option("--did", help="A did:web you control (default: a did:key).")] = None,
    web: Annotated[str | None, typer.Option("--web", help="Derive a did:web from this base URL.")] = None,
    alg: Annotated[str, typer.Option("--alg", help="EdDSA (default), ES256 or ES256K.")] = "EdDSA",
    credential_service: Annotated[str | None, typer.Option("--credential-service",
                                                           help="CredentialService endpoint URL.")] = None,
    data_service: Annotated[str | None, typer.Option("--data-service", help="DataService (DSP) endpoint URL.")] = None,
    passphrase: Passphrase = None,
    as_json: JsonFlag = False,
) -> None:
    """Create a wallet: a key in an encrypted keystore, a DID and its document.

    Example: pactum identity init --dir wallet --web https://supplier.example.com \\
    --credential-service https://supplier.example.com/api/credentials
    """
    from identity.dids import did_web_from_url
    from identity.wallet import Wallet

    if did and web:
        raise CliError("give either --did or --web, not both")
    if web:
        did = did_web_from_url(web)
    wallet = Wallet.init(folder, did, _passphrase(passphrase), alg, credential_service_url=credential_service,
                         data_service_url=data_service)
    if as_json:
        _print_json({"did": wallet.did, "kid": wallet.kid, "folder": str(folder)})
        return
    _out.print(f"[green]created[/green] wallet {folder} for {wallet.did} (key {wallet.kid})")


@app.command("did")
def did_command(folder: WalletDir = Path("wallet"), passphrase: Passphrase = None) -> None:
    """Print the wallet's DID document (publish it at the did:web URL).

    Example: pactum identity did --dir wallet > .well-known/did.json
    """
    _print_json(_open_wallet(folder, passphrase).did_document())


@app.command()
def resolve(
    did: Annotated[str, typer.Argument(help="The DID to resolve (did:web or did:key).")],
    allow_http: Annotated[bool, typer.Option("--allow-http", help="Allow http for loopback did:web hosts.")] = False,
) -> None:
    """Resolve a DID and print its document.

    Example: pactum identity resolve did:key:z6MkrJVnaZkeFzdQyMZu1cgjg7k1pZZ6pvBQ7XJPt4swbTQ2
    """
    from identity.dids import Resolver

    resolver = Resolver(allow_http_hosts=["127.0.0.1", "localhost", "::1"] if allow_http else None)
    _print_json(asyncio.run(resolver.resolve(did)))


@app.command()
def issue(
    subject: Annotated[str, typer.Option("--subject", help="DID of the credential subject.")],
    credential_type: Annotated[str, typer.Option("--type", help="Credential type, e.g. MembershipCredential.")],
    folder: WalletDir = Path("wallet"),
    claims: Annotated[str | None, typer.Option("--claims", help="Subject claims as JSON, or @file.json.")] = None,
    profile: Annotated[str, typer.Option("--profile", help="vc20 (default) or vc11.")] = "vc20",
    fmt: Annotated[str, typer.Option("--format", help="jwt (default) or json-ld (Data Integrity proof).")] = "jwt",
    valid_days: Annotated[int, typer.Option("--valid-days", min=1, help="Validity period in days.")] = 365,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Write to this file instead of stdout.")] = None,
    passphrase: Passphrase = None,
) -> None:
    """Issue a credential signed by the wallet's key (the wallet's DID is the issuer).

    Example: pactum identity issue --subject did:web:b.example.com --type MembershipCredential \\
    --claims '{"memberOf": "Example Space"}' -o membership.jwt
    """
    from identity.credentials.data_integrity import sign_data_integrity
    from identity.credentials.jwt import issue_vc_jwt
    from identity.credentials.model import VC_V1_CONTEXT, VC_V2_CONTEXT, format_datetime

    if profile not in ("vc20", "vc11"):
        raise CliError("--profile must be vc20 or vc11")
    if fmt not in ("jwt", "json-ld"):
        raise CliError("--format must be jwt or json-ld")
    subject_claims: Any = {}
    if claims:
        subject_claims = _read_json(Path(claims[1:])) if claims.startswith("@") else _loads(claims, "--claims")
        if not isinstance(subject_claims, dict):
            raise CliError("--claims must be a JSON object")
    wallet = _open_wallet(folder, passphrase)
    now = datetime.now(UTC).replace(microsecond=0)
    credential: dict[str, Any] = {
        "@context": [VC_V2_CONTEXT if profile == "vc20" else VC_V1_CONTEXT],
        "id": f"urn:uuid:{uuid.uuid4()}",
        "type": ["VerifiableCredential", credential_type],
        "issuer": wallet.did,
        "credentialSubject": {**subject_claims, "id": subject},
    }
    start, end = format_datetime(now), format_datetime(now + timedelta(days=valid_days))
    if profile == "vc20":
        credential.update(validFrom=start, validUntil=end)
    else:
        credential.update(issuanceDate=start, expirationDate=end)
    if fmt == "jwt":
        text = issue_vc_jwt(credential, wallet.key, wallet.kid, profile)
    else:
        from identity.dids.document import MULTIKEY_SUFFIX

        vm = wallet.kid if wallet.did.startswith("did:key:") else wallet.kid + MULTIKEY_SUFFIX
        suite = "eddsa-rdfc-2022" if wallet.key.alg == "EdDSA" else "ecdsa-rdfc-2019"
        text = json.dumps(sign_data_integrity(credential, wallet.key, vm, cryptosuite=suite), indent=2)
    _emit(text, out)


def _loads(text: str, what: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise CliError(f"{what} is not JSON: {exc}") from None


def _emit(text: str, out: Path | None) -> None:
    if out is None:
        typer.echo(text)
        return
    out.write_text(text + "\n", "utf-8")
    Console(stderr=True).print(f"wrote {out}")


def _load_verification_input(path: Path) -> tuple[str | dict[str, Any], bool]:
    """The credential or presentation in ``path`` and whether it is a presentation."""
    from identity.credentials.jws import decode_unverified

    text = _read_text(path).strip()
    if text.startswith("{"):
        document = _loads(text, str(path))
        types = document.get("type") if isinstance(document, dict) else None
        types = [types] if isinstance(types, str) else types or []
        return document, "VerifiablePresentation" in types
    header, payload = decode_unverified(text)
    is_vp = str(header.get("typ", "")).lower() in ("vp+jwt", "vp+ld+jwt") or "vp" in payload or (
        "VerifiablePresentation" in (payload.get("type") or []))
    return text, is_vp


def _offline_documents(paths: list[Path], subject: str | dict[str, Any]) -> list[dict[str, Any]]:
    """DID documents from ``--did-doc`` files; a bare JWK becomes a one-key document of the signer's DID."""
    from identity.credentials.jws import decode_unverified
    from identity.dids.document import build_did_document
    from identity.keys import KeyPair

    signer_kid: str | None = None
    if isinstance(subject, str):
        kid = decode_unverified(subject).header.get("kid")
        signer_kid = kid if isinstance(kid, str) else None
    elif isinstance(subject.get("proof"), dict):
        signer_kid = subject["proof"].get("verificationMethod")
    documents = []
    for path in paths:
        value = _read_json(path)
        if isinstance(value, dict) and "kty" in value:
            kid = value.get("kid") if isinstance(value.get("kid"), str) and "#" in value["kid"] else signer_kid
            if not kid or "#" not in kid:
                raise CliError(f"{path}: a JWK needs a DID URL kid (in the JWK or the signed input) to be used")
            did, fragment = kid.split("#", 1)
            key = KeyPair.from_jwk({k: v for k, v in value.items() if k != "d"})
            documents.append(build_did_document(did, [(fragment, key)], publish=("JsonWebKey2020",)))
        elif isinstance(value, dict) and "id" in value:
            documents.append(value)
        else:
            raise CliError(f"{path} is neither a DID document nor a JWK")
    return documents


@app.command()
def verify(
    file: Annotated[Path, typer.Argument(help="A credential or presentation: JWT, or JSON-LD with a proof.")],
    did_doc: Annotated[list[Path] | None, typer.Option("--did-doc", help="DID document or JWK file for offline "
                                                       "verification (repeatable).")] = None,
    at: Annotated[str | None, typer.Option("--at", help="Verify as of this instant (ISO 8601).")] = None,
    trust: Annotated[list[str] | None, typer.Option("--trust", help="Trust this issuer DID for any type "
                                                    "(repeatable).")] = None,
    trust_list: Annotated[Path | None, typer.Option("--trust-list", help="JSON trust list: type -> [DIDs].")] = None,
    audience: Annotated[str | None, typer.Option("--audience", help="Expected presentation audience.")] = None,
    no_status: Annotated[bool, typer.Option("--no-status", help="Skip status list (revocation) checks.")] = False,
    allow_http: Annotated[bool, typer.Option("--allow-http", help="Allow http for loopback hosts.")] = False,
    as_json: JsonFlag = False,
    ca_file: CaFile = None,
) -> None:
    """Verify a credential or presentation and print every check and the verdict (exit 1 when invalid).

    Example: pactum identity verify tests/data/vectors/generated-here/out-vc2-jose.jwt
    """
    import httpx

    from identity.credentials.status_list import HttpStatusFetcher
    from identity.credentials.trust import TrustList
    from identity.credentials.verify import verify_credential, verify_presentation
    from identity.dids import Resolver
    from identity.tls import client_verify

    subject, is_presentation = _load_verification_input(file)
    hosts = ["127.0.0.1", "localhost", "::1"] if allow_http else None
    tls_verify = client_verify(ca_file)  # did:web documents and status lists served inside a private data space
    resolver = Resolver(allow_http_hosts=hosts, verify=tls_verify)
    for document in _offline_documents(list(did_doc or []), subject):
        resolver.add_document(document)
    trusted: TrustList | None = TrustList.from_file(trust_list) if trust_list else None
    if trust:
        trusted = trusted or TrustList()
        for did in trust:
            trusted.add("*", did)
    moment = _parse_time(at)

    async def run() -> Any:
        async with httpx.AsyncClient(timeout=15, verify=tls_verify) as client:
            fetcher = None if no_status else HttpStatusFetcher(client, allow_http_hosts=hosts)
            if is_presentation:
                return await verify_presentation(subject, resolver=resolver, trust=trusted, audience=audience,
                                                 expected_holder=None, now=moment, status_fetcher=fetcher)
            return await verify_credential(subject, resolver=resolver, trust=trusted, now=moment,
                                           status_fetcher=fetcher, check_status=not no_status)

    result = asyncio.run(run())
    report = _report(result, is_presentation)
    if as_json:
        _print_json(report)
    else:
        _print_report(report)
    if not result.ok:
        raise VerificationFailed(f"{file} is INVALID ({result.error_code})")


def _checks(checks: list[Any]) -> list[dict[str, Any]]:
    return [{"name": c.name, "ok": c.ok, "code": c.code, "detail": c.detail} for c in checks]


def _report(result: Any, is_presentation: bool) -> dict[str, Any]:
    if is_presentation:
        return {
            "kind": "presentation", "valid": result.ok, "error": result.error_code, "holder": result.holder,
            "format": result.format, "checks": _checks(result.checks),
            "credentials": [_report(c, False) for c in result.credentials],
        }
    return {
        "kind": "credential", "valid": result.ok, "error": result.error_code, "format": result.format,
        "issuer": result.issuer, "types": result.types, "subject": result.subject_id,
        "checks": _checks(result.checks), "credential": result.credential,
    }


def _print_report(report: dict[str, Any], indent: str = "") -> None:
    title = report["kind"]
    if report["kind"] == "credential":
        types = ", ".join(t for t in report["types"] if t != "VerifiableCredential")
        title += f" {types} from {report['issuer']}"
    else:
        title += f" by {report['holder']}"
    _out.print(f"{indent}[bold]{escape(title)}[/bold] ({report['format']})")
    for check in report["checks"]:
        mark = "[green]ok  [/green]" if check["ok"] else "[red]FAIL[/red]"
        detail = f" [{check['code']}] {check['detail']}" if not check["ok"] else (
            f" {check['detail']}" if check["detail"] else "")
        _out.print(f"{indent}  {mark} {escape(check['name'] + detail)}")
    for inner in report.get("credentials", []):
        _print_report(inner, indent + "    ")
    verdict = "[green]VALID[/green]" if report["valid"] else f"[red]INVALID[/red] ({report['error']})"
    _out.print(f"{indent}verdict: {verdict}")


@app.command()
def present(
    audience: Annotated[str, typer.Option("--audience", help="DID of the verifier (the VP's aud).")],
    folder: WalletDir = Path("wallet"),
    credential_type: Annotated[list[str] | None, typer.Option("--type", help="Only credentials of this type "
                                                              "(repeatable).")] = None,
    profile: Annotated[str, typer.Option("--profile", help="vc20 (default) or vc11.")] = "vc20",
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Write to this file instead of stdout.")] = None,
    passphrase: Passphrase = None,
) -> None:
    """Sign a presentation (VP JWT) of held credentials for a verifier.

    Example: pactum identity present --audience did:web:verifier.example.com --type MembershipCredential
    """
    from identity.credentials.jwt import issue_vp_jwt

    wallet = _open_wallet(folder, passphrase)
    held = [c for c in wallet.credentials(credential_type) if c.format == "jwt" and c.profile == profile]
    if not held:
        raise CliError(f"the wallet holds no {profile} JWT credentials of the requested type(s)")
    _emit(issue_vp_jwt(wallet.did, [str(c.payload) for c in held], wallet.key, wallet.kid, audience,
                       profile=profile), out)


@credentials_app.command("list")
def credentials_list(
    folder: WalletDir = Path("wallet"),
    credential_type: Annotated[list[str] | None, typer.Option("--type", help="Only this type (repeatable).")] = None,
    passphrase: Passphrase = None,
    as_json: JsonFlag = False,
) -> None:
    """List held credentials.

    Example: pactum identity credentials list --dir wallet --type MembershipCredential
    """
    held = _open_wallet(folder, passphrase).credentials(credential_type)
    rows = [{"id": c.id, "types": list(c.types), "issuer": c.issuer, "format": c.format, "profile": c.profile,
             "validUntil": c.valid_until, "expired": c.is_expired()} for c in held]
    if as_json:
        _print_json(rows)
        return
    if not rows:
        _out.print("no credentials")
    for row in rows:
        types = ", ".join(t for t in row["types"] if t != "VerifiableCredential")
        state = " [red](expired)[/red]" if row["expired"] else ""
        _out.print(f"{row['id']}  {types}  from {row['issuer']}  until {row['validUntil']}{state}")


@credentials_app.command("add")
def credentials_add(
    file: Annotated[Path, typer.Argument(help="A credential: JWT file or JSON-LD file.")],
    folder: WalletDir = Path("wallet"),
    passphrase: Passphrase = None,
) -> None:
    """Store a credential received out of band.

    Example: pactum identity credentials add membership.jwt --dir wallet
    """
    text = _read_text(file).strip()
    credential: str | dict[str, Any] = _loads(text, str(file)) if text.startswith("{") else text
    held = _open_wallet(folder, passphrase).store_credential(credential)
    _out.print(f"[green]stored[/green] {held.id} ({', '.join(held.types)})")


@app.command("rotate-key")
def rotate_key(
    folder: WalletDir = Path("wallet"),
    alg: Annotated[str | None, typer.Option("--alg", help="Algorithm of the new key (default: same).")] = None,
    passphrase: Passphrase = None,
    as_json: JsonFlag = False,
) -> None:
    """Make a new signing key current; old keys stay in the DID document so issued tokens still verify.

    Example: pactum identity rotate-key --dir wallet && pactum identity did --dir wallet
    """
    kid = _open_wallet(folder, passphrase).rotate_key(alg)
    if as_json:
        _print_json({"kid": kid})
        return
    _out.print(f"[green]rotated[/green]: new signing key {kid} (republish the DID document)")


@app.command()
def serve(
    folder: WalletDir = Path("wallet"),
    host: Annotated[str, typer.Option("--host", help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to bind.")] = 8184,
    profile: Annotated[str, typer.Option("--profile", help="Present vc20 (default), vc11 or any.")] = "vc20",
    allow_http: Annotated[bool, typer.Option("--allow-http", help="Resolve loopback did:web over http.")] = False,
    passphrase: Passphrase = None,
) -> None:
    """Run the wallet's DCP credential service alone (it also serves the did:web document).

    Example: pactum identity serve --dir wallet --port 8184
    """
    import uvicorn

    from identity.dcp.credential_service import CredentialServiceSettings, create_credential_service_app
    from identity.dcp.jti_store import JtiStore
    from identity.dids import Resolver

    if profile not in ("vc20", "vc11", "any"):
        raise CliError("--profile must be vc20, vc11 or any")
    wallet = _open_wallet(folder, passphrase)
    resolver = Resolver(allow_http_hosts=["127.0.0.1", "localhost", "::1"] if allow_http else None)
    application = create_credential_service_app(
        wallet, resolver=resolver, jti_store=JtiStore(Path(folder) / "jti.db"),
        settings=CredentialServiceSettings(profile=profile))  # type: ignore[arg-type]
    uvicorn.run(application, host=host, port=port, log_level=os.environ.get("PACTUM_LOG_LEVEL", "info").lower())


@app.command()
def request(
    issuer: Annotated[str, typer.Option("--issuer", help="Base URL of the issuer service (the authority).")],
    credential: Annotated[list[str], typer.Option("--credential", help="Credential id from the issuer's "
                                                 "metadata (repeatable).")],
    folder: WalletDir = Path("wallet"),
    wait: Annotated[float, typer.Option("--wait", help="Seconds to wait for the outcome (0 = do not wait).")] = 30,
    passphrase: Passphrase = None,
    as_json: JsonFlag = False,
    ca_file: CaFile = None,
) -> None:
    """Request credentials over DCP; the issuer delivers them to the wallet's credential service.

    Example: pactum identity request --issuer https://authority.example.com --credential membership
    """
    import httpx

    from identity.dcp.issuance import request_credentials, wait_for_issuance
    from identity.tls import client_verify

    verify = client_verify(ca_file)
    wallet = _open_wallet(folder, passphrase)

    async def run() -> tuple[str, str]:
        async with httpx.AsyncClient(timeout=15, verify=verify) as client:
            pending = await request_credentials(wallet, issuer, credential, http_client=client)
            status = "RECEIVED"
            if wait > 0:
                status = await wait_for_issuance(wallet, pending, http_client=client, timeout=wait)
            return pending.location, status

    location, status = asyncio.run(run())
    if as_json:
        _print_json({"location": location, "status": status})
    else:
        _out.print(f"request {location}: {status}")
    if status == "REJECTED":
        raise CliError(f"the issuer rejected the request ({location})")


# ---- pactum authority -----------------------------------------------------------------------------------------
def _authority(config: Path) -> Any:
    from identity.authority.issuer import Authority
    from identity.authority.settings import load_authority_settings

    return Authority(load_authority_settings(config))


@authority_app.command("serve")
def authority_serve(config: ConfigFile) -> None:
    """Start the authority's HTTP server (issuer service, status lists, directory, trust list).

    Example: PACTUM_AUTHORITY_PASSPHRASE=... pactum authority serve --config authority.toml
    """
    import uvicorn

    from identity.authority.app import create_authority_app
    from identity.authority.settings import load_authority_settings
    from identity.tls import check_server_files

    settings = load_authority_settings(config)
    check_server_files(settings.tls.cert_file, settings.tls.key_file)
    uvicorn.run(create_authority_app(settings), host=settings.listen.host, port=settings.listen.port,
                log_level=os.environ.get("PACTUM_LOG_LEVEL", "info").lower(),
                ssl_certfile=settings.tls.cert_file, ssl_keyfile=settings.tls.key_file)


@authority_app.command("certs")
def authority_certs(
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the CA and the certificates.")],
    names: Annotated[list[str], typer.Option("--name", "-n", help="A host to issue a server certificate for "
                                             "(repeat: one per service, e.g. supplier).")],
    also: Annotated[list[str] | None, typer.Option("--also", help="An extra host name or IP every certificate "
                                                   "also covers (repeat), e.g. localhost, 127.0.0.1.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Create the data space's CA and one server certificate per host in a folder (kept if already there).

    Every party serves its certificate (tls.cert_file, tls.key_file) and trusts the CA (tls.ca_file).

    Example: pactum authority certs --out tls --name authority --name supplier --also localhost
    """
    from identity.tls import ensure_certificates

    made = ensure_certificates(out, names, also=also or ())
    summary = {"ca": str(made.ca_file), "caCreated": made.ca_created,
               "certificates": {n: {"cert": str(c.cert_file), "key": str(c.key_file), "issued": c.issued}
                                for n, c in made.servers.items()}}
    if as_json:
        _print_json(summary)
        return
    _out.print(f"CA {made.ca_file} ({'created' if made.ca_created else 'kept'})")
    for name, cert in made.servers.items():
        _out.print(f"{name}: {cert.cert_file} ({'issued' if cert.issued else 'kept'})")


@authority_app.command("issue")
def authority_issue(
    config: ConfigFile,
    holder: Annotated[str, typer.Option("--holder", help="DID of a registered participant.")],
    credential: Annotated[str, typer.Option("--credential", help="Credential definition id or type.")],
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Write the JWT to this file.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Issue a credential directly (out of band; the holder stores it with 'identity credentials add').

    Example: pactum authority issue -c authority.toml --holder did:web:supplier.example.com --credential membership
    """
    record = _authority(config).issue(holder, credential)
    if as_json:
        _print_json({"id": record.id, "type": record.credential_type, "holder": record.holder_did,
                     "credential": record.token})
        return
    _emit(record.token, out)


@authority_app.command("revoke")
def authority_revoke(
    config: ConfigFile,
    credential_id: Annotated[str, typer.Option("--credential-id", help="Id of the issued credential.")],
    as_json: JsonFlag = False,
) -> None:
    """Revoke an issued credential; the status list shows it on the next fetch.

    Example: pactum authority revoke -c authority.toml --credential-id urn:uuid:0f6c...
    """
    authority = _authority(config)
    record = authority.revoke(credential_id)
    if as_json:
        _print_json({"id": record.id, "revoked": True, "statusList": authority.status_list_url(record.profile),
                     "statusListIndex": record.status_index})
        return
    _out.print(f"[green]revoked[/green] {record.id} ({record.credential_type} of {record.holder_did})")


@authority_app.command("directory")
def authority_directory(
    config: ConfigFile,
    add: Annotated[str | None, typer.Option("--add", help="Register this participant DID.")] = None,
    name: Annotated[str | None, typer.Option("--name", help="Participant name (with --add).")] = None,
    bpn: Annotated[str, typer.Option("--bpn", help="Business partner number (with --add).")] = "",
    jurisdiction: Annotated[str, typer.Option("--jurisdiction", help="ISO 3166 code (with --add).")] = "",
    as_json: JsonFlag = False,
) -> None:
    """List the participant directory, or register a participant with --add.

    Example: pactum authority directory -c authority.toml --add did:web:b.example.com --name B --jurisdiction DE
    """
    from identity.authority.storage import ParticipantRecord

    authority = _authority(config)
    if add:
        if not name:
            raise CliError("--add needs --name")
        authority.register(ParticipantRecord(add, name, bpn, jurisdiction.upper()))
    entries = authority.directory()
    if as_json:
        _print_json(entries)
        return
    for entry in entries:
        _out.print(f"{entry['did']}  {entry['name']}  bpn={entry['bpn'] or '-'}  "
                   f"jurisdiction={entry['jurisdiction'] or '-'}")


@authority_app.command("rotate-key")
def authority_rotate_key(config: ConfigFile, as_json: JsonFlag = False) -> None:
    """Sign new credentials with a fresh key; the old key stays published so issued credentials still verify.

    Example: pactum authority rotate-key -c authority.toml (then restart 'serve')
    """
    kid = _authority(config).rotate_key()
    if as_json:
        _print_json({"kid": kid})
        return
    _out.print(f"[green]rotated[/green]: new signing key {kid}")


@authority_app.command("did")
def authority_did(config: ConfigFile) -> None:
    """Print the authority's DID document (creates the keystore on first use).

    Example: pactum authority did -c authority.toml
    """
    _print_json(_authority(config).did_document())


# ---- standalone entry point -----------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    """Run ``identity ...`` or ``authority ...`` without the connector; returns the exit code."""
    root = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
    root.add_typer(app, name="identity")
    root.add_typer(authority_app, name="authority")
    try:
        code = root(args=list(sys.argv[1:] if argv is None else argv), prog_name="pactum", standalone_mode=False)
        if isinstance(code, int):
            return code
    except IdentityError as exc:
        Console(stderr=True, emoji=False).print(f"[red]error:[/red] {escape(str(exc))}", highlight=False,
                                                soft_wrap=True)
        return 1
    except typer.Exit as exc:
        return int(exc.exit_code or 0)
    except Exception as exc:
        import click

        if isinstance(exc, click.ClickException):
            exc.show()
            return exc.exit_code
        raise
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
