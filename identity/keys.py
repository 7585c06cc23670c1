"""Signing keys for Pactum's identity layer: Ed25519 (default), P-256 and secp256k1.

One small class, :class:`KeyPair`, hides the three curves behind JOSE names (EdDSA, ES256, ES256K) so that
JWT, Data Integrity, DID documents and the keystore never branch on curve details. Signatures are always the
JOSE raw form (Ed25519 64 bytes, ECDSA r||s 64 bytes), which is what JWS and Multikey proofs carry.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

from identity.errors import IdentityError
from identity.multibase import (
    MULTICODEC_ED25519_PRIV,
    MULTICODEC_ED25519_PUB,
    MULTICODEC_P256_PRIV,
    MULTICODEC_P256_PUB,
    MULTICODEC_SECP256K1_PRIV,
    MULTICODEC_SECP256K1_PUB,
    EncodingError,
    b64url_decode,
    b64url_encode,
    multibase_decode,
    multibase_encode,
    split_multicodec,
)


class InvalidKey(IdentityError):
    """A key is malformed, of an unsupported type, or lacks its private part."""

    code = "key_invalid"


class UnsupportedAlgorithm(InvalidKey):
    """The requested JOSE algorithm is not one Pactum signs or verifies with."""

    code = "alg_unsupported"


class MissingPrivateKey(InvalidKey):
    """A public-only key was asked to sign."""

    code = "key_public_only"


SUPPORTED_ALGS = ("EdDSA", "ES256", "ES256K")
_CURVE_BY_ALG = {"ES256": ec.SECP256R1(), "ES256K": ec.SECP256K1()}
_ALG_BY_CRV = {"Ed25519": "EdDSA", "P-256": "ES256", "secp256k1": "ES256K"}
_CRV_BY_ALG = {v: k for k, v in _ALG_BY_CRV.items()}
_CODEC_BY_ALG = {"EdDSA": MULTICODEC_ED25519_PUB, "ES256": MULTICODEC_P256_PUB, "ES256K": MULTICODEC_SECP256K1_PUB}
_ALG_BY_CODEC = {v: k for k, v in _CODEC_BY_ALG.items()}

PrivateKey = ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey
PublicKey = ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey


@dataclass(eq=False)
class KeyPair:
    """A key (public, optionally private) tagged with its JOSE ``alg`` and optional ``kid``."""

    alg: str
    public_key: PublicKey
    private_key: PrivateKey | None = None
    kid: str | None = None

    # ---- construction -------------------------------------------------------------------------------------
    @classmethod
    def from_jwk(cls, jwk: dict[str, Any], kid: str | None = None) -> KeyPair:
        """Build from a JWK (OKP/Ed25519 or EC P-256/secp256k1); a ``d`` member makes it a private key."""
        if not isinstance(jwk, dict):
            raise InvalidKey("JWK must be a JSON object")
        kty, crv = jwk.get("kty"), jwk.get("crv")
        kid = kid if kid is not None else jwk.get("kid")
        try:
            if kty == "OKP" and crv == "Ed25519":
                pub_raw = b64url_decode(jwk["x"])
                if len(pub_raw) != 32:
                    raise InvalidKey("Ed25519 'x' must be 32 bytes")
                if "d" in jwk:
                    priv = ed25519.Ed25519PrivateKey.from_private_bytes(b64url_decode(jwk["d"]))
                    return cls("EdDSA", priv.public_key(), priv, kid)
                return cls("EdDSA", ed25519.Ed25519PublicKey.from_public_bytes(pub_raw), None, kid)
            if kty == "EC" and crv in ("P-256", "secp256k1"):
                alg = _ALG_BY_CRV[crv]
                curve = _CURVE_BY_ALG[alg]
                x, y = b64url_decode(jwk["x"]), b64url_decode(jwk["y"])
                if len(x) != 32 or len(y) != 32:
                    raise InvalidKey(f"{crv} coordinates must be 32 bytes")
                numbers = ec.EllipticCurvePublicNumbers(int.from_bytes(x, "big"), int.from_bytes(y, "big"), curve)
                if "d" in jwk:
                    d = int.from_bytes(b64url_decode(jwk["d"]), "big")
                    priv_ec = ec.EllipticCurvePrivateNumbers(d, numbers).private_key()
                    return cls(alg, priv_ec.public_key(), priv_ec, kid)
                return cls(alg, numbers.public_key(), None, kid)
        except InvalidKey:
            raise
        except (KeyError, ValueError, TypeError, EncodingError) as exc:
            raise InvalidKey(f"invalid JWK: {exc}") from None
        raise InvalidKey(f"unsupported JWK kty/crv {kty}/{crv}")

    @classmethod
    def from_multikey(cls, public_key_multibase: str, kid: str | None = None) -> KeyPair:
        """Build a public key from a Multikey ``publicKeyMultibase`` (multicodec-prefixed, base58btc)."""
        try:
            codec, raw = split_multicodec(multibase_decode(public_key_multibase))
            alg = _ALG_BY_CODEC.get(codec)
            if alg == "EdDSA":
                if len(raw) != 32:
                    raise InvalidKey("Ed25519 multikey must carry 32 bytes")
                return cls(alg, ed25519.Ed25519PublicKey.from_public_bytes(raw), None, kid)
            if alg in ("ES256", "ES256K"):
                pub = ec.EllipticCurvePublicKey.from_encoded_point(_CURVE_BY_ALG[alg], raw)
                return cls(alg, pub, None, kid)
        except InvalidKey:
            raise
        except (EncodingError, ValueError) as exc:
            raise InvalidKey(f"invalid publicKeyMultibase: {exc}") from None
        raise InvalidKey("unsupported multikey codec")

    @classmethod
    def from_private_multibase(cls, secret_key_multibase: str, kid: str | None = None) -> KeyPair:
        """Build a private key from a multicodec-prefixed multibase secret (as in W3C Data Integrity vectors)."""
        try:
            codec, raw = split_multicodec(multibase_decode(secret_key_multibase))
            if codec == MULTICODEC_ED25519_PRIV and len(raw) == 32:
                priv = ed25519.Ed25519PrivateKey.from_private_bytes(raw)
                return cls("EdDSA", priv.public_key(), priv, kid)
            for alg, prefix in (("ES256", MULTICODEC_P256_PRIV), ("ES256K", MULTICODEC_SECP256K1_PRIV)):
                if codec == prefix and len(raw) == 32:
                    priv_ec = ec.derive_private_key(int.from_bytes(raw, "big"), _CURVE_BY_ALG[alg])
                    return cls(alg, priv_ec.public_key(), priv_ec, kid)
        except (EncodingError, ValueError) as exc:
            raise InvalidKey(f"invalid secret key multibase: {exc}") from None
        raise InvalidKey("unsupported secret key multicodec or length")

    # ---- export -------------------------------------------------------------------------------------------
    @property
    def has_private(self) -> bool:
        return self.private_key is not None

    def public_jwk(self) -> dict[str, Any]:
        """The public JWK (no ``kid``: callers add the DID URL where they publish it)."""
        if isinstance(self.public_key, ed25519.Ed25519PublicKey):
            raw = self.public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
            return {"kty": "OKP", "crv": "Ed25519", "x": b64url_encode(raw)}
        nums = self.public_key.public_numbers()
        return {
            "kty": "EC",
            "crv": _CRV_BY_ALG[self.alg],
            "x": b64url_encode(nums.x.to_bytes(32, "big")),
            "y": b64url_encode(nums.y.to_bytes(32, "big")),
        }

    def private_jwk(self) -> dict[str, Any]:
        """The private JWK (public members plus ``d``); only for the encrypted keystore."""
        if self.private_key is None:
            raise MissingPrivateKey("key has no private part")
        jwk = self.public_jwk()
        if isinstance(self.private_key, ed25519.Ed25519PrivateKey):
            raw = self.private_key.private_bytes(
                serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
            )
            jwk["d"] = b64url_encode(raw)
        else:
            jwk["d"] = b64url_encode(self.private_key.private_numbers().private_value.to_bytes(32, "big"))
        return jwk

    def public_raw(self) -> bytes:
        """Raw public bytes: 32 for Ed25519, the 33-byte compressed point for EC (what Multikey carries)."""
        if isinstance(self.public_key, ed25519.Ed25519PublicKey):
            return self.public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return self.public_key.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.CompressedPoint)

    def public_multibase(self) -> str:
        """Multikey ``publicKeyMultibase``: multicodec prefix + raw key, base58btc with 'z'."""
        return multibase_encode(_CODEC_BY_ALG[self.alg] + self.public_raw(), "z")

    def thumbprint(self) -> str:
        """RFC 7638 JWK thumbprint (SHA-256, base64url); a stable default key id."""
        jwk = self.public_jwk()
        members = {k: jwk[k] for k in sorted(jwk) if k in ("crv", "kty", "x", "y")}
        canonical = json.dumps(members, separators=(",", ":"), sort_keys=True).encode()
        return b64url_encode(hashlib.sha256(canonical).digest())

    def public_only(self) -> KeyPair:
        """A copy without the private part, safe to hand to verifiers."""
        return KeyPair(self.alg, self.public_key, None, self.kid)

    # ---- crypto -------------------------------------------------------------------------------------------
    def sign(self, data: bytes) -> bytes:
        """Sign ``data`` and return the JOSE raw signature (ECDSA r||s, never DER)."""
        if self.private_key is None:
            raise MissingPrivateKey("cannot sign with a public-only key")
        if isinstance(self.private_key, ed25519.Ed25519PrivateKey):
            return self.private_key.sign(data)
        der = self.private_key.sign(data, ec.ECDSA(hashes.SHA256()))
        r, s = decode_dss_signature(der)
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")

    def verify(self, signature: bytes, data: bytes) -> bool:
        """True iff ``signature`` (JOSE raw form) is valid for ``data``; never raises for bad signatures."""
        if len(signature) != 64:
            return False
        try:
            if isinstance(self.public_key, ed25519.Ed25519PublicKey):
                self.public_key.verify(signature, data)
            else:
                r = int.from_bytes(signature[:32], "big")
                s = int.from_bytes(signature[32:], "big")
                self.public_key.verify(encode_dss_signature(r, s), data, ec.ECDSA(hashes.SHA256()))
        except InvalidSignature:
            return False
        return True

    def same_public_key(self, other: KeyPair) -> bool:
        """Compare public parts (key rotation and kid checks need identity, not object equality)."""
        return self.alg == other.alg and self.public_raw() == other.public_raw()


def generate_key(alg: str = "EdDSA", kid: str | None = None) -> KeyPair:
    """Create a fresh key for a JOSE algorithm: EdDSA (Ed25519, default), ES256 (P-256) or ES256K."""
    if alg == "EdDSA":
        priv: PrivateKey = ed25519.Ed25519PrivateKey.generate()
    elif alg in _CURVE_BY_ALG:
        priv = ec.generate_private_key(_CURVE_BY_ALG[alg])
    else:
        raise UnsupportedAlgorithm(f"unsupported key algorithm {alg!r}; use one of {', '.join(SUPPORTED_ALGS)}")
    return KeyPair(alg, priv.public_key(), priv, kid)


def alg_for_jwk(jwk: dict[str, Any]) -> str:
    """The JOSE alg a JWK implies (used to check a JWT header ``alg`` against the resolved key)."""
    return KeyPair.from_jwk(jwk).alg
