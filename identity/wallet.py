"""A participant's wallet: encrypted keystore, DID, DID document with its services, and held credentials.

Folder layout (everything the wallet needs lives in one folder):

- ``keystore.json``   the encrypted keys (:class:`identity.keystore.Keystore`)
- ``wallet.json``     DID and service endpoints (public, not secret)
- ``credentials.db``  SQLite table of held credentials (JWT strings or JSON-LD documents)

WHY SQLite for credentials: the credential service reads them on every presentation query and the issuer
writes them asynchronously; a single-file database gives atomic writes and filtering by type for free.
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Column, MetaData, String, Table, Text, create_engine, delete, insert, select
from sqlalchemy.exc import SQLAlchemyError

from identity.dcp.errors import DcpError
from identity.dcp.jws import parse_jws
from identity.dcp.tokens import DEFAULT_LIFETIME, create_access_token, create_si_token
from identity.dids.document import build_did_document
from identity.errors import IdentityError
from identity.keys import KeyPair, generate_key
from identity.keystore import Keystore

KEYSTORE_FILE = "keystore.json"
WALLET_FILE = "wallet.json"
CREDENTIALS_FILE = "credentials.db"
FORMAT = "pactum-wallet/1"
MAX_CREDENTIAL_BYTES = 512 * 1024


class WalletError(IdentityError):
    """The wallet folder is missing, corrupt, or an operation on it is not possible."""

    code = "wallet_error"


_metadata = MetaData()
_credentials = Table(
    "wallet_credentials", _metadata,
    Column("id", String(512), primary_key=True),
    Column("types", Text, nullable=False),
    Column("issuer", String(512), nullable=False),
    Column("subject", String(512), nullable=True),
    Column("format", String(16), nullable=False),
    Column("profile", String(8), nullable=False),
    Column("valid_until", String(40), nullable=True),
    Column("stored_at", String(40), nullable=False),
    Column("payload", Text, nullable=False),
)


@dataclass(frozen=True)
class HeldCredential:
    """A credential the wallet holds, with the facts needed to select it for a presentation."""

    id: str
    types: tuple[str, ...]
    issuer: str
    subject: str | None
    format: str  # "jwt" (enveloped / JWT-secured) or "json-ld" (embedded proof)
    profile: str  # "vc20" or "vc11"
    valid_until: str | None
    payload: str | dict[str, Any]

    def is_expired(self, now: datetime | None = None) -> bool:
        """True when ``valid_until`` lies in the past."""
        if not self.valid_until:
            return False
        try:
            until = datetime.fromisoformat(self.valid_until.replace("Z", "+00:00"))
        except ValueError:
            return False
        return until <= (now or datetime.now(UTC))


def _iso_from_epoch(value: Any) -> str | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, UTC).isoformat().replace("+00:00", "Z")
    return None


def _issuer_id(issuer: Any) -> str:
    if isinstance(issuer, dict):
        issuer = issuer.get("id")
    if not isinstance(issuer, str) or not issuer:
        raise WalletError("credential has no issuer", code="credential_invalid")
    return issuer


def _subject_id(subject: Any) -> str | None:
    if isinstance(subject, list) and subject:
        subject = subject[0]
    if isinstance(subject, dict) and isinstance(subject.get("id"), str):
        return str(subject["id"])
    return None


def _types(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(t, str) for t in value):
        return tuple(value)
    raise WalletError("credential 'type' must be a string or list of strings", code="credential_invalid")


def describe_credential(credential: str | dict[str, Any]) -> HeldCredential:
    """Extract id, types, issuer, subject and validity from a VC JWT (VCDM 1.1 or 2.0) or JSON-LD VC."""
    if isinstance(credential, str):
        try:
            claims = parse_jws(credential.strip(), max_bytes=MAX_CREDENTIAL_BYTES).payload
        except DcpError as exc:
            raise WalletError(f"not a credential JWT: {exc}", code="credential_invalid") from None
        if isinstance(claims.get("vc"), dict):  # VCDM 1.1 JWT: registered claims outside, credential inside
            vc = claims["vc"]
            return HeldCredential(
                id=str(claims.get("jti") or vc.get("id") or ""), types=_types(vc.get("type")),
                issuer=_issuer_id(claims.get("iss") or vc.get("issuer")),
                subject=claims.get("sub") or _subject_id(vc.get("credentialSubject")),
                format="jwt", profile="vc11",
                valid_until=_iso_from_epoch(claims.get("exp")) or vc.get("expirationDate"),
                payload=credential.strip(),
            )
        return HeldCredential(
            id=str(claims.get("id") or claims.get("jti") or ""), types=_types(claims.get("type")),
            issuer=_issuer_id(claims.get("issuer") or claims.get("iss")),
            subject=_subject_id(claims.get("credentialSubject")), format="jwt", profile="vc20",
            valid_until=claims.get("validUntil") or _iso_from_epoch(claims.get("exp")), payload=credential.strip(),
        )
    if isinstance(credential, dict):
        contexts = credential.get("@context") or []
        v2 = "https://www.w3.org/ns/credentials/v2" in (contexts if isinstance(contexts, list) else [contexts])
        return HeldCredential(
            id=str(credential.get("id") or ""), types=_types(credential.get("type")),
            issuer=_issuer_id(credential.get("issuer")), subject=_subject_id(credential.get("credentialSubject")),
            format="json-ld", profile="vc20" if v2 else "vc11",
            valid_until=credential.get("validUntil") or credential.get("expirationDate"), payload=credential,
        )
    raise WalletError("a credential is a JWT string or a JSON object", code="credential_invalid")


def _kid_fragment(did: str, key_id: str, key: KeyPair) -> str:
    return key.public_multibase() if did.startswith("did:key:") else key_id


class Wallet:
    """Keys, DID and credentials of one participant; open with :meth:`open`, create with :meth:`init`."""

    def __init__(self, folder: Path, keystore: Keystore, meta: dict[str, Any]) -> None:
        self.folder = folder
        self.keystore = keystore
        self._meta = meta
        self._document: dict[str, Any] | None = None
        try:
            self._engine = create_engine(f"sqlite:///{folder / CREDENTIALS_FILE}")
            _metadata.create_all(self._engine)
        except SQLAlchemyError as exc:
            raise WalletError(f"cannot open wallet credential store: {exc}") from None

    # ---- lifecycle ------------------------------------------------------------------------------------------
    @classmethod
    def init(
        cls,
        folder: str | os.PathLike[str],
        did: str | None,
        passphrase: str,
        alg: str = "EdDSA",
        *,
        credential_service_url: str | None = None,
        data_service_url: str | None = None,
        scrypt_params: dict[str, int] | None = None,
    ) -> Wallet:
        """Create a wallet: a fresh key, and ``did`` (a did:web you control) or, when None, a did:key."""
        path = Path(folder)
        if (path / WALLET_FILE).exists() or (path / KEYSTORE_FILE).exists():
            raise WalletError(f"{path} already holds a wallet")
        key = generate_key(alg)
        if did is None:
            from identity.dids import did_key_from_key

            did = did_key_from_key(key)
        elif not did.startswith("did:"):
            raise WalletError(f"{did!r} is not a DID (expected e.g. did:web:example.com)")
        if did.startswith("did:key:") and (credential_service_url or data_service_url):
            raise WalletError("a did:key document cannot publish services; use a did:web for a connector")
        path.mkdir(parents=True, exist_ok=True)
        keystore = Keystore.create(path / KEYSTORE_FILE, passphrase, scrypt_params=scrypt_params)
        keystore.add(key, "key-1")
        keystore.save()
        meta: dict[str, Any] = {"format": FORMAT, "did": did, "services": {}}
        if credential_service_url:
            meta["services"]["CredentialService"] = credential_service_url
        if data_service_url:
            meta["services"]["DataService"] = data_service_url
        wallet = cls(path, keystore, meta)
        wallet._save_meta()
        return wallet

    @classmethod
    def open(cls, folder: str | os.PathLike[str], passphrase: str) -> Wallet:
        """Open an existing wallet folder."""
        path = Path(folder)
        try:
            meta = json.loads((path / WALLET_FILE).read_text("utf-8"))
        except FileNotFoundError:
            raise WalletError(f"no wallet in {path} (run 'pactum identity init' first)") from None
        except (OSError, ValueError) as exc:
            raise WalletError(f"wallet file in {path} is unreadable: {exc}") from None
        if not isinstance(meta, dict) or meta.get("format") != FORMAT or not isinstance(meta.get("did"), str):
            raise WalletError(f"wallet file in {path} has an unknown format")
        return cls(path, Keystore.open(path / KEYSTORE_FILE, passphrase), meta)

    def _save_meta(self) -> None:
        tmp = self.folder / (WALLET_FILE + ".tmp")
        tmp.write_text(json.dumps(self._meta, indent=2), "utf-8")
        os.replace(tmp, self.folder / WALLET_FILE)

    def close(self) -> None:
        """Release the credential database."""
        self._engine.dispose()

    # ---- identity -------------------------------------------------------------------------------------------
    @property
    def did(self) -> str:
        """The participant's DID."""
        return str(self._meta["did"])

    @property
    def services(self) -> dict[str, str]:
        """Published service endpoints by type (``CredentialService``, ``DataService``, ...)."""
        return dict(self._meta.get("services") or {})

    def set_service(self, service_type: str, url: str | None) -> None:
        """Publish (or with None, withdraw) a service endpoint in the DID document."""
        if self.did.startswith("did:key:"):
            raise WalletError("a did:key document cannot publish services")
        services = self._meta.setdefault("services", {})
        if url is None:
            services.pop(service_type, None)
        else:
            services[service_type] = url.rstrip("/")
        self._save_meta()
        self._document = None

    @property
    def key(self) -> KeyPair:
        """The current signing key."""
        return self.keystore.current()[1]

    @property
    def kid(self) -> str:
        """The full DID URL of the current signing key (the JWT ``kid``)."""
        key_id, key = self.keystore.current()
        return f"{self.did}#{_kid_fragment(self.did, key_id, key)}"

    def did_document(self) -> dict[str, Any]:
        """The DID document: every key in the keystore (old ones stay verifiable) plus the services.

        Built once and reused (the credential service needs it on every request); returns a copy.
        """
        if self._document is None:
            if self.did.startswith("did:key:"):
                _, key = self.keystore.current()
                self._document = build_did_document(self.did, [(key.public_multibase(), key)], publish=("Multikey",))
            else:
                services = [
                    {"id": f"#{stype.lower()}", "type": stype, "serviceEndpoint": url}
                    for stype, url in sorted(self.services.items())
                ]
                self._document = build_did_document(self.did, self.keystore.keys(), services or None)
        return copy.deepcopy(self._document)

    def rotate_key(self, alg: str | None = None) -> str:
        """Make a new key current (old keys stay in the DID document); returns the new kid."""
        if self.did.startswith("did:key:"):
            raise WalletError("a did:key is its key: create a new wallet instead of rotating")
        self.keystore.rotate(alg)
        self.keystore.save()
        self._document = None
        return self.kid

    # ---- tokens ---------------------------------------------------------------------------------------------
    def sign_si_token(self, aud: str, token: str | None = None, *, lifetime: int = DEFAULT_LIFETIME) -> str:
        """A Self-Issued ID Token for ``aud``, optionally carrying an access token in ``token``."""
        return create_si_token(self.key, did=self.did, kid=self.kid, audience=aud, token=token, lifetime=lifetime)

    def issue_access_token(self, verifier_did: str, scopes: Iterable[str], *,
                           lifetime: int = DEFAULT_LIFETIME) -> str:
        """An access token letting ``verifier_did`` use ``scopes`` on this wallet's credential service."""
        return create_access_token(self.key, holder_did=self.did, kid=self.kid, grantee_did=verifier_did,
                                   scopes=scopes, lifetime=lifetime)

    # ---- credentials ----------------------------------------------------------------------------------------
    def store_credential(self, credential: str | dict[str, Any]) -> HeldCredential:
        """Keep a credential (replacing one with the same id); returns what was stored."""
        held = describe_credential(credential)
        if not held.id:
            raise WalletError("credential has no id (jti / id) to store it under", code="credential_invalid")
        payload = held.payload if isinstance(held.payload, str) else json.dumps(held.payload)
        row = {
            "id": held.id, "types": json.dumps(list(held.types)), "issuer": held.issuer, "subject": held.subject,
            "format": held.format, "profile": held.profile, "valid_until": held.valid_until,
            "stored_at": datetime.now(UTC).isoformat(), "payload": payload,
        }
        with self._engine.begin() as conn:
            conn.execute(delete(_credentials).where(_credentials.c.id == held.id))
            conn.execute(insert(_credentials).values(**row))
        return held

    def credentials(self, types: Iterable[str] | None = None) -> list[HeldCredential]:
        """Held credentials, optionally only those having any of ``types``."""
        wanted = set(types) if types is not None else None
        with self._engine.connect() as conn:
            rows = conn.execute(select(_credentials).order_by(_credentials.c.stored_at)).mappings().all()
        held: list[HeldCredential] = []
        for row in rows:
            row_types = tuple(json.loads(row["types"]))
            if wanted is not None and not wanted.intersection(row_types):
                continue
            payload: str | dict[str, Any] = row["payload"] if row["format"] == "jwt" else json.loads(row["payload"])
            held.append(HeldCredential(row["id"], row_types, row["issuer"], row["subject"], row["format"],
                                       row["profile"], row["valid_until"], payload))
        return held

    def remove_credential(self, credential_id: str) -> bool:
        """Forget a credential; True if it was held."""
        with self._engine.begin() as conn:
            result = conn.execute(delete(_credentials).where(_credentials.c.id == credential_id))
        return bool(result.rowcount)
