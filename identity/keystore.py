"""A passphrase-encrypted keystore file with key rotation.

Private keys never touch disk in clear: the file is JSON holding scrypt parameters, a salt, a nonce and the
AES-256-GCM ciphertext of the key list. It is written atomically with mode 0600. Rotation appends a new key
and makes it current; older keys stay listed (so published DID documents can keep them for verification)
until explicitly removed.
"""

from __future__ import annotations

import builtins
import json
import os
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from identity.errors import IdentityError
from identity.keys import KeyPair, generate_key
from identity.multibase import EncodingError, b64url_decode, b64url_encode


class KeystoreError(IdentityError):
    """The keystore file is missing, corrupt, or an operation on it is invalid."""

    code = "keystore_error"


class WrongPassphrase(KeystoreError):
    """Decryption failed: wrong passphrase or tampered file (AES-GCM cannot tell them apart)."""

    code = "keystore_wrong_passphrase"


class UnknownKey(KeystoreError):
    """No key with the requested id is in the keystore."""

    code = "keystore_unknown_key"


FORMAT = "pactum-keystore/1"
# scrypt cost: N=2**15, r=8, p=1 (~32 MiB, ~0.1 s); interactive-grade, as RFC 7914 suggests for files.
DEFAULT_SCRYPT = {"n": 2**15, "r": 8, "p": 1}


@dataclass
class KeyEntry:
    """One stored key and when it was added; ``key_id`` is the DID-document fragment, e.g. ``key-1``."""

    key_id: str
    key: KeyPair
    created: str


def _check_params(params: dict[str, int]) -> dict[str, int]:
    """Bounded scrypt parameters: a tampered file must not make ``open`` allocate gigabytes."""
    n, r, p = params.get("n"), params.get("r"), params.get("p")
    if not (isinstance(n, int) and 2**10 <= n <= 2**20 and n & (n - 1) == 0):
        raise KeystoreError("scrypt n must be a power of two between 2**10 and 2**20")
    if not (isinstance(r, int) and 1 <= r <= 32 and isinstance(p, int) and 1 <= p <= 16):
        raise KeystoreError("scrypt r must be 1..32 and p 1..16")
    return {"n": n, "r": r, "p": p}


def _derive(passphrase: str, salt: bytes, params: dict[str, int]) -> bytes:
    kdf = Scrypt(salt=salt, length=32, n=params["n"], r=params["r"], p=params["p"])
    return kdf.derive(passphrase.encode("utf-8"))


class Keystore:
    """Encrypted key file; ``current()`` is the signing key, every listed key stays valid for verification."""

    def __init__(self, path: Path, passphrase: str, *, scrypt_params: dict[str, int] | None = None) -> None:
        self.path = Path(path)
        self._passphrase = passphrase
        self._scrypt = _check_params(dict(scrypt_params or DEFAULT_SCRYPT))
        self._entries: dict[str, KeyEntry] = {}
        self._current: str | None = None

    # ---- lifecycle ----------------------------------------------------------------------------------------
    @classmethod
    def create(
        cls, path: str | os.PathLike[str], passphrase: str, *, scrypt_params: dict[str, int] | None = None,
        overwrite: bool = False,
    ) -> Keystore:
        """Create an empty keystore file; refuses to clobber an existing one unless ``overwrite``."""
        if not passphrase:
            raise KeystoreError("keystore passphrase must not be empty")
        p = Path(path)
        if p.exists() and not overwrite:
            raise KeystoreError(f"keystore {p} already exists")
        store = cls(p, passphrase, scrypt_params=scrypt_params)
        store.save()
        return store

    @classmethod
    def open(cls, path: str | os.PathLike[str], passphrase: str) -> Keystore:
        """Open and decrypt an existing keystore file."""
        p = Path(path)
        try:
            envelope = json.loads(p.read_text("utf-8"))
        except FileNotFoundError:
            raise KeystoreError(f"keystore {p} does not exist") from None
        except (OSError, ValueError) as exc:
            raise KeystoreError(f"keystore {p} is unreadable: {exc}") from None
        if not isinstance(envelope, dict) or envelope.get("format") != FORMAT:
            raise KeystoreError(f"keystore {p} has an unknown format")
        try:
            params = _check_params({k: int(envelope["kdf"][k]) for k in ("n", "r", "p")})
            salt = b64url_decode(envelope["kdf"]["salt"])
            nonce = b64url_decode(envelope["nonce"])
            ciphertext = b64url_decode(envelope["ciphertext"])
        except (KeyError, TypeError, ValueError, EncodingError) as exc:
            raise KeystoreError(f"keystore {p} is corrupt: {exc}") from None
        try:
            plaintext = AESGCM(_derive(passphrase, salt, params)).decrypt(nonce, ciphertext, FORMAT.encode())
        except InvalidTag:
            raise WrongPassphrase("wrong keystore passphrase or tampered keystore file") from None
        store = cls(p, passphrase, scrypt_params=params)
        try:
            body = json.loads(plaintext)
            for item in body["keys"]:
                key = KeyPair.from_jwk(item["jwk"], kid=item["id"])
                store._entries[item["id"]] = KeyEntry(item["id"], key, item.get("created", ""))
            store._current = body.get("current")
        except (KeyError, TypeError, ValueError) as exc:
            raise KeystoreError(f"keystore {p} content is corrupt: {exc}") from None
        return store

    def save(self) -> None:
        """Encrypt and write atomically with 0600 permissions (temp file in the same directory, then rename)."""
        body = {
            "current": self._current,
            "keys": [
                {"id": e.key_id, "created": e.created, "jwk": e.key.private_jwk()} for e in self._entries.values()
            ],
        }
        salt, nonce = os.urandom(16), os.urandom(12)
        ciphertext = AESGCM(_derive(self._passphrase, salt, self._scrypt)).encrypt(
            nonce, json.dumps(body).encode(), FORMAT.encode()
        )
        envelope = {
            "format": FORMAT,
            "kdf": {"name": "scrypt", "salt": b64url_encode(salt), **self._scrypt},
            "cipher": "A256GCM",
            "nonce": b64url_encode(nonce),
            "ciphertext": b64url_encode(ciphertext),
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".keystore-", dir=self.path.parent)
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(envelope, fh)
            os.replace(tmp, self.path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
        os.chmod(self.path, 0o600)

    # ---- key management ----------------------------------------------------------------------------------
    def add(self, key: KeyPair, key_id: str, *, make_current: bool | None = None) -> None:
        """Add a private key under ``key_id``; the first key added becomes current. Call ``save()`` after."""
        if not key_id or "#" in key_id or any(c.isspace() for c in key_id):
            raise KeystoreError(f"invalid key id {key_id!r}: use a DID-URL fragment such as 'key-1'")
        if key_id in self._entries:
            raise KeystoreError(f"key id {key_id!r} already exists")
        if not key.has_private:
            raise KeystoreError("only private keys can be stored in the keystore")
        key.kid = key_id
        self._entries[key_id] = KeyEntry(key_id, key, datetime.now(UTC).isoformat(timespec="seconds"))
        if make_current or (make_current is None and self._current is None):
            self._current = key_id

    def get(self, key_id: str) -> KeyPair:
        """The key stored under ``key_id``."""
        try:
            return self._entries[key_id].key
        except KeyError:
            raise UnknownKey(f"no key {key_id!r} in keystore") from None

    def current(self) -> tuple[str, KeyPair]:
        """The signing key: the most recently rotated-in key."""
        if self._current is None:
            raise UnknownKey("keystore holds no key yet; add or rotate one first")
        return self._current, self._entries[self._current].key

    def rotate(self, alg: str | None = None) -> str:
        """Generate a new key (same alg as the current one unless given), make it current, keep the old ones."""
        if alg is None:
            alg = self._entries[self._current].key.alg if self._current else "EdDSA"
        n = len(self._entries) + 1
        while f"key-{n}" in self._entries:
            n += 1
        key_id = f"key-{n}"
        self.add(generate_key(alg), key_id, make_current=True)
        return key_id

    def list(self) -> list[dict[str, Any]]:
        """Public view of every key: id, alg, created, current flag and public JWK (for DID documents)."""
        return [
            {
                "id": e.key_id,
                "alg": e.key.alg,
                "created": e.created,
                "current": e.key_id == self._current,
                "publicJwk": e.key.public_jwk(),
            }
            for e in self._entries.values()
        ]

    def keys(self) -> builtins.list[tuple[str, KeyPair]]:
        """``(key_id, KeyPair)`` pairs in insertion order, the shape ``build_did_document`` takes."""
        return [(e.key_id, e.key) for e in self._entries.values()]

    def remove(self, key_id: str) -> None:
        """Drop a retired key; the current key cannot be removed (rotate first)."""
        if key_id not in self._entries:
            raise UnknownKey(f"no key {key_id!r} in keystore")
        if key_id == self._current:
            raise KeystoreError("cannot remove the current signing key; rotate first")
        del self._entries[key_id]
